package probe

import (
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
)

// ringLab is a Probe over a real ring buffer and `lost` array, fed by a
// tiny socket filter run through BPF_PROG_TEST_RUN instead of exec hooks:
// the shutdown path is tested against the kernel's ring buffer semantics
// without provoking execs.
type ringLab struct {
	p        *Probe
	events   *ebpf.Map
	lost     *ebpf.Map
	detached atomic.Int32
}

// fakeLink stands for an attached hook; it only records being detached.
type fakeLink struct {
	link.Link
	lab *ringLab
}

func (l fakeLink) Close() error {
	l.lab.detached.Add(1)
	return nil
}

func newRingLab(t *testing.T, lostSlots uint32) *ringLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create BPF maps")
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatal(err)
	}
	lab := &ringLab{}
	var err error
	lab.events, err = ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 1 << 16})
	if err != nil {
		t.Skipf("ring buffer unavailable: %v", err)
	}
	lab.lost, err = ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: lostSlots})
	if err != nil {
		t.Fatal(err)
	}
	reader, err := ringbuf.NewReader(lab.events)
	if err != nil {
		t.Fatal(err)
	}
	coll := &ebpf.Collection{Maps: map[string]*ebpf.Map{"events": lab.events, "lost": lab.lost}}
	lab.p = &Probe{
		mode:     ModeFentry,
		coll:     coll,
		reader:   reader,
		enricher: newEnricher(Config{ProcRoot: t.TempDir()}),
		links:    []link.Link{fakeLink{lab: lab}, fakeLink{lab: lab}},
	}
	t.Cleanup(func() { lab.p.Close() })
	return lab
}

// emit puts rec into the ring buffer n times, as a hook would.
func (lab *ringLab) emit(t *testing.T, rec []byte, n int) {
	t.Helper()
	src, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: uint32(len(rec)), MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := src.Put(uint32(0), rec); err != nil {
		t.Fatal(err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:    ebpf.SocketFilter,
		License: "GPL",
		Instructions: asm.Instructions{
			asm.StoreImm(asm.RFP, -4, 0, asm.Word),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -4),
			asm.LoadMapPtr(asm.R1, src.FD()),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "out"),
			asm.Mov.Reg(asm.R2, asm.R0),
			asm.LoadMapPtr(asm.R1, lab.events.FD()),
			asm.Mov.Imm(asm.R3, int32(len(rec))),
			asm.Mov.Imm(asm.R4, 0),
			asm.FnRingbufOutput.Call(),
			asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
			asm.Return(),
		},
	})
	if err != nil {
		t.Skipf("cannot load a ring buffer producer: %v", err)
	}
	defer prog.Close()
	// One record per run: a repeated run that a signal interrupts is run
	// again whole, which would emit some records twice.
	for range n {
		if _, err := prog.Run(&ebpf.RunOptions{Data: make([]byte, 14)}); err != nil {
			t.Fatalf("run producer: %v", err)
		}
	}
}

// setLost stores per-CPU loss counts whose sum is total in slot.
func (lab *ringLab) setLost(t *testing.T, slot uint32, total uint64) {
	t.Helper()
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	per := make([]uint64, ncpu)
	per[0] = total
	if ncpu > 1 {
		per[0], per[ncpu-1] = total-total/2, total/2
	}
	if err := lab.lost.Put(slot, per); err != nil {
		t.Fatal(err)
	}
}

func failureRecord(t *testing.T) []byte { return crlfScript().bytes(t) }

func markerRecord(t *testing.T) []byte {
	b := &rawBuilder{}
	b.h.Kind, b.h.Pid, b.h.Tid = kindSuccess, 7, 8
	return b.bytes(t)
}

// readAll reads until Read ends, within limit.
func readAll(t *testing.T, p *Probe, limit time.Duration) (failures, successes int, err error) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			rec, rerr := p.Read()
			if rerr != nil {
				err = rerr
				return
			}
			if rec.Failure != nil {
				failures++
			}
			if rec.Success != nil {
				successes++
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(limit):
		t.Fatalf("Read still delivering after %v", limit)
	}
	return failures, successes, err
}

