// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/execfaild/execfaild/internal/poll"
	"github.com/execfaild/execfaild/probe/event"
)

// One thread execing the same missing absolute path every 12 ms is not a
// PATH search: each failure is reported when the next one shows it was a
// repeat, never held for longer than the hold, never listing a directory
// twice, and the counts add up.
func TestRepeatedPathIsNotOneEndlessSearch(t *testing.T) {
	clk := &fakeClock{now: t0}
	sink := &recSink{}
	p := setup(t, clk, sink, func(c *Config, s *SinkCommon) { s.Dedup.Window = Off })
	const n = 500 // 6 s of repeats
	for i := range n {
		p.Handle(failure(clk.Now(), 77, "/opt/app/missing", -2))
		p.tick(clk.Add(12 * time.Millisecond))
		if i == 100 {
			poll.Until(t, "reports during the repeats", func() bool { return len(sink.events()) >= 100 })
		}
	}
	p.tick(clk.Add(PathSearchHold))
	poll.Until(t, "every repeat", func() bool { return sink.total() == n })
	for _, ev := range sink.events() {
		if len(ev.Tried) > 1 {
			t.Fatalf("a repeat was folded as a PATH search: tried %v", ev.Tried)
		}
	}
}

// Distinct directories arriving just inside the hold, one after another,
// end as a search of at most maxSearchDirs entries and within
// maxSearchSpan; nothing is lost.
func TestSearchBounded(t *testing.T) {
	clk := &fakeClock{now: t0}
	sink := &recSink{}
	p := setup(t, clk, sink, func(c *Config, s *SinkCommon) { s.Dedup.Window = Off })
	step := PathSearchHold / 20
	n := int((maxSearchSpan+PathSearchHold)/step) + 1
	for i := range n {
		p.Handle(failure(clk.Now(), 78, fmt.Sprintf("/d%d/tool", i), -2))
		p.tick(clk.Add(step))
	}
	// Without the bound the search would still be pending here.
	poll.Until(t, "a report while directories kept coming", func() bool { return len(sink.events()) > 0 })
	p.tick(clk.Add(PathSearchHold))
	poll.Until(t, "every failure", func() bool { return sink.total() == uint64(n) })
	for _, ev := range sink.events() {
		if len(ev.Tried) > maxSearchDirs {
			t.Errorf("a search listed %d directories, more than %d", len(ev.Tried), maxSearchDirs)
		}
	}
}

// Only a missing file starts a search: a script whose interpreter is
// missing (binary opened, loader stage) is reported at once. Within a
// search, that failure describes it even when a plain ENOENT follows.
func TestSearchKeepsMostInformativeFailure(t *testing.T) {
	clk := &fakeClock{now: t0}
	sink := &recSink{}
	p := setup(t, clk, sink, func(c *Config, s *SinkCommon) { s.Dedup.Window = Off })
	badInterp := func(tid uint32, p string) *event.Event {
		ev := failure(clk.Now(), tid, p, -2)
		ev.Stage, ev.Binary, ev.InterpreterPath = event.StageLoader, &event.Binary{Path: p}, "/bin/bash\r"
		return ev
	}
	p.Handle(badInterp(90, "/srv/crlf.sh"))
	poll.Until(t, "the bad interpreter at once", func() bool { return len(sink.events()) == 1 })

	pre := func(tid uint32, p string) *event.Event {
		ev := failure(clk.Now(), tid, p, -2)
		ev.Stage = event.StagePreOpen
		return ev
	}
	p.Handle(pre(91, "/usr/local/bin/tool"))
	p.Handle(badInterp(91, "/usr/bin/tool"))
	p.Handle(pre(91, "/bin/tool"))
	p.tick(clk.Add(PathSearchHold))
	poll.Until(t, "the search", func() bool { return len(sink.events()) == 2 })
	ev := sink.events()[1]
	if ev.InterpreterPath != "/bin/bash\r" || ev.Path != "/usr/bin/tool" || ev.Count != 3 ||
		!slices.Equal(ev.Tried, []string{"/usr/local/bin", "/usr/bin", "/bin"}) {
		t.Errorf("search reported as path %q interpreter %q count %d tried %v", ev.Path, ev.InterpreterPath, ev.Count, ev.Tried)
	}
}

