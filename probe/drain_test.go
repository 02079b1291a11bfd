// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// ringLab is a Probe over a real ring buffer or perf event array and
// `lost` array, fed by a tiny program run through BPF_PROG_TEST_RUN
// instead of exec hooks: the shutdown path is tested against the kernel's
// buffer semantics without provoking execs.
type ringLab struct {
	p         *Probe
	transport string
	events    *ebpf.Map
	lost      *ebpf.Map
	detached  atomic.Int32
}

// transports are the ways records reach userspace; the drain tests run
// over each.
var transports = []string{TransportRingbuf, TransportPerf}

// eachTransport runs test once per transport, as a subtest.
func eachTransport(t *testing.T, test func(t *testing.T, transport string)) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) { test(t, tr) })
	}
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
	return newLab(t, TransportRingbuf, lostSlots)
}

// newLab makes a lab whose records go through transport; a perf lab's
// buffers are 64 KiB per CPU.
func newLab(t *testing.T, transport string, lostSlots uint32) *ringLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create BPF maps")
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatal(err)
	}
	lab := &ringLab{transport: transport}
	var err error
	if transport == TransportPerf {
		lab.events, err = ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.PerfEventArray, KeySize: 4, ValueSize: 4})
	} else {
		lab.events, err = ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 1 << 16})
	}
	if err != nil {
		t.Skipf("%s unavailable: %v", transport, err)
	}
	// The loss counters as each transport's build has them: per CPU in
	// the perf builds, one mmapable array in the default build.
	lost := &ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: lostSlots}
	if transport != TransportPerf {
		lost.Type, lost.Flags = ebpf.Array, unix.BPF_F_MMAPABLE
	}
	if lab.lost, err = ebpf.NewMap(lost); err != nil {
		t.Fatal(err)
	}
	p := &Probe{
		mode:      ModeFentry,
		transport: transport,
		enricher:  newEnricher(Config{ProcRoot: t.TempDir()}),
		links:     []link.Link{fakeLink{lab: lab}, fakeLink{lab: lab}},
	}
	p.coll = &ebpf.Collection{Maps: map[string]*ebpf.Map{eventsMap: lab.events, lostMap: lab.lost}}
	if p.lostMem, err = mapLost(lab.lost); err != nil {
		t.Fatal(err)
	}
	if (p.lostMem != nil) != (transport != TransportPerf && lostSlots >= 2) {
		t.Fatalf("%s lab, %d loss slots: counters mapped %v", transport, lostSlots, p.lostMem != nil)
	}
	if transport == TransportPerf {
		p.reader, err = newPerfReader(lab.events, minPerfBuffer, &p.perfLost)
	} else {
		p.reader, err = newRingReader(lab.events)
	}
	if err != nil {
		t.Fatal(err)
	}
	lab.p = p
	t.Cleanup(func() { lab.p.Close() })
	return lab
}

// emit puts rec into the ring buffer n times, as a hook would.
func (lab *ringLab) emit(t *testing.T, rec []byte, n int) {
	t.Helper()
	if refused := lab.emitCounted(t, rec, n); refused != 0 {
		t.Fatalf("%s refused %d of %d records", lab.transport, refused, n)
	}
}

// emitCounted puts rec into the buffer n times and returns how many times
// the output helper refused it (a full buffer). A perf lab's records all
// go to one CPU's buffer: the calling thread is pinned to its CPU.
func (lab *ringLab) emitCounted(t *testing.T, rec []byte, n int) (refused int) {
	t.Helper()
	src, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: uint32(len(rec)), MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := src.Put(uint32(0), rec); err != nil {
		t.Fatal(err)
	}
	prog, err := ebpf.NewProgram(lab.producer(src, len(rec)))
	if err != nil {
		t.Skipf("cannot load a %s producer: %v", lab.transport, err)
	}
	defer prog.Close()
	if lab.transport == TransportPerf {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var one unix.CPUSet
		one.Set(0)
		if err := unix.SchedSetaffinity(0, &one); err != nil {
			t.Fatalf("pin to CPU 0: %v", err)
		}
	}
	// One record per run: a repeated run that a signal interrupts is run
	// again whole, which would emit some records twice.
	for range n {
		ret, err := prog.Run(&ebpf.RunOptions{Data: make([]byte, 14)})
		if err != nil {
			t.Fatalf("run producer: %v", err)
		}
		if ret != 0 {
			refused++
		}
	}
	return refused
}

