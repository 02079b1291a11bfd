// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/execfaild/execfaild/internal/poll"
	"github.com/execfaild/execfaild/probe/event"
)

// Without a pipeline: a search that found its program shows nothing, one
// that found nothing shows once when its hold ends (by the timer, no
// further record needed), diagnosed; other failures go on at once.
func TestPathSearchesOutsideAPipeline(t *testing.T) {
	out := make(chan *event.Event, 10)
	s := NewPathSearches(time.Millisecond, nil, func(ev *event.Event) { out <- ev })
	s.Failure(failure(t0, 1, "/usr/local/bin/tool", -2))
	s.Failure(failure(t0, 1, "/usr/bin/tool", -2))
	s.Success(&event.Success{PID: 1, TID: 1, Name: "tool"})
	s.Failure(failure(t0, 2, "/srv/script", -13))
	if ev := <-out; ev.Error != "EACCES" {
		t.Fatalf("first out: %s %s, want the EACCES at once", ev.Error, ev.Path)
	}
	s.Failure(failure(t0, 3, "/usr/local/bin/gone", -2))
	s.Failure(failure(t0, 3, "/usr/bin/gone", -2))
	var ev *event.Event
	select {
	case ev = <-out:
	case <-time.After(10 * time.Second):
		t.Fatal("the search that found nothing never came out")
	}
	if ev.Cause != event.CauseNotFoundInPath || ev.Count != 2 || !slices.Equal(ev.Tried, []string{"/usr/local/bin", "/usr/bin"}) {
		t.Errorf("search: cause %q count %d tried %v", ev.Cause, ev.Count, ev.Tried)
	}
	s.Flush()
	if len(out) != 0 {
		t.Errorf("%d more out; the search that found its program must show nothing", len(out))
	}
}

// A success ends a search only for the program it ran. A caller that
// fails an absolute path and then runs some other program has not found
// what it looked for: each such failure is reported. A success without a
// name proves nothing either.
func TestSuccessResolvesOnlyItsOwnProgram(t *testing.T) {
	clk := &fakeClock{now: t0}
	sink := &recSink{}
	p := setup(t, clk, sink, func(c *Config, s *SinkCommon) { s.Dedup.Window = Off })
	for i := range 5 {
		p.Handle(failure(clk.Now(), 30, fmt.Sprintf("/x%d/evil", i), -2))
		p.Succeeded(&event.Success{Time: clk.Now(), PID: 30, TID: 30, Name: "true"})
	}
	// Found: the same name, also when the kernel cut it to 15 bytes.
	p.Handle(failure(clk.Now(), 31, "/usr/local/bin/tool", -2))
	p.Succeeded(&event.Success{Time: clk.Now(), PID: 31, TID: 31, Name: "tool"})
	p.Handle(failure(clk.Now(), 32, "/usr/local/bin/deploy-tool-production", -2))
	p.Succeeded(&event.Success{Time: clk.Now(), PID: 32, TID: 32, Name: "deploy-tool-pro"})
	// A name that merely starts the same is another program.
	p.Handle(failure(clk.Now(), 33, "/usr/local/bin/ls", -2))
	p.Succeeded(&event.Success{Time: clk.Now(), PID: 33, TID: 33, Name: "lsblk"})
	// Another program after a search of two directories: that search
	// found nothing there.
	p.Handle(failure(clk.Now(), 34, "/usr/local/bin/gone", -2))
	p.Handle(failure(clk.Now(), 34, "/usr/bin/gone", -2))
	p.Succeeded(&event.Success{Time: clk.Now(), PID: 34, TID: 34, Name: "sh"})
	// Not known.
	p.Handle(failure(clk.Now(), 35, "/usr/local/bin/quick", -2))
	p.Succeeded(&event.Success{Time: clk.Now(), PID: 35, TID: 35})
	p.tick(clk.Add(PathSearchHold))

	want := []string{"/x0/evil", "/x1/evil", "/x2/evil", "/x3/evil", "/x4/evil", "/usr/local/bin/ls", "/usr/bin/gone", "/usr/local/bin/quick"}
	// Closing delivers whatever is still on its way.
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range sink.events() {
		got = append(got, ev.Path)
		if ev.Path == "/usr/bin/gone" && (ev.Count != 2 || len(ev.Tried) != 2 || ev.Cause != event.CauseNotFoundInPath) {
			t.Errorf("search followed by another program: count %d tried %v cause %q, want count 2, two directories, %s", ev.Count, ev.Tried, ev.Cause, event.CauseNotFoundInPath)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("reported %q\nwant     %q", got, want)
	}
	if st := p.Stats(); st.PathSearchResolved != 2 {
		t.Errorf("%d failures counted as resolved searches, want 2", st.PathSearchResolved)
	}
}

// A $PATH naming a directory twice (a profile sourced twice) is still one
// search: one notification, every failure counted, each directory listed
// once.
func TestRepeatedPathDirectoryIsOneSearch(t *testing.T) {
	// Back to back, as on a fast machine; and a step every 5 ms, as
	// under emulation or on a loaded one: a walk at its own pace.
	for _, step := range []time.Duration{0, 5 * time.Millisecond} {
		t.Run(step.String(), func(t *testing.T) { repeatedPathDirectory(t, step) })
	}
}

func repeatedPathDirectory(t *testing.T, step time.Duration) {
	clk := &fakeClock{now: t0}
	sink := &recSink{}
	p := setup(t, clk, sink, func(c *Config, s *SinkCommon) { s.Dedup.Window = Off })
	path := []string{
		"/usr/local/go/bin", "/root/go/bin", "/root/.cargo/bin", "/root/.cargo/bin", "/usr/local/sbin",
		"/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/root/go/bin", "/snap/bin", "/usr/games", "/bin",
	}
	for _, d := range path {
		p.Handle(failure(clk.Now(), 40, d+"/deploy-tool-e1", -2))
		clk.Add(step)
	}
	p.tick(clk.Add(PathSearchHold))
	poll.Until(t, "the search", func() bool { return sink.total() == uint64(len(path)) })
	got := sink.events()
	var once []string
	for _, d := range path {
		if !slices.Contains(once, d) {
			once = append(once, d)
		}
	}
	if len(got) != 1 {
		for _, ev := range got {
			t.Logf("%d× %s", ev.Count, ev.CauseText)
		}
		t.Fatalf("%d notifications, want 1", len(got))
	}
	if ev := got[0]; !slices.Equal(ev.Tried, once) || ev.Count != uint64(len(path)) || ev.Cause != event.CauseNotFoundInPath {
		t.Errorf("tried %v count %d cause %q, want %v count %d %s", ev.Tried, ev.Count, ev.Cause, once, len(path), event.CauseNotFoundInPath)
	}
}
