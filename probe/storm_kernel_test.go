// SPDX-License-Identifier: Apache-2.0

package probe_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"

	"github.com/execfaild/execfaild/probe"
	"github.com/execfaild/execfaild/probe/internal/provoke"
)

// stormSize is how many identical failures a storm case provokes: a
// hundred thousand at full speed on a real CPU; under emulation, where
// each exec costs a hundred times more, the two thousand that exact
// counting needs (every fold, flush and full record path is taken many
// times over) without making the matrix wait minutes per cell.
func stormSize() int {
	if os.Getenv("EXECFAILD_TEST_VM") != "1" {
		return 100000
	}
	return 2000
}

// sumCounts adds up the failures events of tid stand for, per path.
func (c *collector) sumCounts(tid uint32) (total uint64, perPath map[string]uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	perPath = map[string]uint64{}
	for _, e := range c.failures {
		if e.Process.TID != tid {
			continue
		}
		n := e.Count
		if n == 0 {
			n = 1
		}
		total += n
		perPath[e.Path] += n
	}
	return total, perPath
}

// stormIdle is how long a storm's records may stop arriving before the
// wait for them gives up: the wait follows progress, so a machine two or
// three times slower than this one takes longer but does not fail.
const stormIdle = 3 * eventTimeout

// waitCount waits until tid's failures add up to want, then for a quiet
// period in which no more may arrive. It gives up when the count has not
// grown for stormIdle.
func (c *collector) waitCount(tid uint32, want uint64) (uint64, map[string]uint64) {
	last, since := uint64(0), time.Now()
	for time.Since(since) < stormIdle {
		n, _ := c.sumCounts(tid)
		if n >= want {
			break
		}
		if n != last {
			last, since = n, time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(quietPeriod)
	return c.sumCounts(tid)
}

// TestKernelStorm: a storm of identical failures from one thread is
// accounted for exactly - counted in the kernel where it can fold them,
// sent in full where its table is full - with nothing lost.
func TestKernelStorm(t *testing.T) {
	requireRoot(t)
	n := stormSize()
	// Each probe start verifies the whole program, tens of seconds under
	// emulation: cases that ask for the same probe share one, started
	// when the first of them runs and checked once all have.
	type started struct {
		p   *probe.Probe
		col *collector
	}
	probes := map[string]started{}
	parent := t
	start := func(t *testing.T, share string, maxKeys, ring int) (*probe.Probe, *collector) {
		if s, ok := probes[share]; ok {
			return s.p, s.col
		}
		cfg := probe.DefaultConfig()
		cfg.FoldMaxKeys = maxKeys
		cfg.RingBufferBytes = ring
		if m := testMode(); m != "" {
			cfg.Mode = m
		}
		p := startProbe(t, cfg)
		col := collect(p)
		parent.Cleanup(func() { closeAndCheck(parent, p, col) })
		probes[share] = started{p, col}
		return p, col
	}
	// A build that cannot fold sends every failure in full: its storms
	// need a buffer that holds a whole burst, and the table's size
	// changes nothing, so every case runs on one probe.
	folds := expectFolding()
	foldingStart := func(t *testing.T, share string, maxKeys, ring int) (*probe.Probe, *collector) {
		if !folds {
			return start(t, "full records", probe.DefaultConfig().FoldMaxKeys, 1<<26)
		}
		return start(t, share, maxKeys, ring)
	}
	lab, err := provoke.NewLab(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })
	storm := func(t *testing.T, col *collector, paths []string, repeat int) (uint32, map[string]uint64) {
		t.Helper()
		t0 := time.Now()
		o, err := lab.Storm(paths, repeat)
		if err != nil {
			t.Fatal(err)
		}
		defer o.Release()
		if o.Got != unix.ENOENT {
			t.Fatalf("storm got %s, want ENOENT", unix.ErrnoName(o.Got))
		}
		want := uint64(len(paths) * repeat)
		made := time.Since(t0)
		got, per := col.waitCount(o.Caller.TID, want)
		// The matrix reports each cell's slowest rate from this line.
		t.Logf("%d failures over %d paths in %v; rate: %.3f ms per exec, %v more to read them",
			want, len(paths), time.Since(t0).Round(time.Millisecond),
			float64(made.Microseconds())/1000/float64(want), (time.Since(t0) - made - quietPeriod).Round(time.Millisecond))
		if got != want {
			t.Errorf("failures of tid %d add up to %d, provoked %d", o.Caller.TID, got, want)
		}
		return o.Caller.TID, per
	}

	t.Run("one_path", func(t *testing.T) {
		p, col := foldingStart(t, "default", probe.DefaultConfig().FoldMaxKeys, probe.DefaultConfig().RingBufferBytes)
		if p.Report().Folding != folds {
			t.Fatalf("the probe folds: %v; expected from the kernel's features and the mode: %v", p.Report().Folding, folds)
		}
		storm(t, col, []string{lab.Path("storm-missing")}, n)
		s := p.Stats()
		t.Logf("stats %+v (build %s, folding %v)", s, p.Report().Build, p.Report().Folding)
		if p.Report().Folding && s.Folded == 0 {
			t.Errorf("no failure was folded in the kernel: %+v", s)
		}
		if !p.Report().Folding && p.Report().Build != "legacy" && haveSyscallPrograms() {
			t.Errorf("the kernel runs syscall programs, yet the probe does not fold")
		}
	})

	t.Run("table_full", func(t *testing.T) {
		// 40 distinct failures, 16 table entries: the rest go out in
		// full, and every path's count is still exact. The full records
		// of a burst this fast need a ring buffer that holds them all.
		_, col := foldingStart(t, "table_full", 16, 1<<26)
		var paths []string
		for i := range 40 {
			paths = append(paths, lab.Path(fmt.Sprintf("storm-missing-%02d", i)))
		}
		repeat := max(n/100, 50)
		_, per := storm(t, col, paths, repeat)
		for _, p := range paths {
			if per[p] != uint64(repeat) {
				t.Errorf("%s: %d failures reported, %d provoked", p, per[p], repeat)
			}
		}
	})

	t.Run("distinct_then_repeats", func(t *testing.T) {
		// A burst of distinct failures, four times what the table
		// holds, none repeated, then one failure repeated: the burst
		// must not take the table and leave the repeats uncounted.
		if !folds {
			t.Skip("this kernel and mode do not fold (TestKernelStorm/one_path checked it)")
		}
		// Its own probe: the table must start empty.
		p, col := start(t, "distinct_then_repeats", 16, 1<<26)
		var paths []string
		for i := range 64 {
			paths = append(paths, lab.Path(fmt.Sprintf("storm-distinct-%02d", i)))
		}
		storm(t, col, paths, 1)
		before := p.Stats().Folded
		repeat := max(n/10, 100)
		storm(t, col, []string{lab.Path("storm-after-distinct")}, repeat)
		if folded := p.Stats().Folded - before; folded < uint64(repeat)/2 {
			t.Errorf("after a burst of distinct failures %d of %d repeats were folded in the kernel", folded, repeat)
		}
	})

	t.Run("idle_then_again", func(t *testing.T) {
		// Between the two bursts the kernel forgets the failure; the
		// second burst starts over, and the total is exact.
		// one_path's probe: its storm is over, and this one has a path
		// and a thread of its own.
		_, col := foldingStart(t, "default", probe.DefaultConfig().FoldMaxKeys, probe.DefaultConfig().RingBufferBytes)
		path := lab.Path("storm-missing-again")
		tid, _ := storm(t, col, []string{path}, n/10)
		time.Sleep(1500 * time.Millisecond)
		storm(t, col, []string{path}, n/10)
		if got, _ := col.sumCounts(tid); got != uint64(n/10) {
			t.Errorf("the first burst's tid %d now adds up to %d, want %d", tid, got, n/10)
		}
	})
}

// haveSyscallPrograms: BPF_PROG_TYPE_SYSCALL, which folding needs (5.14).
func haveSyscallPrograms() bool {
	return features.HaveProgramType(ebpf.Syscall) == nil
}

// expectFolding tells whether the probe the tests start here folds
// repeats in the kernel: the default build (bpf_loop, 5.17, and the ring
// buffer transport) on a kernel that runs syscall programs.
func expectFolding() bool {
	return testMode() != probe.ModeLegacy && testTransport() != probe.TransportPerf &&
		features.HaveProgramHelper(ebpf.Kprobe, asm.FnLoop) == nil && haveSyscallPrograms()
}

// TestKernelLossCounted: distinct failures that nobody reads while they
// come overflow a small buffer. What did not fit is counted as lost - in
// the counters the kernel and the reader share (mapped into memory in the
// default build, per CPU in the others) - and with what was delivered it
// makes up every failure provoked.
func TestKernelLossCounted(t *testing.T) {
	requireRoot(t)
	const n = 2000
	cfg := probe.DefaultConfig()
	cfg.RingBufferBytes = 1 << 16
	if m := testMode(); m != "" {
		cfg.Mode = m
	}
	p := startProbe(t, cfg)
	t.Cleanup(func() { p.Close() })
	lab, err := provoke.NewLab(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })
	paths := make([]string, n)
	for i := range paths {
		paths[i] = lab.Path(fmt.Sprintf("lost-%d", i))
	}
	before := p.Stats().LostFailures
	o, err := lab.Storm(paths, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Release()
	if o.Got != unix.ENOENT {
		t.Fatalf("storm got %s, want ENOENT", unix.ErrnoName(o.Got))
	}
	// Only now is the buffer read.
	col := collect(p)
	p.Drain(time.Now().Add(eventTimeout))
	select {
	case <-col.done:
	case <-time.After(2 * eventTimeout):
		t.Fatal("Read did not return ErrClosed after Drain")
	}
	counted, _ := col.sumCounts(o.Caller.TID)
	lost := p.Stats().LostFailures - before
	t.Logf("%d failures: %d delivered, %d counted lost (build %s, transport %s)", n, counted, lost, p.Report().Build, p.Report().Transport)
	if lost == 0 || counted >= n {
		t.Fatalf("%d delivered, %d lost: a %d-byte buffer held the whole storm, the case is not made", counted, lost, cfg.RingBufferBytes)
	}
	// Another program's failure lost meanwhile would count too: a few
	// are allowed above, none below.
	if counted+lost < n || counted+lost > n+10 {
		t.Errorf("%d delivered + %d lost = %d, provoked %d", counted, lost, counted+lost, n)
	}
}