// producer is a program that sends src's one value, size bytes, and
// returns the output helper's result: a socket filter for the ring
// buffer, an XDP program (whose context the perf helper takes) for perf.
func (lab *ringLab) producer(src *ebpf.Map, size int) *ebpf.ProgramSpec {
	lookup := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1), // the context, for the perf helper
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, src.FD()),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
	}
	output := asm.Instructions{
		asm.Mov.Reg(asm.R2, asm.R0),
		asm.LoadMapPtr(asm.R1, lab.events.FD()),
		asm.Mov.Imm(asm.R3, int32(size)),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnRingbufOutput.Call(),
		asm.Return(),
	}
	typ := ebpf.SocketFilter
	if lab.transport == TransportPerf {
		typ = ebpf.XDP
		output = asm.Instructions{
			asm.Mov.Reg(asm.R4, asm.R0),
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.LoadMapPtr(asm.R2, lab.events.FD()),
			asm.LoadImm(asm.R3, 0xffffffff, asm.DWord), // BPF_F_CURRENT_CPU
			asm.Mov.Imm(asm.R5, int32(size)),
			asm.FnPerfEventOutput.Call(),
			asm.Return(),
		}
	}
	insns := append(lookup, output...)
	insns = append(insns, asm.Mov.Imm(asm.R0, 0).WithSymbol("out"), asm.Return())
	return &ebpf.ProgramSpec{Type: typ, License: "GPL", Instructions: insns}
}

// setLost stores per-CPU loss counts whose sum is total in slot.
func (lab *ringLab) setLost(t *testing.T, slot uint32, total uint64) {
	t.Helper()
	if lab.lost.Type() != ebpf.PerCPUArray {
		if err := lab.lost.Put(slot, total); err != nil {
			t.Fatal(err)
		}
		return
	}
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
	eachTransport(t, func(t *testing.T, transport string) {
		lab := newLab(t, transport, 2)
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
	})
}

// A Read blocked on an empty ring must end at Drain, not at the deadline:
// nothing can arrive once the hooks are detached.
func TestDrainEndsBlockedRead(t *testing.T) {
	eachTransport(t, func(t *testing.T, transport string) {
		lab := newLab(t, transport, 2)
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
	})
}

// What the deadline leaves in the ring is counted, failures and markers
// apart, never delivered and never silently gone.
func TestDrainDeadlineCountsTheRest(t *testing.T) {
	eachTransport(t, func(t *testing.T, transport string) {
		lab := newLab(t, transport, 2)
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
		if got := lab.p.LostMarkers(); got != st.LostMarkers {
			t.Errorf("LostMarkers() = %d, Stats says %d", got, st.LostMarkers)
		}
	})
}

// Close without Drain still detaches, ends a blocked Read and counts what
// it leaves behind.
func TestCloseCountsUndrained(t *testing.T) {
	eachTransport(t, func(t *testing.T, transport string) {
		lab := newLab(t, transport, 2)
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
	})
}

// The final summary is written after Close: the kernel's loss counters
// must survive it, failures and markers apart.
func TestStatsAfterClose(t *testing.T) {
	eachTransport(t, func(t *testing.T, transport string) {
		lab := newLab(t, transport, 2)
		lab.setLost(t, lostFailure, 4321)
		lab.setLost(t, lostMarker, 17)
		before := lab.p.Stats()
		if before.LostFailures != 4321 || before.LostMarkers != 17 {
			t.Fatalf("stats while open: %+v, want 4321 lost failures, 17 lost markers", before)
		}
		if got := lab.p.LostMarkers(); got != 17 {
			t.Fatalf("LostMarkers() while open = %d, want 17", got)
		}
		if err := lab.p.Close(); err != nil {
			t.Fatal(err)
		}
		if after := lab.p.Stats(); after != before {
			t.Errorf("stats after Close = %+v, want %+v", after, before)
		}
		if got := lab.p.LostMarkers(); got != 17 {
			t.Errorf("LostMarkers() after Close = %d, want 17", got)
		}
	})
}

