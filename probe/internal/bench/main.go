// Command bench measures what the probe costs the programs it watches: the
// per-call time of failing execs (ENOENT, EACCES, ENOEXEC) and of successful
// fork+exec+wait, with nothing attached and with the probe attached in this
// process (a reader draining every record), alternating over several rounds.
// It prints a report, not a verdict.
//
// The execs are issued by a worker child (this binary re-executed), never by
// the process that holds the probe, so the probe sees them exactly as it
// sees any other program's, and the worker's own clock measures them.
//
// Run as root: bash probe/bench.sh [-n 20000] [-spawn 2000] [-mode auto]
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/cilium/ebpf"

	"github.com/execfaild/execfaild/probe"
)

const workerEnv = "EXECFAILD_BENCH_WORKER" // "kind:count:path"

func main() {
	if w := os.Getenv(workerEnv); w != "" {
		os.Exit(worker(w))
	}
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

type kind struct {
	name  string
	path  string
	errno unix.Errno // 0: a successful fork+exec
	n     int
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	n := fs.Int("n", 20000, "failing execs per kind and phase")
	spawn := fs.Int("spawn", 2000, "successful fork+exec+wait per phase")
	mode := fs.String("mode", "auto", "probe mode: auto, fentry, kprobe or tracepoint")
	rounds := fs.Int("rounds", 5, "alternating baseline/attached rounds; each issues n/rounds calls per kind")
	target := fs.String("target", "", "program the successful execs run (default: a generated 120-byte static ELF that exits 0)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n <= 0 || *spawn <= 0 || *rounds <= 0 {
		return errors.New("-n, -spawn and -rounds must be positive")
	}
	if unix.Geteuid() != 0 {
		return errors.New("needs root to attach the probe")
	}

	dir, err := os.MkdirTemp("", "execfaild-bench-")
	if err != nil {
		return fmt.Errorf("scratch dir: %w", err)
	}
	defer os.RemoveAll(dir)
	files := map[string]struct {
		mode os.FileMode
		data []byte
	}{
		"not-executable": {0o644, []byte("#!/bin/sh\n")},
		// Printable text, like a script without #!: unprintable leading
		// bytes would make the kernel run modprobe for a binfmt module on
		// every exec, and the bench would measure modprobe.
		"garbage": {0o755, []byte("no binary format, no interpreter line\n")},
		"exit0":   {0o755, tinyELF()},
	}
	for name, f := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			return fmt.Errorf("chmod %s: %w", name, err)
		}
	}
	succ := filepath.Join(dir, "exit0")
	if *target != "" {
		succ = *target
	}
	kinds := []kind{
		{"ENOENT", filepath.Join(dir, "does-not-exist"), unix.ENOENT, *n},
		{"EACCES", filepath.Join(dir, "not-executable"), unix.EACCES, *n},
		{"ENOEXEC", filepath.Join(dir, "garbage"), unix.ENOEXEC, *n},
		{"success", succ, 0, *spawn},
	}

	// Warm caches (dentries, the worker binary, the target) so the first
	// measured phase is not penalised.
	for _, k := range kinds {
		w := k
		w.n = max(k.n/20, 10)
		if _, err := measure(w); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}

	// Other load on the machine moves single measurements by a factor of
	// two; alternating short baseline and attached phases and taking the
	// median of each spreads that noise over both sides evenly.
	perRound := make([]kind, len(kinds))
	for i, k := range kinds {
		perRound[i] = k
		perRound[i].n = max(k.n / *rounds, 1)
	}
	baseline := make([][]float64, len(kinds))
	attached := make([][]float64, len(kinds))
	bpfNs := make([][]float64, len(kinds))
	var attachedMode string
	var failures, successes, lost uint64
	for r := range *rounds {
		// The baseline settles as long as the attached phase drains, so
		// both see the same pauses between kinds.
		b, err := phase(perRound, func(int) {}, func(int) { time.Sleep(300 * time.Millisecond) })
		if err != nil {
			return fmt.Errorf("baseline round %d: %w", r+1, err)
		}
		a, res, err := attachedPhase(perRound, *mode)
		if err != nil {
			return fmt.Errorf("attached round %d: %w", r+1, err)
		}
		attachedMode = res.mode
		failures += res.failures
		successes += res.successes
		lost += res.lost
		for i := range kinds {
			baseline[i] = append(baseline[i], b[i])
			attached[i] = append(attached[i], a[i])
			if res.bpfNs != nil {
				bpfNs[i] = append(bpfNs[i], res.bpfNs[i])
			}
		}
	}

	fmt.Fprintf(out, "execfaild probe cost  kernel %s  mode %s  cpus %d  load %s\n", release(), attachedMode, numCPU(), loadavg())
	fmt.Fprintf(out, "ns per call as the calling process measured it, median of %d alternating rounds;\n", *rounds)
	fmt.Fprintf(out, "success = fork+exec+wait of %s\n\n", filepath.Base(succ))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	// The ratio of minimums is the least disturbed by other load: each
	// side's best round is the one with the least interference.
	fmt.Fprintln(tw, "kind\tcalls\tbaseline ns/op\tattached ns/op\tratio\tratio of minimums\tbpf ns/op\tbaseline range\tattached range\t")
	for i, k := range perRound {
		b, a := median(baseline[i]), median(attached[i])
		bpf := "-"
		if len(bpfNs[i]) > 0 {
			bpf = fmt.Sprintf("%.0f", median(bpfNs[i]))
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%.2f\t%.2f\t%s\t%s\t%s\t\n", k.name, k.n**rounds, b, a, a/b,
			slices.Min(attached[i])/slices.Min(baseline[i]), bpf, span(baseline[i]), span(attached[i]))
	}
	tw.Flush()
	issued := uint64(3 * perRound[0].n * *rounds)
	fmt.Fprintf(out, "\nwhile attached: %d failure events read, %d lost in the ring buffer (failing execs issued: %d,\n", failures, lost, issued)
	fmt.Fprintf(out, "plus any other program's); %d success records\n", successes)
	fmt.Fprintf(out, "bpf ns/op: run time of the probe's BPF programs per exec (kernel statistics; includes\n")
	fmt.Fprintf(out, "every other exec on the machine meanwhile); the rest of the difference is the reader's\n")
	fmt.Fprintf(out, "userspace work competing for the same CPUs\n")
	return nil
}

