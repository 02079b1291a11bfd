package notify

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

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
			waitFor(t, "reports during the repeats", func() bool { return len(sink.events()) >= 100 })
		}
	}
	p.tick(clk.Add(PathSearchHold))
	waitFor(t, "every repeat", func() bool { return sink.total() == n })
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
	waitFor(t, "a report while directories kept coming", func() bool { return len(sink.events()) > 0 })
	p.tick(clk.Add(PathSearchHold))
	waitFor(t, "every failure", func() bool { return sink.total() == uint64(n) })
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
	waitFor(t, "the bad interpreter at once", func() bool { return len(sink.events()) == 1 })

	pre := func(tid uint32, p string) *event.Event {
		ev := failure(clk.Now(), tid, p, -2)
		ev.Stage = event.StagePreOpen
		return ev
	}
	p.Handle(pre(91, "/usr/local/bin/tool"))
	p.Handle(badInterp(91, "/usr/bin/tool"))
	p.Handle(pre(91, "/bin/tool"))
	p.tick(clk.Add(PathSearchHold))
	waitFor(t, "the search", func() bool { return len(sink.events()) == 2 })
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
	waitFor(t, "both searches", func() bool { return len(sink.events()) == 2 })
	got := sink.events()
	if got[0].Tried != nil || got[0].Count != 2 {
		t.Errorf("search with a lost marker: tried %v count %d, want no directory list and count 2", got[0].Tried, got[0].Count)
	}
	if !slices.Equal(got[1].Tried, []string{"/usr/local/bin", "/usr/bin"}) {
		t.Errorf("search after the loss: tried %v", got[1].Tried)
	}
}