// An object built before markers had their own slot has a one-entry
// `lost` array: failures still count, markers read as none.
func TestStatsOneSlotLostArray(t *testing.T) {
	eachTransport(t, func(t *testing.T, transport string) {
		lab := newLab(t, transport, 1)
		lab.setLost(t, lostFailure, 9)
		if st := lab.p.Stats(); st.LostFailures != 9 || st.LostMarkers != 0 {
			t.Errorf("stats = %+v, want 9 lost failures, 0 markers", st)
		}
	})
}

// perfLab is a perf lab, or a skip where the kernel has no perf event array.
func perfLab(t *testing.T) *ringLab { return newLab(t, TransportPerf, 2) }

// A sample the perf buffer could not take is counted: by the program,
// which is told the output failed, or, where a kernel would not tell it,
// by the PERF_RECORD_LOST count the buffer hands over - never both.
func TestPerfLostSamplesCounted(t *testing.T) {
	lab := perfLab(t)
	// 16 KiB records: a 64 KiB buffer takes three of them.
	big := markerRecord(t)
	big = append(big, make([]byte, 16<<10-len(big))...)
	refused := lab.emitCounted(t, big, 10)
	if refused == 0 {
		t.Fatal("a 64 KiB perf buffer took ten 16 KiB records")
	}
	// Read what fit, then one more record: the kernel writes its count of
	// lost samples ahead of the first record it can take again.
	for range 10 - refused {
		if _, err := lab.p.Read(); err != nil {
			t.Fatal(err)
		}
	}
	lab.emit(t, markerRecord(t), 1)
	lab.p.Drain(time.Now().Add(time.Minute))
	_, s, err := readAll(t, lab.p, 10*time.Second)
	if !errors.Is(err, ErrClosed) || s != 1 {
		t.Fatalf("drain after the loss gave %d markers and %v, want 1 and ErrClosed", s, err)
	}
	if got := lab.p.perfLost.Load(); got != uint64(refused) {
		t.Errorf("perf buffer reported %d lost samples, the helper refused %d", got, refused)
	}
	// The program did not count them: they count as lost failures.
	if st := lab.p.Stats(); st.LostFailures != uint64(refused) || st.LostMarkers != 0 {
		t.Errorf("uncounted by the program: stats %+v, want %d lost failures", st, refused)
	}
	// The program counted them (as it does when the helper reports the
	// loss): counted once, as the kind the program said.
	lab.setLost(t, lostMarker, uint64(refused))
	if st := lab.p.Stats(); st.LostFailures != 0 || st.LostMarkers != uint64(refused) {
		t.Errorf("counted by the program: stats %+v, want %d lost markers and no lost failure", st, refused)
	}
}

// The largest record the program can send fits a perf sample (its size
// is a 16-bit field) and arrives whole: every argument of a record whose
// strings fill all of its room.
func TestPerfLargestRecord(t *testing.T) {
	lab := perfLab(t)
	b := crlfScript()
	b.h.Flags &^= flagEnvTrunc
	b.h.EnvLen, b.h.Envc = 0, 0
	b.data.Truncate(int(b.h.PathLen) + int(b.h.InterpLen) + int(b.h.BinPathLen) + int(b.h.StdinPathLen))
	b.h.ArgsLen, b.h.Argc = 0, 0
	for i := 0; b.data.Len() < RecordDataSize; i++ {
		arg := fmt.Sprintf("%05d-", i) + strings.Repeat("x", min(200, RecordDataSize-b.data.Len()-7))
		b.h.ArgsLen += uint32(b.strs(arg))
		b.h.Argc++
	}
	rec := b.bytes(t)
	if want := headerSize + RecordDataSize; len(rec) != want {
		t.Fatalf("built a %d-byte record, the largest is %d", len(rec), want)
	}
	lab.emit(t, rec, 1)
	lab.p.Drain(time.Now().Add(time.Minute))
	got, err := lab.p.Read()
	if err != nil || got.Failure == nil {
		t.Fatalf("largest record: %+v, %v", got, err)
	}
	if n := len(got.Failure.Arguments); n != int(b.h.Argc) {
		t.Errorf("largest record arrived with %d arguments, sent %d", n, b.h.Argc)
	}
	if last := got.Failure.Arguments[len(got.Failure.Arguments)-1]; !strings.HasPrefix(last, fmt.Sprintf("%05d-", b.h.Argc-1)) {
		t.Errorf("last argument %.20q, want the %dth", last, b.h.Argc)
	}
	if st := lab.p.Stats(); st.Undecodable != 0 {
		t.Errorf("stats %+v", st)
	}
}