type phaseResult struct {
	mode                      string
	failures, successes, lost uint64
	// bpfNs is the time the probe's BPF programs ran per exec of each
	// kind (kernel run-time statistics), nil when the kernel keeps none.
	bpfNs []float64
}

// attachedPhase attaches the probe with a reader draining it, measures
// every kind, and detaches.
func attachedPhase(kinds []kind, mode string) ([]float64, phaseResult, error) {
	var res phaseResult
	cfg := probe.DefaultConfig()
	cfg.Mode = mode
	// The programs the probe loads are the ones that appear during New.
	before := programIDs()
	p, err := probe.New(cfg)
	if err != nil {
		return nil, res, fmt.Errorf("attach probe: %w", err)
	}
	res.mode = p.Mode()
	var failures, successes atomic.Uint64
	var readErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			rec, err := p.Read()
			if err != nil {
				if !errors.Is(err, probe.ErrClosed) {
					readErr = err
				}
				return
			}
			if rec.Failure != nil {
				failures.Add(1)
			}
			if rec.Success != nil {
				successes.Add(1)
			}
		}
	}()
	// Records still queued belong to the kind that produced them: wait
	// until the reader has drained them (no progress for 300 ms) before the
	// next kind, so one kind's backlog is not billed to the next. Bounded,
	// so a stuck reader cannot hang the report.
	drain := func() {
		for last, deadline := failures.Load(), time.Now().Add(20*time.Second); time.Now().Before(deadline); {
			time.Sleep(300 * time.Millisecond)
			now := failures.Load()
			if now == last {
				return
			}
			last = now
		}
	}
	progs, progErr := newPrograms(before)
	if progErr != nil {
		fmt.Fprintf(os.Stderr, "bench: no BPF run-time statistics: %v\n", progErr)
	}
	var mark time.Duration
	res.bpfNs = make([]float64, len(kinds))
	pre := func(int) { mark = progs.runtime() }
	post := func(i int) {
		res.bpfNs[i] = float64(progs.runtime()-mark) / float64(kinds[i].n)
		drain()
	}
	ns, err := phase(kinds, pre, post)
	progs.close()
	if progErr != nil {
		res.bpfNs = nil
	}
	res.lost = p.Stats().LostFailures
	if cerr := p.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close probe: %w", cerr)
	}
	wg.Wait()
	if err == nil && readErr != nil {
		err = fmt.Errorf("probe read: %w", readErr)
	}
	res.failures, res.successes = failures.Load(), successes.Load()
	return ns, res, err
}

// programIDs lists the BPF programs loaded right now.
func programIDs() map[ebpf.ProgramID]bool {
	ids := map[ebpf.ProgramID]bool{}
	for id := ebpf.ProgramID(0); ; {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			return ids
		}
		ids[next], id = true, next
	}
}

// programs are the probe's BPF programs, found as the ones that were not
// loaded before it attached, with run-time statistics switched on.
type programs struct {
	progs []*ebpf.Program
	stats io.Closer
}

func newPrograms(before map[ebpf.ProgramID]bool) (*programs, error) {
	ps := &programs{}
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return ps, fmt.Errorf("enable BPF run-time statistics: %w", err)
	}
	ps.stats = stats
	for id := range programIDs() {
		if before[id] {
			continue
		}
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // unloaded meanwhile: not the probe's
		}
		ps.progs = append(ps.progs, p)
	}
	if len(ps.progs) == 0 {
		return ps, errors.New("no BPF programs appeared when the probe attached")
	}
	return ps, nil
}

