// Package probe loads the BPF program of bpf/, attaches it in the richest
// mode the kernel allows, and turns its ring buffer records into events.
//
// The verdict always comes from the sys_exit_execve/sys_exit_execveat
// tracepoints; the modes differ in what can see inside exec:
//
//	mode        chosen when                       binary.*, interpreter_path   stage              kernel_invoked
//	fentry      fentry/fexit load and attach      kernel (fexit do_open_execat, from hooks that      fexit kernel_execve
//	                                              creds, bprm_check, open_exec) fired
//	kprobe      kprobes attach, trampolines not   kernel (same hooks)          from hooks         kprobe+kretprobe
//	tracepoint  neither (lockdown, no kprobes)    userspace: stat and #!/      loader only, from  not observable
//	                                              PT_INTERP via /proc/<pid>    userspace evidence
//
// Everything else - errno, syscall, path, dirfd, flags, argv, envp (bounded,
// truncation marked), ids, comm, loginuid, cgroup id, stdin type/mode/path -
// comes from the kernel in every mode. exe, cwd, cgroup path, unit,
// container id and parent are read from /proc after the fact, as are the
// userspace-resolved fields, which are marked with source "userspace".
// binary.device_id is in stat(2)'s st_dev encoding.
package probe

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/execfaild/execfaild/probe/event"
)

// ErrClosed is returned by Read after Close.
var ErrClosed = errors.New("probe closed")

// Record is one thing the probe saw: a failed exec, or the success that
// ended an execvp-style PATH search after ENOENT failures.
type Record struct {
	Failure *event.Event
	Success *event.Success
}

// Stats counts records since New.
type Stats struct {
	Failures     uint64
	Successes    uint64
	Lost         uint64 // records the ring buffer could not take
	DecodeErrors uint64
}

// Probe is an attached BPF program.
type Probe struct {
	cfg      Config
	mode     string
	coll     *ebpf.Collection
	links    []link.Link
	reader   *ringbuf.Reader
	enricher *enricher
	report   Report
	bootBase time.Time // wall time at CLOCK_BOOTTIME zero
	openHook bool

	failures, successes, decodeErrors atomic.Uint64

	closeOnce sync.Once
	closed    atomic.Bool
}

// hookSpec is one attachment point. progs names the program per mode;
// alt is tried when the function is absent.
type hookSpec struct {
	name      string // what it gives, for the report
	fn        string
	alt       string
	fentry    string
	fentryFn  string // program for alt
	kprobe    string
	kprobeFn  string
	kretprobe string
	kprobeRet bool // the kprobe program runs at return only
}

// New checks the prerequisites, loads the program and attaches it.
func New(cfg Config) (*Probe, error) {
	if cfg.Mode == "" {
		cfg.Mode = ModeAuto
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := Prerequisites(); err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("raise memlock limit: %w", err)
	}
	if err := ensureTracefs(); err != nil {
		return nil, err
	}
	feats := detectFeatures()
	mode, err := chooseMode(cfg.Mode, feats)
	if err != nil {
		return nil, err
	}

	spec, err := loadExecfaild()
	if err != nil {
		return nil, fmt.Errorf("load bpf spec: %w", err)
	}
	if err := configureSpec(spec, cfg); err != nil {
		return nil, err
	}
	p := &Probe{cfg: cfg, mode: mode, enricher: newEnricher(cfg)}
	p.report.Mode = mode
	p.report.Features = feats

	hooks := p.selectPrograms(spec, mode)
	p.coll, err = ebpf.NewCollection(spec)
	if err != nil {
		return nil, fmt.Errorf("load bpf program (%s mode): %w", mode, shortVerifierError(err))
	}
	if err := p.attach(hooks); err != nil {
		p.Close()
		return nil, err
	}
	p.reader, err = ringbuf.NewReader(p.coll.Maps["events"])
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("open ring buffer: %w", err)
	}
	p.bootBase = bootBase()
	p.report.Fields = fieldReport(mode, p.report.Hooks)
	return p, nil
}

// Prerequisites returns the first missing thing the probe needs, as one
// line naming it.
func Prerequisites() error {
	if err := checkCaps(); err != nil {
		return err
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		return errors.New("kernel BTF missing: /sys/kernel/btf/vmlinux not found (kernel built without CONFIG_DEBUG_INFO_BTF)")
	}
	if err := haveBPF(); err != nil {
		return fmt.Errorf("BPF unavailable: %w", err)
	}
	return nil
}