// A success marker lost while a search was pending may have been that
// search's success: it is not reported as a PATH search that found
// nothing, and its failures are still counted.
func TestLostMarkerLeavesSearchUnconcluded(t *testing.T) {
	clk := &fakeClock{now: t0}
	sink := &recSink{}
	var lost atomic.Uint64
	cfg := DefaultConfig()
	cfg.Spool.Dir = t.TempDir()
	cfg.RateLimit.GlobalRate = Off
	tc := &testConfig{sink: sink}
	tc.Name = "rec"
	tc.Dedup.Window = Off
	cfg.Sinks = []SinkEntry{{Kind: "test", Config: tc}}
	p, err := New(cfg, Env{Host: "h"}, WithClock(clk), manualTick(), WithLostMarkers(lost.Load))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(t.Context()) })

	p.Handle(failure(clk.Now(), 60, "/usr/local/bin/tool", -2))
	p.Handle(failure(clk.Now(), 60, "/usr/bin/tool", -2))
	lost.Add(1)
	p.tick(clk.Add(PathSearchHold))
	// A search that began after the loss is concluded as usual.
	p.Handle(failure(clk.Now(), 61, "/usr/local/bin/other", -2))
	p.Handle(failure(clk.Now(), 61, "/usr/bin/other", -2))
	p.tick(clk.Add(PathSearchHold))
	poll.Until(t, "both searches", func() bool { return len(sink.events()) == 2 })
	got := sink.events()
	if got[0].Tried != nil || got[0].Count != 2 {
		t.Errorf("search with a lost marker: tried %v count %d, want no directory list and count 2", got[0].Tried, got[0].Count)
	}
	if !slices.Equal(got[1].Tried, []string{"/usr/local/bin", "/usr/bin"}) {
		t.Errorf("search after the loss: tried %v", got[1].Tried)
	}
}

// A search that found nothing is diagnosed not-found-in-path, naming the
// command and every directory; its steps' plain not-found gives way. A
// finer cause on the failure describing it stays, and so does the cause of
// a search whose outcome a lost marker made unknowable.
func TestFoldedSearchDiagnosed(t *testing.T) {
	clk := &fakeClock{now: t0}
	sink := &recSink{}
	var lost atomic.Uint64
	cfg := DefaultConfig()
	cfg.Spool.Dir = t.TempDir()
	cfg.RateLimit.GlobalRate = Off
	tc := &testConfig{sink: sink}
	tc.Name = "rec"
	tc.Dedup.Window = Off
	cfg.Sinks = []SinkEntry{{Kind: "test", Config: tc}}
	p, err := New(cfg, Env{Host: "h"}, WithClock(clk), manualTick(), WithLostMarkers(lost.Load))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(t.Context()) })
	step := func(tid uint32, path string) *event.Event {
		ev := failure(clk.Now(), tid, path, -2)
		ev.Stage, ev.Cause, ev.CauseText, ev.CauseInferred = event.StagePreOpen, event.CauseNotFound, path+" does not exist", true
		return ev
	}

	for _, d := range []string{"/home/u/.pyenv/shims", "/usr/local/bin", "/usr/bin"} {
		p.Handle(step(50, d+"/python4"))
	}
	p.tick(clk.Add(PathSearchHold))
	poll.Until(t, "the search", func() bool { return len(sink.events()) == 1 })
	ev := sink.events()[0]
	want := "python4: not found in any of the 3 $PATH directories (/home/u/.pyenv/shims, /usr/local/bin, /usr/bin)"
	if ev.Cause != event.CauseNotFoundInPath || ev.CauseText != want || ev.CauseInferred {
		t.Errorf("search: cause %q %q inferred %v, want %q %q", ev.Cause, ev.CauseText, ev.CauseInferred, event.CauseNotFoundInPath, want)
	}

	// A script found on the way whose interpreter is missing says more.
	p.Handle(step(51, "/usr/local/bin/tool"))
	script := step(51, "/usr/bin/tool")
	script.Stage, script.Binary, script.InterpreterPath = event.StageLoader, &event.Binary{Path: "/usr/bin/tool"}, "/usr/bin/python4"
	script.Cause, script.CauseText = event.CauseInterpreterMissing, "the interpreter /usr/bin/python4 does not exist"
	p.Handle(script)
	p.tick(clk.Add(PathSearchHold))
	poll.Until(t, "the search with a script", func() bool { return len(sink.events()) == 2 })
	if ev := sink.events()[1]; ev.Cause != event.CauseInterpreterMissing || ev.CauseText != script.CauseText || len(ev.Tried) != 2 {
		t.Errorf("search with a script: cause %q %q tried %v", ev.Cause, ev.CauseText, ev.Tried)
	}

	// One directory is no search; a lost marker leaves it unconcluded.
	p.Handle(step(52, "/opt/tool"))
	p.tick(clk.Add(PathSearchHold))
	p.Handle(step(53, "/usr/local/bin/tool"))
	p.Handle(step(53, "/usr/bin/tool"))
	lost.Add(1)
	p.tick(clk.Add(PathSearchHold))
	poll.Until(t, "the rest", func() bool { return len(sink.events()) == 4 })
	for _, ev := range sink.events()[2:] {
		if ev.Cause != event.CauseNotFound || ev.CauseText != ev.Path+" does not exist" {
			t.Errorf("%s: cause %q %q, want the step's own", ev.Path, ev.Cause, ev.CauseText)
		}
	}
}