func (ps *programs) runtime() time.Duration {
	var total time.Duration
	for _, p := range ps.progs {
		if st, err := p.Stats(); err == nil {
			total += st.Runtime
		}
	}
	return total
}

func (ps *programs) close() {
	for _, p := range ps.progs {
		p.Close()
	}
	if ps.stats != nil {
		ps.stats.Close()
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func span(v []float64) string {
	return fmt.Sprintf("%.0f-%.0f", slices.Min(v), slices.Max(v))
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// phase measures every kind once, returning ns per call in kinds' order.
func phase(kinds []kind, pre, post func(i int)) ([]float64, error) {
	out := make([]float64, len(kinds))
	for i, k := range kinds {
		pre(i)
		ns, err := measure(k)
		if err != nil {
			return nil, err
		}
		out[i] = ns
		post(i)
	}
	return out, nil
}

// measure runs a worker for one kind and returns its ns per call.
func measure(k kind) (float64, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("own executable: %w", err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d:%d:%s", workerEnv, int(k.errno), k.n, k.path))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%s worker: %w: %s", k.name, err, strings.TrimSpace(stderr.String()))
	}
	total, err := strconv.ParseInt(strings.TrimSpace(stdout.String()), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s worker output %q: %w", k.name, stdout.String(), err)
	}
	return float64(total) / float64(k.n), nil
}

// worker issues count execs of path and prints the elapsed nanoseconds.
// errno 0 means fork+exec+wait of a program that must exit 0; otherwise
// every raw execve must fail with that errno.
func worker(spec string) int {
	parts := strings.SplitN(spec, ":", 3)
	if len(parts) != 3 {
		fmt.Fprintf(os.Stderr, "bad worker spec %q\n", spec)
		return 2
	}
	errno, err1 := strconv.Atoi(parts[0])
	count, err2 := strconv.Atoi(parts[1])
	path := parts[2]
	if err1 != nil || err2 != nil {
		fmt.Fprintf(os.Stderr, "bad worker spec %q\n", spec)
		return 2
	}
	var elapsed time.Duration
	if errno == 0 {
		attr := &syscall.ProcAttr{Env: []string{}}
		start := time.Now()
		for range count {
			pid, err := syscall.ForkExec(path, []string{path}, attr)
			if err != nil {
				fmt.Fprintf(os.Stderr, "fork+exec %s: %v\n", path, err)
				return 1
			}
			var ws syscall.WaitStatus
			if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
				fmt.Fprintf(os.Stderr, "%s: wait %v status %v\n", path, err, ws)
				return 1
			}
		}
		elapsed = time.Since(start)
	} else {
		p, _ := unix.BytePtrFromString(path)
		a0, _ := unix.BytePtrFromString(filepath.Base(path))
		argv := []*byte{a0, nil}
		envv := []*byte{nil}
		start := time.Now()
		for range count {
			_, _, e := unix.Syscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(p)),
				uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&envv[0])))
			if int(e) != errno {
				fmt.Fprintf(os.Stderr, "execve %s: got %v, want %v\n", path, e, unix.Errno(errno))
				return 1
			}
		}
		elapsed = time.Since(start)
	}
	fmt.Println(elapsed.Nanoseconds())
	return 0
}

// tinyELF is a complete x86-64 executable that calls exit(0): one ELF
// header, one PT_LOAD program header, nine bytes of code. Its exec cost is
// almost all kernel, which is what the probe could add to.
func tinyELF() []byte {
	const base = 0x400000
	code := []byte{
		0xb8, 0x3c, 0x00, 0x00, 0x00, // mov eax, 60 (exit)
		0x31, 0xff, // xor edi, edi
		0x0f, 0x05, // syscall
	}
	const ehsize, phsize = 64, 56
	size := uint64(ehsize + phsize + len(code))
	var b bytes.Buffer
	b.Write([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0})
	b.Write(make([]byte, 8))
	le := binary.LittleEndian
	hdr := struct {
		Type, Machine              uint16
		Version                    uint32
		Entry, Phoff, Shoff        uint64
		Flags                      uint32
		Ehsize, Phentsize, Phnum   uint16
		Shentsize, Shnum, Shstrndx uint16
	}{2, 0x3e, 1, base + ehsize + phsize, ehsize, 0, 0, ehsize, phsize, 1, 0, 0, 0}
	binary.Write(&b, le, hdr)
	ph := struct {
		Type, Flags                         uint32
		Offset, Vaddr, Paddr, Filesz, Memsz uint64
		Align                               uint64
	}{1, 5, 0, base, base, size, size, 0x1000}
	binary.Write(&b, le, ph)
	b.Write(code)
	return b.Bytes()
}

func release() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

func numCPU() int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return 0
	}
	return set.Count()
}
