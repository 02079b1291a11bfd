// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/execfaild/execfaild/internal/poll"
	"github.com/execfaild/execfaild/probe/event"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

func manualTick() Option { return func(p *Pipeline) { p.manualTick = true } }

// recSink records what it is sent. It fails the first failN sends with a
// retryable error, and permanently when the path is /permanent.
type recSink struct {
	mu     sync.Mutex
	got    []event.Event
	failN  int
	tries  int
	block  chan struct{} // when non-nil, Send waits for it
	closed bool
}

func (s *recSink) Send(ctx context.Context, ev *event.Event) error {
	if s.block != nil {
		select {
		case <-s.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tries++
	if s.failN > 0 {
		s.failN--
		return errors.New("destination down")
	}
	if ev.Path == "/permanent" {
		return Permanent(errors.New("rejected"))
	}
	s.got = append(s.got, *ev)
	return nil
}

func (s *recSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

func (s *recSink) events() []event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

func (s *recSink) total() uint64 {
	var n uint64
	for _, e := range s.events() {
		n += count(&e)
	}
	return n
}

type testConfig struct {
	SinkCommon
	sink *recSink
}

func (c *testConfig) Validate() error                   { return nil }
func (c *testConfig) New(Env) (Sink, error)             { return c.sink, nil }
func (c *testConfig) DefaultRateLimit() RateLimitConfig { return RateLimitConfig{Rate: Off} }

func init() { RegisterSink("test", func() SinkConfig { return &testConfig{} }) }

// setup builds a pipeline with one recording sink; mod adjusts the config.
func setup(t *testing.T, clk *fakeClock, sink *recSink, mod func(*Config, *SinkCommon)) *Pipeline {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Spool.Dir = t.TempDir()
	cfg.Spool.RetryInitial = Duration(5 * time.Millisecond)
	cfg.Spool.RetryMax = Duration(20 * time.Millisecond)
	cfg.RateLimit.GlobalRate = Off
	tc := &testConfig{sink: sink}
	tc.Name = "rec"
	cfg.Sinks = []SinkEntry{{Kind: "test", Config: tc}}
	if mod != nil {
		mod(&cfg, &tc.SinkCommon)
	}
	p, err := New(cfg, Env{Host: "h"}, WithClock(clk), manualTick())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

func failure(now time.Time, tid uint32, p string, errno int32) *event.Event {
	ev := &event.Event{
		Time: now, Host: "h", Syscall: event.SyscallExecve, Path: p,
		Arguments: []string{filepath.Base(p)},
		Process:   event.Process{PID: tid, TID: tid, UID: 1000, Comm: "sh", Unit: "session-1.scope"},
	}
	ev.SetErrno(errno)
	return ev
}

var t0 = time.Date(2026, 11, 27, 10, 2, 0, 0, time.UTC)

func TestPathSearchCoalescing(t *testing.T) {
	clk := &fakeClock{now: t0}
	sink := &recSink{}
	p := setup(t, clk, sink, func(c *Config, s *SinkCommon) { s.Dedup.Window = Off })

	// Found in the third directory: nothing to report.
	p.Handle(failure(clk.Now(), 10, "/usr/local/sbin/tool", -2))
	p.Handle(failure(clk.Now(), 10, "/usr/local/bin/tool", -2))
	p.Succeeded(&event.Success{Time: clk.Now(), PID: 10, TID: 10, Name: "tool"})

	// Found nowhere: one notification listing the directories, after the hold.
	for _, d := range []string{"/usr/local/bin", "/usr/bin", "/bin"} {
		p.Handle(failure(clk.Now(), 20, d+"/nosuch", -2))
	}
	// Another thread's search ends with a different exec: the search is
	// reported at once, then that exec.
	p.Handle(failure(clk.Now(), 30, "/usr/bin/a", -2))
	p.Handle(failure(clk.Now(), 30, "/bin/a", -2))
	p.Handle(failure(clk.Now(), 30, "/srv/script", -13))

	poll.Until(t, "search 30 and the EACCES", func() bool { return len(sink.events()) == 2 })
	got := sink.events()
	if got[0].Path != "/bin/a" || got[0].Count != 2 || !slices.Equal(got[0].Tried, []string{"/usr/bin", "/bin"}) {
		t.Errorf("first: path %q count %d tried %v", got[0].Path, got[0].Count, got[0].Tried)
	}
	if got[1].Error != "EACCES" || got[1].Count != 1 || got[1].Tried != nil {
		t.Errorf("second: %s count %d tried %v", got[1].Error, got[1].Count, got[1].Tried)
	}

	p.tick(clk.Add(PathSearchHold / 2))
	if n := len(sink.events()); n != 2 {
		t.Fatalf("search 20 reported before its hold ended (%d events)", n)
	}
	p.tick(clk.Add(PathSearchHold))
	poll.Until(t, "search 20", func() bool { return len(sink.events()) == 3 })
	ev := sink.events()[2]
	if ev.Path != "/bin/nosuch" || ev.Count != 3 || !slices.Equal(ev.Tried, []string{"/usr/local/bin", "/usr/bin", "/bin"}) {
		t.Errorf("search 20: path %q count %d tried %v", ev.Path, ev.Count, ev.Tried)
	}
	if ev.FirstSeen == nil || ev.LastSeen == nil {
		t.Errorf("search 20 lacks first/last seen")
	}
	st := p.Stats()
	if st.Detected != 8 || st.PathSearchResolved != 2 || st.Sinks[0].DeliveredCount != 6 {
		t.Errorf("stats %+v", st)
	}
}

func TestFilter(t *testing.T) {
	base := failure(t0, 1, "/usr/bin/curl", -2)
	base.Process.Cgroup = "/system.slice/cron.service"
	base.Process.Unit = "cron.service"
	kernel := *base
	kernel.KernelInvoked = true
	kernel.Syscall = event.SyscallKernel
	rel := failure(t0, 1, "bin/tool", -13)
	rel.Process.Cwd = "/opt/app"
	crlf := *base
	crlf.Cause = event.CauseInterpreterCRLF
	tests := []struct {
		name string
		f    FilterConfig
		ev   *event.Event
		want bool
	}{
		{"empty passes", FilterConfig{}, base, true},
		{"errno include", FilterConfig{Errors: []string{"eacces", "ENOENT"}}, base, true},
		{"errno include miss", FilterConfig{Errors: []string{"EACCES"}}, base, false},
		{"errno exclude", FilterConfig{ExcludeErrors: []string{"ENOENT"}}, base, false},
		{"path glob", FilterConfig{Paths: []string{"/usr/bin/*"}}, base, true},
		{"path glob stops at slash", FilterConfig{Paths: []string{"/usr/*"}}, base, false},
		{"path double star", FilterConfig{Paths: []string{"/usr/**"}}, base, true},
		{"path basename", FilterConfig{ExcludePaths: []string{"cur?"}}, base, false},
		{"resolved relative path", FilterConfig{Paths: []string{"/opt/app/**"}}, rel, true},
		{"comm", FilterConfig{Comms: []string{"bash"}}, base, false},
		{"exclude comm glob", FilterConfig{ExcludeComms: []string{"s*"}}, base, false},
		{"uid include", FilterConfig{UIDs: []uint32{0, 1000}}, base, true},
		{"uid exclude", FilterConfig{ExcludeUIDs: []uint32{1000}}, base, false},
		{"unit glob", FilterConfig{Units: []string{"*.service"}}, base, true},
		{"unit exclude", FilterConfig{ExcludeUnits: []string{"cron.service"}}, base, false},
		{"cgroup", FilterConfig{Cgroups: []string{"/system.slice/**"}}, base, true},
		{"cgroup miss", FilterConfig{Cgroups: []string{"/user.slice/**"}}, base, false},
		{"kernel only drops user", FilterConfig{KernelInvoked: "only"}, base, false},
		{"kernel only keeps kernel", FilterConfig{KernelInvoked: "only"}, &kernel, true},
		{"kernel exclude", FilterConfig{KernelInvoked: "exclude"}, &kernel, false},
		{"all dimensions must match", FilterConfig{Errors: []string{"ENOENT"}, UIDs: []uint32{0}}, base, false},
		{"cause include", FilterConfig{Causes: []string{"not-found", " Interpreter-CRLF"}}, &crlf, true},
		{"cause include miss", FilterConfig{Causes: []string{"not-found"}}, &crlf, false},
		{"cause include, no diagnosis", FilterConfig{Causes: []string{"unknown"}}, base, false},
		{"cause exclude", FilterConfig{ExcludeCauses: []string{"interpreter-crlf"}}, &crlf, false},
		{"cause exclude, no diagnosis", FilterConfig{ExcludeCauses: []string{"interpreter-crlf"}}, base, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.f
			if err := f.Validate(); err != nil {
				t.Fatal(err)
			}
			if got := newFilter(f).match(tc.ev); got != tc.want {
				t.Errorf("match = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFilterCountsGlobalAndPerSink(t *testing.T) {
	clk := &fakeClock{now: t0}
	sink := &recSink{}
	p := setup(t, clk, sink, func(c *Config, s *SinkCommon) {
		c.Filter.ExcludeUIDs = []uint32{0}
		s.Filter.Errors = []string{"EACCES"}
		s.Dedup.Window = Off
	})
	root := failure(clk.Now(), 1, "x", -13)
	root.Process.UID = 0
	p.Handle(root)
	p.Handle(failure(clk.Now(), 2, "y", -2))
	p.Handle(failure(clk.Now(), 3, "z", -13))
	poll.Until(t, "one delivery", func() bool { return len(sink.events()) == 1 })
	st := p.Stats()
	if st.Filtered != 1 || st.Sinks[0].Filtered != 1 || sink.events()[0].Path != "z" {
		t.Errorf("stats %+v, got %v", st, sink.events())
	}
}

func TestDedupWindowDigest(t *testing.T) {
	clk := &fakeClock{now: t0}
	sink := &recSink{}
	p := setup(t, clk, sink, func(c *Config, s *SinkCommon) {
		s.Dedup = DedupConfig{Window: Duration(10 * time.Minute), MaxPIDs: 3}
	})
	for i := range 38 {
		p.Handle(failure(clk.Now(), uint32(100+i), "relative/tool", -13))
		clk.Add(time.Second)
	}
	// Same program failing another way is another key.
	p.Handle(failure(clk.Now(), 1, "relative/tool", -2))
	poll.Until(t, "two first occurrences", func() bool { return len(sink.events()) == 2 })
	if got := sink.events()[0]; got.Digest || got.Count != 1 || got.Process.PID != 100 {
		t.Errorf("first occurrence: digest %v count %d pid %d", got.Digest, got.Count, got.Process.PID)
	}

	p.tick(t0.Add(10*time.Minute - time.Nanosecond))
	if n := len(sink.events()); n != 2 {
		t.Fatalf("digest before the window ended (%d events)", n)
	}
	p.tick(t0.Add(10 * time.Minute))
	poll.Until(t, "digest", func() bool { return len(sink.events()) == 3 })
	d := sink.events()[2]
	if !d.Digest || d.Count != 37 || d.Error != "EACCES" {
		t.Fatalf("digest: digest %v count %d error %s", d.Digest, d.Count, d.Error)
	}
	if !d.FirstSeen.Equal(t0.Add(time.Second)) || !d.LastSeen.Equal(t0.Add(37*time.Second)) {
		t.Errorf("digest range %v .. %v", d.FirstSeen, d.LastSeen)
	}
	if !slices.Equal(d.PIDs, []uint32{101, 102, 103}) {
		t.Errorf("digest pids %v", d.PIDs)
	}
	if st := p.Stats().Sinks[0]; st.Deduped != 37 || st.DeliveredCount != 39 {
		t.Errorf("stats %+v", st)
	}

	// The window restarts: the next occurrence is a first occurrence again.
	p.Handle(failure(clk.Now(), 7, "relative/tool", -13))
	poll.Until(t, "new first occurrence", func() bool { return len(sink.events()) == 4 })
	if got := sink.events()[3]; got.Digest || got.Count != 1 {
		t.Errorf("after window: digest %v count %d", got.Digest, got.Count)
	}
}

func TestDedupKeysConfigurable(t *testing.T) {
	clk := &fakeClock{now: t0}
	sink := &recSink{}
	p := setup(t, clk, sink, func(c *Config, s *SinkCommon) {
		s.Dedup = DedupConfig{Window: Duration(time.Minute), Keys: []string{"error"}}
	})
	p.Handle(failure(clk.Now(), 1, "/a", -13))
	p.Handle(failure(clk.Now(), 2, "/b", -13))
	p.Handle(failure(clk.Now(), 3, "c", -2))
	p.tick(clk.Add(time.Minute))
	poll.Until(t, "3 notifications", func() bool { return len(sink.events()) == 3 })
	d := sink.events()[2]
	if !d.Digest || d.Count != 1 || d.Path != "/a" {
		t.Errorf("digest keyed by errno only: %+v", d)
	}
}

// "cause" as a dedup key: the same program failing with the same errno
// for two reasons is two notifications, each with its own sentence.
func TestDedupKeyCause(t *testing.T) {
	clk := &fakeClock{now: t0}
	sink := &recSink{}
	p := setup(t, clk, sink, func(c *Config, s *SinkCommon) {
		s.Dedup = DedupConfig{Window: Duration(time.Minute), Keys: []string{"binary", "cause"}}
	})
	for i, cause := range []string{event.CauseNotExecutable, event.CauseNoexecMount, event.CauseNotExecutable} {
		ev := failure(clk.Now(), uint32(i+1), "/tmp/tool", -13)
		ev.Cause, ev.CauseText = cause, cause+" sentence"
		p.Handle(ev)
	}
	p.tick(clk.Add(time.Minute))
	poll.Until(t, "3 notifications", func() bool { return len(sink.events()) == 3 })
	got := sink.events()
	if got[0].Cause != event.CauseNotExecutable || got[1].Cause != event.CauseNoexecMount || got[1].CauseText != "noexec-mount sentence" {
		t.Errorf("first occurrences: %q %q, %q %q", got[0].Cause, got[0].CauseText, got[1].Cause, got[1].CauseText)
	}
	if d := got[2]; !d.Digest || d.Count != 1 || d.Cause != event.CauseNotExecutable || !slices.Equal(d.PIDs, []uint32{3}) {
		t.Errorf("digest: digest %v count %d cause %q pids %v", d.Digest, d.Count, d.Cause, d.PIDs)
	}
}

// A combined digest keeps a cause only as far as its failures share it.
func TestMergeCause(t *testing.T) {
	ev := func(cause, text string, inferred bool) *event.Event {
		e := failure(t0, 1, "/x", -13)
		e.Cause, e.CauseText, e.CauseInferred = cause, text, inferred
		return e
	}
	for _, tc := range []struct {
		name     string
		dst, src *event.Event
		want     [3]any
	}{
		{"same", ev("noexec-mount", "a", false), ev("noexec-mount", "a", false), [3]any{"noexec-mount", "a", false}},
		{"same cause, other sentence", ev("noexec-mount", "a", false), ev("noexec-mount", "b", true), [3]any{"noexec-mount", "", true}},
		{"other cause", ev("noexec-mount", "a", true), ev("not-executable", "a", true), [3]any{"", "", false}},
		{"one undiagnosed", ev("", "", false), ev("not-executable", "a", false), [3]any{"", "", false}},
	} {
		asDigest(tc.dst).merge(tc.src, 4)
		if got := [3]any{tc.dst.Cause, tc.dst.CauseText, tc.dst.CauseInferred}; got != tc.want {
			t.Errorf("%s: merged cause %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRateLimitFoldsIntoDigest(t *testing.T) {
	clk := &fakeClock{now: t0}
	sink := &recSink{}
	p := setup(t, clk, sink, func(c *Config, s *SinkCommon) {
		s.Dedup.Window = Off
		s.RateLimit = RateLimitConfig{Rate: 1, Burst: 2}
	})
	for i := range 10 {
		p.Handle(failure(clk.Now(), uint32(i+1), fmt.Sprintf("/bin/p%d", i), -13))
	}
	poll.Until(t, "burst of 2", func() bool { return len(sink.events()) == 2 })
	p.tick(clk.Now())
	if n := len(sink.events()); n != 2 {
		t.Fatalf("limit exceeded: %d", n)
	}
	p.tick(clk.Add(time.Second))
	poll.Until(t, "combined digest", func() bool { return len(sink.events()) == 3 })
	d := sink.events()[2]
	if !d.Digest || d.Count != 8 {
		t.Fatalf("combined digest count %d digest %v", d.Count, d.Digest)
	}
	// The eight differ in path: a combined digest must not claim one.
	if d.Path != "" || d.Binary != nil || d.Error != "EACCES" || len(d.PIDs) != 8 {
		t.Errorf("combined digest fields: path %q error %q pids %v", d.Path, d.Error, d.PIDs)
	}
	if st := p.Stats().Sinks[0]; st.Limited != 8 || st.DeliveredCount != 10 {
		t.Errorf("stats %+v", st)
	}
}

func TestGlobalCap(t *testing.T) {
	clk := &fakeClock{now: t0}
	a, b := &recSink{}, &recSink{}
	p := setup(t, clk, a, func(c *Config, s *SinkCommon) {
		s.Dedup.Window = Off
		c.RateLimit.GlobalRate, c.RateLimit.GlobalBurst = 1, 3
		tb := &testConfig{sink: b}
		tb.Name = "b"
		tb.Dedup.Window = Off
		c.Sinks = append(c.Sinks, SinkEntry{Kind: "test", Index: 1, Config: tb})
	})
	for i := range 4 {
		p.Handle(failure(clk.Now(), uint32(i+1), fmt.Sprintf("/bin/p%d", i), -13))
	}
	poll.Until(t, "3 notifications", func() bool { return len(a.events())+len(b.events()) == 3 })
	p.tick(clk.Now())
	if n := len(a.events()) + len(b.events()); n != 3 {
		t.Fatalf("global cap exceeded: %d", n)
	}
	p.tick(clk.Add(2 * time.Second))
	poll.Until(t, "all", func() bool { return a.total() == 4 && b.total() == 4 })
}

func TestQueueFullFoldsInsteadOfDropping(t *testing.T) {
	clk := &fakeClock{now: t0}
	sink := &recSink{block: make(chan struct{})}
	p := setup(t, clk, sink, func(c *Config, s *SinkCommon) {
		s.Dedup.Window = Off
		s.QueueSize = 2
	})
	for i := range 20 {
		p.Handle(failure(clk.Now(), uint32(i+1), fmt.Sprintf("/bin/p%d", i), -13))
	}
	st := p.Stats().Sinks[0]
	if st.DroppedQueueFull < 17 {
		t.Errorf("queue of 2 took too much: %+v", st)
	}
	close(sink.block)
	poll.Until(t, "queue drained", func() bool { return p.Stats().Sinks[0].Queued == 0 })
	p.tick(clk.Now())
	poll.Until(t, "all 20 accounted", func() bool { return sink.total() == 20 })
}

func TestSpoolRetriesUntilRecovery(t *testing.T) {
	clk := &fakeClock{now: t0}
	sink := &recSink{failN: 5}
	p := setup(t, clk, sink, func(c *Config, s *SinkCommon) { s.Dedup.Window = Off })
	for i := range 4 {
		p.Handle(failure(clk.Now(), uint32(i+1), fmt.Sprintf("/bin/p%d", i), -13))
	}
	poll.Until(t, "recovery", func() bool { return len(sink.events()) == 4 })
	got := sink.events()
	for i, e := range got {
		if e.Path != fmt.Sprintf("/bin/p%d", i) {
			t.Errorf("order: %d is %s", i, e.Path)
		}
	}
	st := p.Stats().Sinks[0]
	if st.Spooled == 0 || st.Delivered != 4 || st.Failed != 0 || st.SpoolEntries != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestPermanentFailureCounted(t *testing.T) {
	clk := &fakeClock{now: t0}
	sink := &recSink{}
	p := setup(t, clk, sink, func(c *Config, s *SinkCommon) { s.Dedup.Window = Off })
	p.Handle(failure(clk.Now(), 1, "/permanent", -13))
	p.Handle(failure(clk.Now(), 2, "/fine", -13))
	poll.Until(t, "delivery", func() bool { return len(sink.events()) == 1 })
	if st := p.Stats().Sinks[0]; st.Failed != 1 || st.Spooled != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestSpoolSurvivesRestart(t *testing.T) {
	clk := &fakeClock{now: t0}
	dead := &recSink{failN: 1 << 30}
	dir := t.TempDir()
	cfg := func(s *recSink) Config {
		c := DefaultConfig()
		c.Spool.Dir = dir
		c.Spool.RetryInitial = Duration(time.Hour) // no retry during the first run
		c.Spool.RetryMax = Duration(time.Hour)
		tc := &testConfig{sink: s}
		tc.Name = "rec"
		tc.Dedup.Window = Duration(time.Hour)
		c.Sinks = []SinkEntry{{Kind: "test", Config: tc}}
		return c
	}
	p, err := New(cfg(dead), Env{}, WithClock(clk), manualTick())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		p.Handle(failure(clk.Now(), uint32(i+1), "/bin/same", -13))
	}
	p.Handle(failure(clk.Now(), 9, "/bin/other", -2))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "test-rec", "*.json"))
	if len(files) != 3 {
		t.Fatalf("spool holds %d files, want 3 (two first occurrences, one digest)", len(files))
	}

	alive := &recSink{}
	p2, err := New(cfg(alive), Env{}, WithClock(clk), manualTick())
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close(context.Background())
	poll.Until(t, "replay", func() bool { return alive.total() == 6 })
	// Entries are removed after their delivery was acknowledged.
	poll.Until(t, "spool emptied", func() bool {
		files, _ := filepath.Glob(filepath.Join(dir, "test-rec", "*.json"))
		return len(files) == 0
	})
	if alive.total() != 6 {
		t.Errorf("replayed %d failures, want 6", alive.total())
	}
}

func TestSpoolBoundMergesOldest(t *testing.T) {
	dir := t.TempDir()
	sp, err := openSpool(dir, 1<<20, 3, 16)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := sp.put(failure(t0.Add(time.Duration(i)*time.Second), uint32(i+1), "/bin/x", -13)); err != nil {
			t.Fatal(err)
		}
	}
	if sp.len() != 3 {
		t.Fatalf("spool has %d entries", sp.len())
	}
	var total uint64
	for sp.len() > 0 {
		ev, err := sp.head()
		if err != nil {
			t.Fatal(err)
		}
		total += count(ev)
		sp.pop()
	}
	if total != 10 {
		t.Errorf("counts add up to %d, want 10", total)
	}

	// By size: every entry is a few hundred bytes.
	sp2, _ := openSpool(filepath.Join(dir, "b"), 1500, 1000, 16)
	for i := range 20 {
		sp2.put(failure(t0, uint32(i+1), "/bin/x", -13))
	}
	if sp2.bytes > 1500 {
		t.Errorf("spool holds %d bytes", sp2.bytes)
	}
	total = 0
	for sp2.len() > 0 {
		ev, _ := sp2.head()
		total += count(ev)
		sp2.pop()
	}
	if total != 20 {
		t.Errorf("counts add up to %d, want 20", total)
	}

	// A corrupt entry is set aside, not retried forever.
	os.WriteFile(filepath.Join(dir, "00000000000000000000.json"), []byte("{"), 0o600)
	sp3, _ := openSpool(dir, 1<<20, 10, 16)
	if _, err := sp3.head(); !errors.Is(err, errCorrupt) {
		t.Errorf("corrupt entry: %v", err)
	}
	if sp3.len() != 0 {
		t.Errorf("corrupt entry still queued")
	}
}

func TestReloadKeepsHeldNotifications(t *testing.T) {
	clk := &fakeClock{now: t0}
	old := &recSink{}
	p := setup(t, clk, old, func(c *Config, s *SinkCommon) { s.Dedup.Window = Duration(time.Hour) })
	for i := range 3 {
		p.Handle(failure(clk.Now(), uint32(i+1), "/bin/x", -13))
	}
	// A PATH search in flight survives the switch.
	p.Handle(failure(clk.Now(), 50, "/usr/bin/y", -2))

	fresh := &recSink{}
	cfg := DefaultConfig()
	cfg.Spool.Dir = t.TempDir()
	tc := &testConfig{sink: fresh}
	tc.Name = "new"
	tc.Dedup.Window = Off
	cfg.Sinks = []SinkEntry{{Kind: "test", Config: tc}}
	if err := p.Reload(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if old.total() != 3 || !old.closed {
		t.Errorf("old sink got %d failures (closed %v), want 3 (first + digest of 2)", old.total(), old.closed)
	}
	p.Handle(failure(clk.Now(), 50, "/bin/y", -2))
	p.tick(clk.Add(time.Second))
	poll.Until(t, "new sink", func() bool { return fresh.total() == 2 })
	if ev := fresh.events()[0]; !slices.Equal(ev.Tried, []string{"/usr/bin", "/bin"}) {
		t.Errorf("search across reload: tried %v", ev.Tried)
	}
	st := p.Stats()
	if len(st.Sinks) != 1 || st.Sinks[0].Name != "new" {
		t.Errorf("stats after reload %+v", st)
	}
}

func TestHandleAfterCloseCounted(t *testing.T) {
	clk := &fakeClock{now: t0}
	p := setup(t, clk, &recSink{}, nil)
	p.Close(context.Background())
	p.Handle(failure(clk.Now(), 1, "/bin/x", -13))
	if p.Stats().AfterClose != 1 {
		t.Errorf("after close not counted")
	}
}

// TestBurstCountsAddUp: 10,000 failures from a storm (a few programs,
// many pids, PATH searches in between) give a bounded number of
// notifications whose counts add up exactly.
func TestBurstCountsAddUp(t *testing.T) {
	clk := &fakeClock{now: t0}
	sink := &recSink{}
	p := setup(t, clk, sink, func(c *Config, s *SinkCommon) {
		s.RateLimit = RateLimitConfig{Rate: 1, Burst: 5}
		s.Dedup.Window = Duration(time.Minute)
		s.QueueSize = 64
	})
	const n = 10000
	resolvedWant := 0
	for i := 0; i < n; {
		tid := uint32(1000 + i)
		switch i % 10 {
		case 0, 1:
			// A PATH search that finds nothing: two ENOENTs, then another exec.
			p.Handle(failure(clk.Now(), tid, "/usr/bin/missing", -2))
			p.Handle(failure(clk.Now(), tid, "/bin/missing", -2))
			i += 2
		case 2:
			// A PATH search that succeeds: resolved, not reported.
			p.Handle(failure(clk.Now(), tid, "/usr/local/bin/ls", -2))
			p.Succeeded(&event.Success{TID: tid, PID: tid, Name: "ls"})
			resolvedWant++
			i++
		default:
			p.Handle(failure(clk.Now(), tid, fmt.Sprintf("/opt/app%d/run", i%37), -13))
			i++
		}
		if i%500 == 0 {
			p.tick(clk.Add(100 * time.Millisecond))
		}
	}
	for range 200 {
		p.tick(clk.Add(5 * time.Second))
		poll.Until(t, "queue to drain", func() bool { return p.Stats().Sinks[0].Queued == 0 })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if st.Detected != n || st.PathSearchResolved != uint64(resolvedWant) {
		t.Fatalf("detected %d resolved %d", st.Detected, st.PathSearchResolved)
	}
	if got := sink.total(); got != n-uint64(resolvedWant) {
		t.Errorf("notifications stand for %d failures, want exactly %d", got, n-resolvedWant)
	}
	notes := len(sink.events())
	// 38 distinct failures (37 programs, one missing command) within one
	// dedup window: at most a first occurrence and a digest each, plus the
	// combined digests of what the bucket held back — however many failures.
	if notes > 2*38+2 {
		t.Errorf("%d notifications for a %v storm", notes, clk.Now().Sub(t0))
	}
	t.Logf("%d failures -> %d notifications (%d resolved searches), stats %+v", n, notes, resolvedWant, st.Sinks[0])
}

// TestDeadSinkBlocksNobody: one sink hangs in Send; the other still gets
// everything, and Close with a deadline spools what the hung one holds.
func TestDeadSinkBlocksNobody(t *testing.T) {
	clk := &fakeClock{now: t0}
	hung := &recSink{block: make(chan struct{})}
	ok := &recSink{}
	var spoolDir string
	p := setup(t, clk, hung, func(c *Config, s *SinkCommon) {
		s.Dedup.Window = Off
		s.QueueSize = 4
		tb := &testConfig{sink: ok}
		tb.Name = "ok"
		tb.Dedup.Window = Off
		c.Sinks = append(c.Sinks, SinkEntry{Kind: "test", Index: 1, Config: tb})
		spoolDir = c.Spool.Dir
	})
	for i := range 50 {
		p.Handle(failure(clk.Now(), uint32(i+1), fmt.Sprintf("/bin/p%d", i), -13))
	}
	poll.Until(t, "healthy sink", func() bool { return ok.total() == 50 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// What the hung sink never got is on disk, counts intact.
	sp, err := openSpool(filepath.Join(spoolDir, "test-rec"), 1<<30, 1<<20, 16)
	if err != nil {
		t.Fatal(err)
	}
	var total uint64
	for sp.len() > 0 {
		ev, err := sp.head()
		if err != nil {
			t.Fatal(err)
		}
		total += count(ev)
		sp.pop()
	}
	if total != 50 {
		t.Errorf("hung sink's spool stands for %d failures, want 50", total)
	}
}

// TestLimitedFirstOccurrenceGoesOutWhenTokensReturn: a failure the rate
// limit kept back does not wait for the end of its dedup window.
func TestLimitedFirstOccurrenceGoesOutWhenTokensReturn(t *testing.T) {
	clk := &fakeClock{now: t0}
	sink := &recSink{}
	p := setup(t, clk, sink, func(c *Config, s *SinkCommon) {
		s.RateLimit = RateLimitConfig{Rate: 1, Burst: 1}
	})
	p.Handle(failure(clk.Now(), 1, "/bin/a", -13))
	p.Handle(failure(clk.Now(), 2, "/bin/b", -13))
	p.Handle(failure(clk.Now(), 3, "/bin/b", -13))
	p.Handle(failure(clk.Now(), 4, "/bin/c", -13))
	poll.Until(t, "first", func() bool { return len(sink.events()) == 1 })
	p.tick(clk.Add(time.Second))
	poll.Until(t, "second", func() bool { return len(sink.events()) == 2 })
	p.tick(clk.Add(time.Second))
	poll.Until(t, "third", func() bool { return len(sink.events()) == 3 })
	p.tick(clk.Add(time.Second))
	got := sink.events()
	if len(got) != 3 {
		t.Fatalf("%d notifications", len(got))
	}
	byPath := map[string]event.Event{}
	for _, e := range got {
		byPath[e.Path] = e
	}
	if b := byPath["/bin/b"]; !b.Digest || b.Count != 2 {
		t.Errorf("/bin/b: digest %v count %d, want a digest of 2", b.Digest, b.Count)
	}
	if c := byPath["/bin/c"]; c.Digest || c.Count != 1 || c.Process.PID != 4 {
		t.Errorf("/bin/c: digest %v count %d pid %d, want the failure itself", c.Digest, c.Count, c.Process.PID)
	}
	if st := p.Stats().Sinks[0]; st.Limited != 2 || st.Deduped != 1 {
		t.Errorf("stats %+v", st)
	}
	// Repeats after the release wait for the window's digest as usual.
	p.Handle(failure(clk.Now(), 5, "/bin/c", -13))
	p.tick(clk.Add(time.Minute))
	if n := len(sink.events()); n != 3 {
		t.Errorf("repeat sent before the window ended (%d)", n)
	}
	p.tick(clk.Add(10 * time.Minute))
	poll.Until(t, "digest", func() bool { return sink.total() == 5 })
}

// limitedBurst makes n distinct failures, a millisecond apart, that a
// sink limited to rate holds back after the first.
func limitedBurst(t *testing.T, n int, rate Rate) (*Pipeline, *fakeClock, *recSink) {
	t.Helper()
	clk := &fakeClock{now: t0}
	sink := &recSink{}
	p := setup(t, clk, sink, func(c *Config, s *SinkCommon) {
		s.RateLimit = RateLimitConfig{Rate: rate, Burst: 1}
	})
	for i := range n {
		p.Handle(failure(clk.Add(time.Millisecond), uint32(i+1), fmt.Sprintf("/bin/p%02d", i), -13))
	}
	return p, clk, sink
}

// wantOldestFirst checks that got are limitedBurst's n failures in order.
func wantOldestFirst(t *testing.T, got []event.Event, n int) {
	t.Helper()
	var paths []string
	for _, e := range got {
		paths = append(paths, e.Path)
	}
	if len(got) != n {
		t.Fatalf("%d notifications, want %d: %v", len(got), n, paths)
	}
	for i, p := range paths {
		if want := fmt.Sprintf("/bin/p%02d", i); p != want {
			t.Fatalf("notification %d is %s, want %s: not oldest first (%v)", i+1, p, want, paths)
		}
	}
}

// TestLimitedFirstOccurrencesGoOutOldestFirst: after a burst of distinct
// failures the rate limit holds back, each goes out in the order it
// happened, so the oldest waits least and a sink's stream stays in time
// order.
func TestLimitedFirstOccurrencesGoOutOldestFirst(t *testing.T) {
	const n = 40
	p, clk, sink := limitedBurst(t, n, 1)
	// A repeat of an early one must not move it.
	p.Handle(failure(clk.Now(), 100, "/bin/p05", -13))
	for i := 1; i < n; i++ {
		p.tick(clk.Add(time.Second))
		poll.Until(t, fmt.Sprintf("notification %d", i+1), func() bool { return len(sink.events()) == i+1 })
	}
	got := sink.events()
	wantOldestFirst(t, got, n)
	if c := got[5].Count; c != 2 {
		t.Errorf("/bin/p05 counts %d, want 2", c)
	}
}

// At shutdown, too, what the limit held back goes out oldest first.
func TestLimitedFirstOccurrencesFlushedOldestFirst(t *testing.T) {
	const n = 40
	p, _, sink := limitedBurst(t, n, 0.001)
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantOldestFirst(t, sink.events(), n)
}

// flakySink fails a random share of sends with a retryable error.
type flakySink struct {
	recSink
	mu   sync.Mutex
	rand *rand.Rand
	p    float64
}

func (s *flakySink) Send(ctx context.Context, ev *event.Event) error {
	s.mu.Lock()
	fail := s.rand.Float64() < s.p
	s.mu.Unlock()
	if fail {
		return errors.New("flaky")
	}
	return s.recSink.Send(ctx, ev)
}

// sinkConfig hands a prepared sink to the pipeline, for test kinds that
// take the global defaults.
type sinkConfig struct {
	SinkCommon
	sink Sink
}

func (c *sinkConfig) Validate() error       { return nil }
func (c *sinkConfig) New(Env) (Sink, error) { return c.sink, nil }

func init() {
	for _, kind := range []string{"flaky", "busy"} {
		RegisterSink(kind, func() SinkConfig { return &sinkConfig{} })
	}
}

// spooledCount is how many failures the spool of a sink holds.
func spooledCount(t *testing.T, dir string) uint64 {
	t.Helper()
	sp, err := openSpool(dir, 1<<40, 1<<30, 16)
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for sp.len() > 0 {
		ev, err := sp.head()
		if err != nil {
			t.Fatal(err)
		}
		n += count(ev)
		sp.pop()
	}
	return n
}

// TestRandomizedAccounting drives the pipeline with random failures,
// successes and ticks into sinks with small queues, tight limits, filters
// and random send errors, and checks that for every sink each failure is
// filtered, resolved, delivered or spooled — exactly once.
func TestRandomizedAccounting(t *testing.T) {
	for seed := int64(1); seed <= 5; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewSource(seed))
			clk := &fakeClock{now: t0}
			plain := &recSink{}
			flaky := &flakySink{rand: rand.New(rand.NewSource(seed)), p: 0.3}
			spoolDir := t.TempDir()
			build := func() Config {
				c := DefaultConfig()
				c.Spool.Dir = spoolDir
				c.Spool.RetryInitial = Duration(5 * time.Millisecond)
				c.Spool.RetryMax = Duration(20 * time.Millisecond)
				c.Spool.MaxEntries = 5 // forces merging in the spool
				c.RateLimit.GlobalRate, c.RateLimit.GlobalBurst = 20, 20
				tc := &testConfig{sink: plain}
				tc.Name = "rec"
				tc.QueueSize = 3
				tc.RateLimit = RateLimitConfig{Rate: 2, Burst: 3}
				tc.Dedup = DedupConfig{Window: Duration(2 * time.Second), MaxKeys: 4}
				fc := &sinkConfig{sink: flaky}
				fc.Name = "flaky"
				fc.QueueSize = 2
				fc.Filter.ExcludeErrors = []string{"EPERM"}
				fc.Dedup.Window = Off
				fc.RateLimit = RateLimitConfig{Rate: Off}
				c.Sinks = []SinkEntry{{Kind: "test", Config: tc}, {Kind: "flaky", Config: fc}}
				return c
			}
			p, err := New(build(), Env{}, WithClock(clk), manualTick())
			if err != nil {
				t.Fatal(err)
			}
			errnos := []int32{-2, -2, -13, -1, -8}
			for i := range 3000 {
				if i == 1500 {
					// A reload mid-storm keeps every count.
					rctx, rcancel := context.WithTimeout(context.Background(), time.Duration(r.Intn(20))*time.Millisecond)
					if err := p.Reload(rctx, build()); err != nil {
						t.Fatal(err)
					}
					rcancel()
				}
				tid := uint32(r.Intn(40) + 1)
				switch x := r.Intn(100); {
				case x < 70:
					dir := []string{"/usr/local/bin", "/usr/bin", "/bin", "relative"}[r.Intn(4)]
					p.Handle(failure(clk.Now(), tid, dir+"/prog"+fmt.Sprint(r.Intn(6)), errnos[r.Intn(len(errnos))]))
				case x < 80:
					p.Succeeded(&event.Success{TID: tid, PID: tid, Name: "prog" + fmt.Sprint(r.Intn(6))})
				default:
					p.tick(clk.Add(time.Duration(r.Intn(400)) * time.Millisecond))
				}
			}
			// A short shutdown deadline abandons deliveries; they must be spooled.
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(r.Intn(30))*time.Millisecond)
			defer cancel()
			if err := p.Close(ctx); err != nil {
				t.Fatal(err)
			}
			st := p.Stats()
			t.Logf("stats %+v", st)
			in := st.Detected - st.Filtered - st.PathSearchResolved
			for i, s := range []*recSink{plain, &flaky.recSink} {
				ss := st.Sinks[i]
				spooled := spooledCount(t, filepath.Join(spoolDir, "test-rec"))
				if i == 1 {
					spooled = spooledCount(t, filepath.Join(spoolDir, "flaky-flaky"))
				}
				got := s.total() + spooled + ss.Filtered
				if got != in {
					t.Errorf("sink %s: delivered %d + spooled %d + filtered %d = %d, want %d (stats %+v)",
						ss.Name, s.total(), spooled, ss.Filtered, got, in, ss)
				}
			}
		})
	}
}

// TestSpoolEvictionSparesEntryInFlight: while the worker sends the oldest
// entry, a full spool merges the ones behind it, so a successful send is
// neither lost nor reported twice.
func TestSpoolEvictionSparesEntryInFlight(t *testing.T) {
	sp, err := openSpool(t.TempDir(), 1<<20, 2, 16)
	if err != nil {
		t.Fatal(err)
	}
	put := func(pid uint32) {
		if _, err := sp.put(failure(t0, pid, "/bin/x", -13)); err != nil {
			t.Fatal(err)
		}
	}
	put(1)
	inflight, _ := sp.head()
	put(2)
	put(3)
	put(4)
	sp.pop() // delivered
	var rest uint64
	for sp.len() > 0 {
		ev, _ := sp.head()
		rest += count(ev)
		sp.pop()
	}
	if inflight.Process.PID != 1 || count(inflight)+rest != 4 {
		t.Errorf("sent pid %d (%d) and %d remained, want pid 1 and 4 in all", inflight.Process.PID, count(inflight), rest)
	}
}

// busyErr is a retryable error carrying a destination's Retry-After.
type busyErr struct{ wait time.Duration }

func (e busyErr) Error() string             { return "busy" }
func (e busyErr) RetryAfter() time.Duration { return e.wait }

// busySink answers the first sends with a Retry-After and records when
// each attempt came.
type busySink struct {
	recSink
	mu       sync.Mutex
	fails    int
	attempts []time.Time
}

func (s *busySink) Send(ctx context.Context, ev *event.Event) error {
	s.mu.Lock()
	s.attempts = append(s.attempts, time.Now())
	fail := len(s.attempts) <= s.fails
	s.mu.Unlock()
	if fail {
		return busyErr{300 * time.Millisecond}
	}
	return s.recSink.Send(ctx, ev)
}

// TestRetryAfterHonoured checks the worker waits at least as long as the
// destination asked, although its own backoff (5–20 ms) is far shorter.
func TestRetryAfterHonoured(t *testing.T) {
	clk := &fakeClock{now: t0}
	sink := &busySink{fails: 2}
	cfg := DefaultConfig()
	cfg.Spool.Dir = t.TempDir()
	cfg.Spool.RetryInitial = Duration(5 * time.Millisecond)
	cfg.Spool.RetryMax = Duration(20 * time.Millisecond)
	cfg.RateLimit.GlobalRate = Off
	bc := &sinkConfig{sink: sink}
	bc.Name = "busy"
	bc.RateLimit = RateLimitConfig{Rate: Off}
	cfg.Sinks = []SinkEntry{{Kind: "busy", Config: bc}}
	p, err := New(cfg, Env{Host: "h"}, WithClock(clk), manualTick())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	p.Handle(failure(clk.Now(), 7, "/bin/x", -13))
	poll.Until(t, "delivery after Retry-After", func() bool { return sink.total() == 1 })
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.attempts) != 3 {
		t.Fatalf("attempts = %d, want 3", len(sink.attempts))
	}
	for i := 1; i < 3; i++ {
		if gap := sink.attempts[i].Sub(sink.attempts[i-1]); gap < 300*time.Millisecond {
			t.Errorf("attempt %d came %v after the previous one; the destination asked for 300ms", i+1, gap)
		}
	}
}

// The backlog of held-back first occurrences stays bounded while the
// oldest waits for a token and users keep taking each other's places in
// the table: the places of evicted keys are dropped.
func TestBacklogBoundedUnderEvictions(t *testing.T) {
	clk := &fakeClock{now: t0}
	sink := &recSink{}
	p := setup(t, clk, sink, func(c *Config, s *SinkCommon) {
		s.RateLimit = RateLimitConfig{Rate: 0.0001, Burst: 1}
		s.Dedup.MaxKeys = 10
	})
	const users, each = 2000, 5
	for uid := range users {
		for k := range each {
			ev := failure(clk.Add(time.Millisecond), uint32(uid+1), fmt.Sprintf("/bin/u%d-%d", uid, k), -13)
			ev.Process.UID = uint32(uid)
			p.Handle(ev)
		}
	}
	p.mu.Lock()
	s := p.sinks[0]
	n, keys := len(s.backlog), len(s.entries)
	p.mu.Unlock()
	if n > 2*keys+65 {
		t.Errorf("backlog of %d places for %d keys after %d failures", n, keys, users*each)
	}
}

// TestStatsByErrorCause: detected failures are counted by errno and cause,
// a kernel-folded repeat by its count, filtered ones included (they were
// detected), and an errno without a name as "other".
func TestStatsByErrorCause(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}
	p := setup(t, clk, &recSink{}, func(c *Config, _ *SinkCommon) { c.Filter.ExcludeErrors = []string{"EACCES"} })
	a := failure(clk.now, 1, "/bin/a", -2)
	a.Cause = event.CauseNotFound
	b := failure(clk.now, 2, "/bin/b", -2)
	b.Cause, b.Count = event.CauseNotFound, 5
	c := failure(clk.now, 3, "/bin/c", -13)
	c.Cause = event.CauseNotExecutable
	d := failure(clk.now, 4, "/bin/d", -4095)
	for _, ev := range []*event.Event{a, b, c, d} {
		p.Handle(ev)
	}
	got := p.Stats().ByErrorCause
	want := []ErrorCauseCount{
		{ErrorCause{"EACCES", event.CauseNotExecutable}, 1},
		{ErrorCause{"ENOENT", event.CauseNotFound}, 6},
		{ErrorCause{"other", ""}, 1},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ByErrorCause = %+v, want %+v", got, want)
	}
}