func configureSpec(spec *ebpf.CollectionSpec, cfg Config) error {
	capEnv := uint8(1)
	maxEnv := uint32(cfg.MaxEnv)
	if cfg.Environment == "none" || maxEnv == 0 {
		capEnv = 0
	}
	for name, v := range map[string]any{
		"max_args":    uint32(cfg.MaxArgs),
		"max_env":     maxEnv,
		"max_arg_len": uint32(cfg.MaxArgLen),
		"capture_env": capEnv,
	} {
		vs, ok := spec.Variables[name]
		if !ok {
			return fmt.Errorf("bpf spec: variable %s missing", name)
		}
		if err := vs.Set(v); err != nil {
			return fmt.Errorf("bpf spec: set %s: %w", name, err)
		}
	}
	spec.Maps["events"].MaxEntries = uint32(cfg.RingBufferBytes)
	return nil
}

var execHooks = []hookSpec{
	{name: "open", fn: "do_open_execat", fentry: "fexit_open", kprobe: "kretprobe_open", kprobeRet: true},
	{name: "binary", fn: "security_bprm_creds_for_exec", alt: "exec_binprm",
		fentry: "fentry_creds", fentryFn: "fentry_exec_binprm", kprobe: "kprobe_creds", kprobeFn: "kprobe_exec_binprm"},
	{name: "loader", fn: "security_bprm_check", fentry: "fentry_bprm_check", kprobe: "kprobe_bprm_check"},
	{name: "interpreter", fn: "open_exec", fentry: "fentry_open_exec", kprobe: "kprobe_open_exec"},
	{name: "kernel_execve", fn: "kernel_execve", fentry: "fexit_kernel_execve", kprobe: "kprobe_kernel_execve", kretprobe: "kretprobe_kernel_execve"},
}

// plannedHook is a hook with the program and function chosen for the mode.
type plannedHook struct {
	spec    hookSpec
	fn      string
	prog    string
	missing string // why it will not attach, decided before load
}

// selectPrograms removes from spec every program the mode does not use,
// and fentry programs whose target the kernel lacks (they would fail the
// whole load).
func (p *Probe) selectPrograms(spec *ebpf.CollectionSpec, mode string) []plannedHook {
	var kernelFuncs func(string) bool
	if mode == ModeFentry {
		kspec, err := btf.LoadKernelSpec()
		kernelFuncs = func(name string) bool {
			if err != nil {
				return false
			}
			var fn *btf.Func
			return kspec.TypeByName(name, &fn) == nil
		}
	}
	var plan []plannedHook
	keep := map[string]bool{"tp_exit_execve": true, "tp_exit_execveat": true}
	if mode != ModeTracepoint {
		for _, h := range execHooks {
			ph := plannedHook{spec: h, fn: h.fn}
			switch mode {
			case ModeFentry:
				ph.prog = h.fentry
				if !kernelFuncs(h.fn) && h.alt != "" && kernelFuncs(h.alt) {
					ph.fn, ph.prog = h.alt, h.fentryFn
				} else if !kernelFuncs(h.fn) {
					ph.missing = "function " + h.fn + " not in kernel BTF"
					if h.alt != "" {
						ph.missing += " (nor " + h.alt + ")"
					}
				}
			case ModeKprobe:
				ph.prog = h.kprobe
			}
			if ph.missing == "" {
				keep[ph.prog] = true
				if mode == ModeKprobe && h.kretprobe != "" {
					keep[h.kretprobe] = true
				}
				if mode == ModeKprobe && h.alt != "" {
					keep[h.kprobeFn] = true
				}
			}
			plan = append(plan, ph)
		}
	}
	for name := range spec.Programs {
		if !keep[name] {
			delete(spec.Programs, name)
		}
	}
	return plan
}

func (p *Probe) program(name string) *ebpf.Program {
	return p.coll.Programs[name]
}

func (p *Probe) attach(plan []plannedHook) error {
	for _, tp := range []struct{ event, prog string }{
		{"sys_exit_execve", "tp_exit_execve"},
		{"sys_exit_execveat", "tp_exit_execveat"},
	} {
		l, err := link.Tracepoint("syscalls", tp.event, p.program(tp.prog), nil)
		hs := HookStatus{Name: "verdict", Function: "syscalls/" + tp.event, Kind: "tracepoint", Attached: err == nil}
		if err != nil {
			hs.Reason = err.Error()
			p.report.Hooks = append(p.report.Hooks, hs)
			return fmt.Errorf("attach tracepoint syscalls/%s: %w", tp.event, err)
		}
		p.links = append(p.links, l)
		p.report.Hooks = append(p.report.Hooks, hs)
	}
	for _, ph := range plan {
		hs := HookStatus{Name: ph.spec.name, Function: ph.fn, Kind: p.mode}
		if ph.spec.kretprobe != "" && p.mode == ModeKprobe {
			hs.Kind = "kprobe+kretprobe"
		} else if ph.spec.kprobeRet && p.mode == ModeKprobe {
			hs.Kind = "kretprobe"
		} else if (ph.spec.name == "kernel_execve" || ph.spec.name == "open") && p.mode == ModeFentry {
			hs.Kind = "fexit"
		}
		if ph.missing != "" {
			hs.Reason = ph.missing
			p.report.Hooks = append(p.report.Hooks, hs)
			continue
		}
		var err error
		switch p.mode {
		case ModeFentry:
			var l link.Link
			l, err = link.AttachTracing(link.TracingOptions{Program: p.program(ph.prog)})
			if err == nil {
				p.links = append(p.links, l)
			}
		case ModeKprobe:
			err = p.attachKprobe(ph)
		}
		if err != nil {
			hs.Reason = err.Error()
		} else {
			hs.Attached = true
			if ph.spec.name == "open" {
				p.openHook = true
			}
		}
		p.report.Hooks = append(p.report.Hooks, hs)
	}
	return nil
}