// The global filter's causes apply to the folded search, not to its steps:
// causes = ["not-found-in-path"] reports a search that found nothing and
// nothing else, and every failure is counted once.
func TestGlobalCauseFilterAfterFolding(t *testing.T) {
	clk := &fakeClock{now: t0}
	sink := &recSink{}
	p := setup(t, clk, sink, func(c *Config, s *SinkCommon) {
		c.Filter.Causes = []string{event.CauseNotFoundInPath}
		s.Dedup.Window = Off
	})
	step := func(tid uint32, path string) *event.Event {
		ev := failure(clk.Now(), tid, path, -2)
		ev.Cause = event.CauseNotFound
		return ev
	}
	p.Handle(step(70, "/usr/local/bin/gone"))
	p.Handle(step(70, "/usr/bin/gone"))
	p.Handle(step(71, "relative/gone"))
	p.tick(clk.Add(PathSearchHold))
	poll.Until(t, "the search", func() bool { return len(sink.events()) == 1 })
	if ev := sink.events()[0]; ev.Cause != event.CauseNotFoundInPath || ev.Count != 2 {
		t.Errorf("delivered cause %q count %d", ev.Cause, ev.Count)
	}
	if st := p.Stats(); st.Detected != 3 || st.Filtered != 1 || st.Sinks[0].DeliveredCount != 2 {
		t.Errorf("stats %+v", st)
	}
}

// A storm of distinct not-found failures reads the probe's lost-marker
// counter (a map read) once per search it concludes, not also once per
// search it starts.
func TestSearchStartReadsNoCounter(t *testing.T) {
	reads := 0
	c := newCoalescer(PathSearchHold)
	c.lostMarkers = func() uint64 { reads++; return 0 }
	now := t0
	out := 0
	for i := range 100 {
		out += len(c.add(failure(now, 70, fmt.Sprintf("/usr/bin/missing-%d", i), -2), now))
	}
	out += len(c.expire(now, true))
	if out != 100 {
		t.Fatalf("%d failures came out of 100", out)
	}
	if reads > 100 {
		t.Errorf("100 searches read the lost-marker counter %d times", reads)
	}
}

// A search through a $PATH naming one directory twice is one notification
// counting both steps; when the sink is down as it goes out, it is
// spooled and delivered later with that count, not set aside as a corrupt
// entry and counted failed.
func TestRepeatedDirectorySearchSurvivesOutage(t *testing.T) {
	clk := &fakeClock{now: t0}
	sink := &recSink{failN: 1}
	p := setup(t, clk, sink, func(c *Config, s *SinkCommon) { s.Dedup.Window = Off })
	p.Handle(failure(clk.Now(), 80, "/usr/bin/tool", -2))
	p.Handle(failure(clk.Now(), 80, "/usr/bin/tool", -2))
	p.tick(clk.Add(PathSearchHold))
	poll.Until(t, "the search delivered or given up", func() bool {
		return sink.total() > 0 || p.Stats().Sinks[0].Failed > 0
	})
	st := p.Stats().Sinks[0]
	if sink.total() != 2 || st.Spooled != 1 || st.Failed != 0 {
		t.Errorf("delivered %d failures, want 2 after one spooling (stats %+v)", sink.total(), st)
	}
}
