// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"

	"github.com/execfaild/execfaild/probe/event"
)

// foldFlushProg hands the kernel's repeat counts over (bpf/execfaild.bpf.c).
const foldFlushProg = execfaildProgFoldFlush

const (
	// foldFlushDelay: how long after a folded failure's first repeat its
	// count is collected. Short, so a storm reaches the sinks within it;
	// the pipeline's dedup windows do the grouping in time.
	foldFlushDelay = 100 * time.Millisecond
	// foldIdle: an entry without repeats for this long is forgotten (its
	// next failure is sent in full again), and while any is remembered a
	// flush runs at this period, in case a wake-up record was lost.
	foldIdle = time.Second
)

// haveLegacyOnly: the kernel lacks bpf_loop (5.17), so the default build
// cannot load and the legacy one is used.
func haveLegacyOnly() bool {
	return features.HaveProgramHelper(ebpf.Kprobe, asm.FnLoop) != nil
}

// haveFoldFlush: BPF_PROG_TYPE_SYSCALL (5.14) runs the flush program.
func haveFoldFlush() bool {
	return features.HaveProgramType(ebpf.Syscall) == nil
}

// folder remembers the full record of every failure whose repeats the
// kernel counts, by rid, and schedules the flushes that collect them.
type folder struct {
	prog *ebpf.Program

	mu      sync.Mutex
	samples map[uint64]*event.Event
	timer   *time.Timer
	closed  bool
}

func newFolder(prog *ebpf.Program) *folder {
	return &folder{prog: prog, samples: map[uint64]*event.Event{}}
}

// remember keeps the sample for rid; repeats records stand in for copies.
func (f *folder) remember(rid uint64, e *event.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := *e
	f.samples[rid] = &c
}

// repeats builds the event that stands for n repeats of rid's failure,
// first..last: every field of the sample, whose failures the kernel found
// identical in all of them but argv and envp, which it does not compare.
func (f *folder) repeats(rid, n uint64, first, last time.Time, gone bool) (*event.Event, bool) {
	f.mu.Lock()
	s, ok := f.samples[rid]
	if gone {
		delete(f.samples, rid)
	}
	f.mu.Unlock()
	if !ok || n == 0 {
		return nil, ok
	}
	e := *s
	e.Time = last
	e.Count = n
	e.Digest = n > 1
	e.FirstSeen, e.LastSeen = &first, &last
	e.Arguments, e.ArgumentsTruncated = nil, false
	e.Environment, e.EnvironmentTruncated, e.EnvironmentRedacted = nil, false, false
	return &e, true
}

// schedule asks for a flush within d, unless one is due sooner.
func (f *folder) schedule(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || f.timer != nil {
		return
	}
	f.timer = time.AfterFunc(d, func() {
		f.mu.Lock()
		f.timer = nil
		f.mu.Unlock()
		f.flush(false)
		f.mu.Lock()
		pending := len(f.samples) > 0
		f.mu.Unlock()
		if pending {
			f.schedule(foldIdle)
		}
	})
}

// flush runs the kernel's flush: counts go to the ring buffer as repeats
// records; force forgets every entry (shutdown, after detaching).
func (f *folder) flush(force bool) error {
	args := make([]byte, 16)
	// struct fold_flush_args, in the kernel's byte order.
	binary.NativeEndian.PutUint64(args[0:], uint64(foldIdle))
	if force {
		binary.NativeEndian.PutUint64(args[8:], 1)
	}
	ret, err := f.prog.Run(&ebpf.RunOptions{Context: args})
	if err != nil {
		return fmt.Errorf("flush folded repeats: %w", err)
	}
	if ret != 0 {
		// The ring buffer was full: the counts stay in the kernel for
		// the next flush.
		f.schedule(foldFlushDelay)
	}
	return nil
}

// stop cancels scheduled flushes (Close).
func (f *folder) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	if f.timer != nil {
		f.timer.Stop()
		f.timer = nil
	}
}

// remembered is how many failures' repeats the kernel may still count.
func (f *folder) remembered() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.samples)
}