func (p *Probe) attachKprobe(ph plannedHook) error {
	fn, prog := ph.fn, ph.prog
	attach := link.Kprobe
	if ph.spec.kprobeRet {
		attach = link.Kretprobe
	}
	l, err := attach(fn, p.program(prog), nil)
	if err != nil && ph.spec.alt != "" {
		var err2 error
		l, err2 = link.Kprobe(ph.spec.alt, p.program(ph.spec.kprobeFn), nil)
		if err2 != nil {
			return fmt.Errorf("kprobe %s: %w; kprobe %s: %w", fn, err, ph.spec.alt, err2)
		}
		err = nil
	}
	if err != nil {
		return fmt.Errorf("kprobe %s: %w", fn, err)
	}
	p.links = append(p.links, l)
	if ph.spec.kretprobe != "" {
		r, err := link.Kretprobe(fn, p.program(ph.spec.kretprobe), nil)
		if err != nil {
			return fmt.Errorf("kretprobe %s: %w", fn, err)
		}
		p.links = append(p.links, r)
	}
	return nil
}

// Mode is the attach mode in use: fentry, kprobe or tracepoint.
func (p *Probe) Mode() string { return p.mode }

// Report tells which hooks attached and which fields this kernel provides.
func (p *Probe) Report() Report { return p.report }

// Stats returns counters since New.
func (p *Probe) Stats() Stats {
	s := Stats{
		Failures:     p.failures.Load(),
		Successes:    p.successes.Load(),
		DecodeErrors: p.decodeErrors.Load(),
	}
	if p.coll != nil {
		var per []uint64
		if err := p.coll.Maps["lost"].Lookup(uint32(0), &per); err == nil {
			for _, n := range per {
				s.Lost += n
			}
		}
	}
	return s
}

// Read blocks until the next record. Malformed records are counted in
// Stats().DecodeErrors and skipped. After Close it returns ErrClosed.
func (p *Probe) Read() (Record, error) {
	for {
		if p.closed.Load() {
			return Record{}, ErrClosed
		}
		raw, err := p.reader.Read()
		if err != nil {
			if errors.Is(err, ringbuf.ErrClosed) || p.closed.Load() {
				return Record{}, ErrClosed
			}
			return Record{}, fmt.Errorf("read ring buffer: %w", err)
		}
		r, err := decodeRecord(raw.RawSample)
		if err != nil {
			p.decodeErrors.Add(1)
			continue
		}
		if r.h.Kind == kindSuccess {
			p.successes.Add(1)
			return Record{Success: &event.Success{Time: p.wall(r.h.BootNs), PID: r.h.Pid, TID: r.h.Tid}}, nil
		}
		e := r.toEvent(p.wall, p.openHook)
		p.enricher.enrich(e, p.mode == ModeTracepoint)
		p.failures.Add(1)
		return Record{Failure: e}, nil
	}
}

// Close detaches everything; a blocked Read returns ErrClosed.
func (p *Probe) Close() error {
	var errs []error
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		if p.reader != nil {
			errs = append(errs, p.reader.Close())
		}
		for _, l := range p.links {
			errs = append(errs, l.Close())
		}
		if p.coll != nil {
			p.coll.Close()
		}
	})
	return errors.Join(errs...)
}

func (p *Probe) wall(bootNs uint64) time.Time {
	return p.bootBase.Add(time.Duration(bootNs))
}

// bootBase is the wall-clock time at which CLOCK_BOOTTIME read zero.
func bootBase() time.Time {
	var ts unix.Timespec
	now := time.Now()
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return now
	}
	return now.Add(-time.Duration(ts.Nano()))
}

// shortVerifierError keeps the verifier's cause and the end of its log,
// where the rejected instruction is: the full log runs to thousands of lines.
func shortVerifierError(err error) error {
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		lines := ve.Log
		if len(lines) > 20 {
			lines = lines[len(lines)-20:]
		}
		return fmt.Errorf("%w\n%s", err, strings.Join(lines, "\n"))
	}
	return err
}