// Shutdown detaches first, then hands over everything already in the ring
// buffer before Read ends: a failure caught just before a stop is reported.
func TestDrainDeliversWhatTheRingHolds(t *testing.T) {
	lab := newRingLab(t, 2)
	lab.emit(t, failureRecord(t), 5)
	lab.emit(t, markerRecord(t), 2)
	lab.p.Drain(time.Now().Add(time.Minute))
	if got := lab.detached.Load(); got != 2 {
		t.Fatalf("%d of 2 hooks detached by Drain", got)
	}
	f, s, err := readAll(t, lab.p, 10*time.Second)
	if !errors.Is(err, ErrClosed) {
		t.Errorf("Read ended with %v, want ErrClosed", err)
	}
	if f != 5 || s != 2 {
		t.Errorf("drained %d failures, %d markers; want 5, 2", f, s)
	}
	if err := lab.p.Close(); err != nil {
		t.Fatal(err)
	}
	if got := lab.detached.Load(); got != 2 {
		t.Errorf("hooks detached %d times, want once each", got)
	}
	st := lab.p.Stats()
	if st.Failures != 5 || st.Successes != 2 || st.Undrained != 0 || st.LostMarkers != 0 || st.Undecodable != 0 {
		t.Errorf("stats after a full drain: %+v", st)
	}
}

// A Read blocked on an empty ring must end at Drain, not at the deadline:
// nothing can arrive once the hooks are detached.
func TestDrainEndsBlockedRead(t *testing.T) {
	lab := newRingLab(t, 2)
	ended := make(chan error, 1)
	go func() {
		_, err := lab.p.Read()
		ended <- err
	}()
	time.Sleep(50 * time.Millisecond) // let it block in the ring buffer
	start := time.Now()
	lab.p.Drain(time.Now().Add(time.Hour))
	select {
	case err := <-ended:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("blocked Read returned %v, want ErrClosed", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("blocked Read took %v to notice the drain", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("blocked Read still waiting after Drain on an empty ring")
	}
}

// What the deadline leaves in the ring is counted, failures and markers
// apart, never delivered and never silently gone.
func TestDrainDeadlineCountsTheRest(t *testing.T) {
	lab := newRingLab(t, 2)
	lab.emit(t, failureRecord(t), 3)
	lab.emit(t, markerRecord(t), 2)
	lab.emit(t, []byte("not a record"), 1)
	lab.p.Drain(time.Now().Add(-time.Second))
	f, s, err := readAll(t, lab.p, 10*time.Second)
	if !errors.Is(err, ErrClosed) || f != 0 || s != 0 {
		t.Errorf("after the deadline Read gave %d failures, %d markers, %v; want none and ErrClosed", f, s, err)
	}
	lab.p.Close()
	st := lab.p.Stats()
	if st.Undrained != 3 || st.LostMarkers != 2 || st.Undecodable != 1 || st.Failures != 0 {
		t.Errorf("stats = %+v, want 3 undrained failures, 2 lost markers, 1 undecodable", st)
	}
}

// Close without Drain still detaches, ends a blocked Read and counts what
// it leaves behind.
func TestCloseCountsUndrained(t *testing.T) {
	lab := newRingLab(t, 2)
	lab.emit(t, failureRecord(t), 4)
	lab.p.Close()
	if got := lab.detached.Load(); got != 2 {
		t.Errorf("%d of 2 hooks detached by Close", got)
	}
	if _, err := lab.p.Read(); !errors.Is(err, ErrClosed) {
		t.Errorf("Read after Close: %v", err)
	}
	if st := lab.p.Stats(); st.Undrained != 4 {
		t.Errorf("Undrained = %d, want 4", st.Undrained)
	}
}

// The final summary is written after Close: the kernel's loss counters
// must survive it, failures and markers apart.
func TestStatsAfterClose(t *testing.T) {
	lab := newRingLab(t, 2)
	lab.setLost(t, lostFailure, 4321)
	lab.setLost(t, lostMarker, 17)
	before := lab.p.Stats()
	if before.LostFailures != 4321 || before.LostMarkers != 17 {
		t.Fatalf("stats while open: %+v, want 4321 lost failures, 17 lost markers", before)
	}
	if err := lab.p.Close(); err != nil {
		t.Fatal(err)
	}
	if after := lab.p.Stats(); after != before {
		t.Errorf("stats after Close = %+v, want %+v", after, before)
	}
}

// An object built before markers had their own slot has a one-entry
// `lost` array: failures still count, markers read as none.
func TestStatsOneSlotLostArray(t *testing.T) {
	lab := newRingLab(t, 1)
	lab.setLost(t, lostFailure, 9)
	if st := lab.p.Stats(); st.LostFailures != 9 || st.LostMarkers != 0 {
		t.Errorf("stats = %+v, want 9 lost failures, 0 markers", st)
	}
}
