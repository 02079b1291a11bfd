// SPDX-License-Identifier: Apache-2.0

// Package probe loads the BPF program of bpf/, attaches it in the richest
// mode the kernel allows, and turns its records (ring buffer or perf event
// array, see transport.go) into events.
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
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/execfaild/execfaild/probe/event"
)

// ErrClosed is returned by Read once a Drain has ended and after Close.
var ErrClosed = errors.New("probe closed")

// Record is one thing the probe saw: a failed exec, or the success that
// ended an execvp-style PATH search after ENOENT failures.
type Record struct {
	Failure *event.Event
	Success *event.Success
}

// Stats counts records since New. It stays readable after Close, so a
// final summary shows what was lost up to the end.
type Stats struct {
	Failures  uint64
	Successes uint64
	// LostFailures are failure records the ring buffer could not take:
	// failed execs that were never reported.
	LostFailures uint64
	// LostMarkers are PATH-search success markers that never reached the
	// reader: the ring buffer could not take them, or they were still in it
	// when the shutdown deadline passed. A PATH search pending while this
	// grows may have succeeded.
	LostMarkers uint64
	// Undecodable records were read but could not be decoded and were
	// skipped.
	Undecodable uint64
	// Folded of Failures were repeats the kernel counted instead of
	// sending each one.
	Folded uint64
	// OrphanRepeats were repeats counted for a failure whose full record
	// never arrived (it was lost): counted here, not reported.
	OrphanRepeats uint64
	// Undrained are failure records still in the ring buffer when the
	// shutdown deadline passed (or Close came without Drain): counted,
	// never delivered.
	Undrained uint64
}

// Probe is an attached BPF program.
type Probe struct {
	cfg    Config
	mode   string
	coll   *ebpf.Collection
	links  []link.Link
	reader recordReader
	// transport is ringbuf or perf; perfLost counts the samples the perf
	// buffers reported they could not take.
	transport string
	perfLost  atomic.Uint64
	enricher  *enricher
	diag      *diagnoser
	report    Report
	bootBase  time.Time // wall time at the zero of the records' clock (recordClock)
	openHook  bool
	// fexitVerdict: fentry mode takes the verdict at the syscall
	// functions' return when the kernel has them in BTF.
	fexitVerdict        bool
	legacy              bool   // the build for kernels without bpf_loop
	forceLegacy         bool   // ModeLegacy: kprobes with the hook plan of kernels before 5.8
	fexitVerdictMissing string // why fentry mode uses the tracepoints
	progs               buildProgs

	failures, successes, undecodable atomic.Uint64
	folded, orphanRepeats            atomic.Uint64
	folder                           *folder // nil when the kernel does not fold
	undrained, undrainedMarkers      atomic.Uint64

	// readMu serialises ring buffer reads, so Close can count what is left
	// once the goroutine that drains has stopped.
	readMu    sync.Mutex
	drainOnce sync.Once
	draining  atomic.Bool
	deadline  atomic.Int64 // UnixNano by which draining stops delivering
	drained   atomic.Bool  // nothing more will be delivered: Read returns ErrClosed
	detachErr error

	// statsMu guards the maps against Close while Stats reads them, and
	// the kernel's loss counters cached for after Close.
	statsMu   sync.RWMutex
	released  bool
	finalLost lostCounts
	// lostMem is the loss counters' map mapped into memory (the default
	// build's shared array): read without a system call. nil: the map is
	// per-CPU (the legacy builds), read with a lookup.
	lostMem []byte

	closeOnce sync.Once
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
	exit      bool // the fentry-mode program is fexit
}

// New checks the prerequisites, loads the program and attaches it.
// seccompHook: a seccomp filter that refuses an exec makes the kernel skip
// the syscall function, so verdicts taken at its return never run;
// __secure_computing's return reports those (compat ones always, native
// ones where the verdict is the fexit). The default build only.
var seccompHook = hookSpec{name: "seccomp", fn: "__secure_computing", fentry: execfaildProgFexitSeccomp, kprobe: execfaildProgKretprobeSeccomp, kprobeRet: true, exit: true}

func New(cfg Config) (*Probe, error) {
	if cfg.Mode == "" {
		cfg.Mode = ModeAuto
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

	transport, err := chooseTransport(cfg.Transport, cfg.Mode, haveRingbuf())
	if err != nil {
		return nil, err
	}
	// Kernels before 5.17 lack bpf_loop and the helpers the default build
	// relies on: they get the build made for them, chosen by what the
	// kernel has, not by its version. The perf transport is a legacy build.
	forceLegacy := cfg.Mode == ModeLegacy
	legacy := forceLegacy || transport == TransportPerf || haveLegacyOnly()
	b, err := loadBuild(transport, legacy)
	if err != nil {
		return nil, err
	}
	if err := configureSpec(b, cfg); err != nil {
		return nil, err
	}
	p := &Probe{cfg: cfg, mode: mode, enricher: newEnricher(cfg), legacy: legacy, forceLegacy: forceLegacy, transport: transport, progs: b.progs}
	p.enricher.procs.setClock(recordClock(transport))
	p.report.Mode = p.Mode()
	p.report.Transport = transport
	p.report.Features = feats

	hooks, err := p.selectPrograms(b, mode)
	if err != nil {
		return nil, err
	}
	for _, h := range hooks {
		if h.spec.name == "path" && h.missing == "" {
			if err := b.vars.kernelPath.Set(uint8(1)); err != nil {
				return nil, fmt.Errorf("bpf spec: set kernel_path: %w", err)
			}
		}
	}
	p.coll, err = ebpf.NewCollection(b.spec)
	if err != nil {
		return nil, fmt.Errorf("load bpf program (%s mode): %w", mode, shortVerifierError(err))
	}
	if p.lostMem, err = mapLost(p.coll.Maps[lostMap]); err != nil {
		p.Close()
		return nil, err
	}
	if prog := p.coll.Programs[foldFlushProg]; prog != nil {
		p.folder = newFolder(prog)
	}
	p.report.Folding = p.folder != nil
	p.report.Build = "default"
	if legacy {
		p.report.Build = "legacy"
	}
	if err := p.attach(hooks); err != nil {
		p.Close()
		return nil, err
	}
	if transport == TransportPerf {
		p.reader, err = newPerfReader(p.coll.Maps[eventsMap], cfg.RingBufferBytes, &p.perfLost)
	} else {
		p.reader, err = newRingReader(p.coll.Maps[eventsMap])
	}
	if err != nil {
		p.Close()
		return nil, err
	}
	p.bootBase = clockBase(recordClock(transport))
	p.diag = newDiagnoser(p.enricher, mode != ModeTracepoint && p.openHook, cfg.Environment != "none" && cfg.MaxEnv > 0)
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
		return errors.New("kernel BTF missing: /sys/kernel/btf/vmlinux not found (the kernel must be built with CONFIG_DEBUG_INFO_BTF, as Debian's are from Debian 11 on)")
	}
	if err := haveBPF(); err != nil {
		return fmt.Errorf("BPF unavailable: %w", err)
	}
	return nil
}

func configureSpec(b *build, cfg Config) error {
	fold := uint8(0)
	if cfg.FoldRepeats && b.foldFlush != nil && haveFoldFlush() {
		fold = 1
		b.folds.MaxEntries = uint32(cfg.FoldMaxKeys)
	} else {
		// Without the flush program nothing could collect the counts.
		delete(b.spec.Programs, foldFlushProg)
		// An array, allocated whole: only as large as it must be.
		if b.foldSeen != nil {
			b.foldSeen.MaxEntries = 1
		}
	}
	capEnv := uint8(1)
	maxEnv := uint32(cfg.MaxEnv)
	if cfg.Environment == "none" || maxEnv == 0 {
		capEnv = 0
	}
	for _, v := range []struct {
		spec  *ebpf.VariableSpec
		value any
	}{
		{b.vars.maxArgs, uint32(cfg.MaxArgs)},
		{b.vars.maxEnv, maxEnv},
		{b.vars.maxArgLen, uint32(cfg.MaxArgLen)},
		{b.vars.captureEnv, capEnv},
		{b.vars.fold, fold}, // 0 in the legacy builds, which cannot fold
	} {
		if err := v.spec.Set(v.value); err != nil {
			return fmt.Errorf("bpf spec: set %s: %w", v.spec.Name, err)
		}
	}
	if b.events.Type == ebpf.RingBuf {
		b.events.MaxEntries = uint32(cfg.RingBufferBytes)
	}
	return nil
}

// execHooks are the hooks of every build. Their program names are bpf2go's
// constants for the default build; TestBuildsHaveWhatEveryModeAsks checks
// the legacy builds have them too.
var execHooks = []hookSpec{
	{name: "open", fn: "do_open_execat", fentry: execfaildProgFexitOpen, kprobe: execfaildProgKretprobeOpen, kprobeRet: true, exit: true},
	// The kernel's copy of the path, which a sibling thread cannot rewrite
	// before the syscall exit reads the caller's memory.
	{name: "path", fn: "do_open_execat", fentry: execfaildProgFentryOpenPath, kprobe: execfaildProgKprobeOpenPath},
	{name: "binary", fn: "security_bprm_creds_for_exec", alt: "exec_binprm",
		fentry: execfaildProgFentryCreds, fentryFn: execfaildProgFentryExecBinprm, kprobe: execfaildProgKprobeCreds, kprobeFn: execfaildProgKprobeExecBinprm},
	{name: "loader", fn: "security_bprm_check", fentry: execfaildProgFentryBprmCheck, kprobe: execfaildProgKprobeBprmCheck},
	{name: "interpreter", fn: "open_exec", fentry: execfaildProgFentryOpenExec, kprobe: execfaildProgKprobeOpenExec},
	{name: "kernel_execve", fn: "kernel_execve", fentry: execfaildProgFexitKernelExecve, kprobe: execfaildProgKprobeKernelExecve, kretprobe: execfaildProgKretprobeKernelExecve},
}

// plannedHook is a hook with the program and function chosen for the mode.
type plannedHook struct {
	spec    hookSpec
	fn      string
	prog    string
	missing string // why it will not attach, decided before load
}

// selectPrograms removes from the build's spec every program the mode does
// not use, and fentry programs whose target the kernel lacks (they would
// fail the whole load).
func (p *Probe) selectPrograms(b *build, mode string) ([]plannedHook, error) {
	var kernelFuncs func(string) bool
	if mode == ModeFentry {
		kernelFuncs = kernelBTFFuncs()
	}
	pl := planPrograms(b.legacy, p.forceLegacy, mode, b.progs, kernelFuncs)
	p.fexitVerdict, p.fexitVerdictMissing = pl.fexitVerdict, pl.fexitVerdictMissing
	if p.fexitVerdict {
		// Native execs a seccomp filter refused never reach the fexit
		// verdict; the tracepoint verdict sees them itself.
		if err := b.seccompNative.Set(uint8(1)); err != nil {
			return nil, fmt.Errorf("bpf spec: set %s: %w", b.seccompNative.Name, err)
		}
	}
	for name := range b.spec.Programs {
		if !pl.keep[name] {
			delete(b.spec.Programs, name)
		}
	}
	return pl.hooks, nil
}

// kernelBTFFuncs tells whether the kernel's BTF has a function: fentry
// programs attach only to those.
func kernelBTFFuncs() func(string) bool {
	kspec, err := btf.LoadKernelSpec()
	return func(name string) bool {
		if err != nil {
			return false
		}
		var fn *btf.Func
		return kspec.TypeByName(name, &fn) == nil
	}
}

// programPlan is what a mode loads of a build and how it attaches it.
type programPlan struct {
	hooks               []plannedHook
	keep                map[string]bool // the programs to load
	fexitVerdict        bool
	fexitVerdictMissing string
}

// planPrograms plans the programs of a build (legacy: the legacy hook plan)
// for mode; kernelFuncs tells, in fentry mode, which functions the kernel
// has.
func planPrograms(legacy, forceLegacy bool, mode string, progs buildProgs, kernelFuncs func(string) bool) programPlan {
	pl := programPlan{keep: map[string]bool{}}
	for _, name := range progs.always {
		pl.keep[name] = true
	}
	if legacy {
		// The raw sys_exit tracepoint gives the verdict for both ABIs.
	} else if mode == ModeFentry && kernelFuncs(verdictFexit[0].fn) && kernelFuncs(verdictFexit[1].fn) {
		for _, v := range verdictFexit {
			pl.keep[v.prog] = true
		}
		pl.fexitVerdict = true
	} else if mode == ModeFentry {
		pl.fexitVerdictMissing = "function " + verdictFexit[0].fn + " or " + verdictFexit[1].fn + " not in kernel BTF"
	}
	hooks := execHooks
	if !legacy {
		hooks = append(append(hooks, compatHooks...), seccompHook)
	}
	if mode == ModeTracepoint {
		if compatRawTracepoint != "" && !legacy {
			pl.keep[compatRawTracepoint] = true
		}
		return pl
	}
	for _, h := range hooks {
		ph := planHook(h, mode, forceLegacy, kernelFuncs)
		if ph.missing == "" {
			pl.keep[ph.prog] = true
			if mode == ModeKprobe && h.kretprobe != "" {
				pl.keep[h.kretprobe] = true
			}
			if mode == ModeKprobe && h.alt != "" {
				pl.keep[h.kprobeFn] = true
			}
		}
		pl.hooks = append(pl.hooks, ph)
	}
	return pl
}

// planHook chooses the program and function of one hook for mode.
func planHook(h hookSpec, mode string, forceLegacy bool, kernelFuncs func(string) bool) plannedHook {
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
		if forceLegacy && h.alt != "" {
			// Before 5.8 security_bprm_creds_for_exec does not
			// exist: the binary is taken at exec_binprm.
			ph.fn, ph.prog = h.alt, h.kprobeFn
		}
	}
	return ph
}

func (p *Probe) program(name string) *ebpf.Program {
	return p.coll.Programs[name]
}

// verdictFexit are fentry mode's verdict hooks, the syscall functions'
// return; the tracepoints remain the fallback. The default build only.
var verdictFexit = [2]struct{ fn, prog string }{
	{syscallPrefix + "execve", execfaildProgFexitExecve},
	{syscallPrefix + "execveat", execfaildProgFexitExecveat},
}

// tpVerdict: the default build's verdict at the syscall tracepoints, where
// fentry mode's is missing.
var tpVerdict = [2]struct{ event, prog string }{
	{"sys_exit_execve", execfaildProgTpExitExecve},
	{"sys_exit_execveat", execfaildProgTpExitExecveat},
}

// attachFexitVerdict attaches both verdict fexits or, failing that, none.
func (p *Probe) attachFexitVerdict() error {
	var links []link.Link
	for _, v := range verdictFexit {
		l, err := link.AttachTracing(link.TracingOptions{Program: p.program(v.prog)})
		if err != nil {
			for _, l := range links {
				l.Close()
			}
			return fmt.Errorf("fexit %s: %w", v.fn, err)
		}
		links = append(links, l)
	}
	p.links = append(p.links, links...)
	for _, v := range verdictFexit {
		p.report.Hooks = append(p.report.Hooks, HookStatus{Name: "verdict", Function: v.fn, Kind: "fexit", Attached: true})
	}
	return nil
}

func (p *Probe) attach(plan []plannedHook) error {
	verdictDone := false
	if p.legacy {
		if err := p.attachLegacyVerdict(); err != nil {
			return err
		}
		verdictDone = true
	}
	if p.fexitVerdictMissing != "" {
		p.report.Hooks = append(p.report.Hooks, HookStatus{Name: "verdict", Function: verdictFexit[0].fn, Kind: "fexit", Reason: p.fexitVerdictMissing})
	}
	if p.fexitVerdict {
		err := p.attachFexitVerdict()
		verdictDone = err == nil
		if err != nil {
			// Reported, and the tracepoints below take over.
			p.report.Hooks = append(p.report.Hooks, HookStatus{Name: "verdict", Function: verdictFexit[0].fn, Kind: "fexit", Reason: err.Error()})
		}
	}
	for _, tp := range tpVerdict {
		if verdictDone {
			break
		}
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
	if p.mode == ModeTracepoint && compatRawTracepoint != "" && !p.legacy {
		p.attachCompatRaw()
	}
	p.attachExecDone()
	for _, ph := range plan {
		hs := HookStatus{Name: ph.spec.name, Function: ph.fn, Kind: p.mode}
		if ph.spec.kretprobe != "" && p.mode == ModeKprobe {
			hs.Kind = "kprobe+kretprobe"
		} else if ph.spec.kprobeRet && p.mode == ModeKprobe {
			hs.Kind = "kretprobe"
		} else if (ph.spec.name == "kernel_execve" || ph.spec.name == "open" || ph.spec.exit) && p.mode == ModeFentry {
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

func (p *Probe) attachLegacyVerdict() error {
	if err := p.attachRaw("verdict", "raw_syscalls", "sys_exit", p.progs.rawVerdict); err != nil {
		return fmt.Errorf("attach raw tracepoint sys_exit: %w", err)
	}
	return nil
}

// attachExecDone attaches it through a BPF link (no perf event). Without
// it only a 64-bit exec of a 32-bit program leaves state behind.
func (p *Probe) attachExecDone() {
	p.attachRaw("exec_done", "sched", "sched_process_exec", p.progs.execDone)
}

// attachCompatRaw attaches the tracepoint mode's compat verdict. A kernel
// that refuses it loses only 32-bit execs, which the report says.
func (p *Probe) attachCompatRaw() {
	p.attachRaw("compat", "raw_syscalls", "sys_exit", compatRawTracepoint)
}

// attachRaw attaches prog to the raw tracepoint tp (of group, for the
// report) through a BPF link, and reports how that went.
func (p *Probe) attachRaw(name, group, tp, prog string) error {
	hs := HookStatus{Name: name, Function: group + "/" + tp, Kind: "raw_tracepoint"}
	l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: tp, Program: p.program(prog)})
	if err != nil {
		hs.Reason = err.Error()
	} else {
		hs.Attached = true
		p.links = append(p.links, l)
	}
	p.report.Hooks = append(p.report.Hooks, hs)
	return err
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

// Mode is the attach mode in use: fentry, kprobe, tracepoint, or legacy
// when that was forced.
func (p *Probe) Mode() string {
	if p.forceLegacy {
		return ModeLegacy
	}
	return p.mode
}

// Report tells which hooks attached and which fields this kernel provides.
func (p *Probe) Report() Report { return p.report }

// lostCounts are the kernel's per-CPU loss counters, summed.
type lostCounts struct{ failures, markers uint64 }

// unclaimed is how many of the samples the perf buffers reported lost the
// program did not count itself. It counts every record the helper refused,
// so on the kernels tested this is 0; a kernel whose helper does not report
// a full buffer leaves the count to the perf buffer, and those records are
// counted as lost failures, the kind that matters, rather than not at all.
func (c lostCounts) unclaimed(perfLost uint64) uint64 {
	if counted := c.failures + c.markers; perfLost > counted {
		return perfLost - counted
	}
	return 0
}

// kernelLost sums the `lost` array. A program built before markers had a
// slot of their own has one entry only; its failed lookup of the marker
// slot reads as none lost rather than hiding the failure count.
// repeats turns a repeats record into the event standing for its count.
func (p *Probe) repeats(r *record) (Record, bool) {
	n := r.h.Repeats
	if p.folder == nil {
		p.orphanRepeats.Add(n)
		return Record{}, false
	}
	e, known := p.folder.repeats(r.h.Rid, n, p.wall(r.h.RepeatsFirstNs), p.wall(r.h.BootNs), r.h.Flags&flagFoldGone != 0)
	if !known {
		p.orphanRepeats.Add(n)
	}
	if e == nil {
		return Record{}, false
	}
	p.failures.Add(n)
	p.folded.Add(n)
	return Record{Failure: e}, true
}

// CheckStats reads the kernel's loss counters once and returns the error a
// reader would get: kernels before 6.5 refuse map reads to a process
// without CAP_BPF, so a caller about to drop that capability can tell
// whether it still needs it for Stats.
func (p *Probe) CheckStats() error {
	if _, err := p.readLost(lostFailure); err != nil {
		return fmt.Errorf("read loss counters: %w", err)
	}
	if p.folder != nil {
		// Collecting folded counts runs a program the same way.
		return p.folder.flush(false)
	}
	return nil
}

func (p *Probe) kernelLost() lostCounts {
	return lostCounts{failures: p.kernelLostSlot(lostFailure), markers: p.kernelLostSlot(lostMarker)}
}

// kernelLostSlot reads one loss counter: from memory, or summed over the
// CPUs in one map read.
func (p *Probe) kernelLostSlot(slot uint32) uint64 {
	n, _ := p.readLost(slot)
	return n
}

func (p *Probe) readLost(slot uint32) (uint64, error) {
	if p.lostMem != nil {
		return atomic.LoadUint64((*uint64)(unsafe.Pointer(&p.lostMem[slot*8]))), nil
	}
	if p.coll == nil || p.coll.Maps[lostMap] == nil {
		return 0, nil
	}
	m := p.coll.Maps[lostMap]
	if m.Type() != ebpf.PerCPUArray {
		var v uint64
		err := m.Lookup(slot, &v)
		return v, err
	}
	var per []uint64
	if err := m.Lookup(slot, &per); err != nil {
		return 0, err
	}
	var n uint64
	for _, v := range per {
		n += v
	}
	return n, nil
}

// mapLost maps the loss counters into memory when the build made them one
// mmapable array with a 64-bit counter for each slot; nil otherwise (a
// per-CPU array; an object older than the marker slot), read by lookups.
func mapLost(m *ebpf.Map) ([]byte, error) {
	if m == nil || m.Type() != ebpf.Array || m.Flags()&unix.BPF_F_MMAPABLE == 0 ||
		m.ValueSize() != 8 || m.MaxEntries() < uint32(lostMarker)+1 {
		return nil, nil
	}
	page := os.Getpagesize()
	size := (int(m.MaxEntries())*8 + page - 1) / page * page
	b, err := unix.Mmap(m.FD(), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map loss counters: %w", err)
	}
	return b, nil
}

// LostMarkers is Stats().LostMarkers, reading only the marker counter: a
// PATH-search fold reads it for every search it concludes.
func (p *Probe) LostMarkers() uint64 {
	p.statsMu.RLock()
	lost := p.finalLost.markers
	if !p.released {
		lost = p.kernelLostSlot(lostMarker)
	}
	p.statsMu.RUnlock()
	return lost + p.undrainedMarkers.Load()
}

// Stats returns counters since New; after Close, their final values.
func (p *Probe) Stats() Stats {
	s := Stats{
		Failures:      p.failures.Load(),
		Successes:     p.successes.Load(),
		Undecodable:   p.undecodable.Load(),
		Undrained:     p.undrained.Load(),
		Folded:        p.folded.Load(),
		OrphanRepeats: p.orphanRepeats.Load(),
	}
	p.statsMu.RLock()
	lost := p.finalLost
	if !p.released {
		lost = p.kernelLost()
	}
	p.statsMu.RUnlock()
	s.LostFailures = lost.failures + lost.unclaimed(p.perfLost.Load())
	s.LostMarkers = lost.markers + p.undrainedMarkers.Load()
	return s
}

// Read blocks until the next record. Malformed records are counted in
// Stats().Undecodable and skipped. Once Drain found the ring buffer empty
// or its deadline passed, and after Close, it returns ErrClosed.
func (p *Probe) Read() (Record, error) {
	p.readMu.Lock()
	defer p.readMu.Unlock()
	for {
		if p.drained.Load() || p.reader == nil {
			return Record{}, ErrClosed
		}
		if p.draining.Load() {
			deadline := time.Unix(0, p.deadline.Load())
			if !time.Now().Before(deadline) {
				p.discardRest()
				return Record{}, ErrClosed
			}
			// Bounds the wait for records a hook may still commit.
			p.reader.setDeadline(deadline)
		}
		raw, err := p.reader.read()
		if err != nil {
			if flushedOrDeadline(err) {
				// Drain flushes only after detaching, so whatever arrives
				// now was committed before; an empty ring is the end.
				if p.draining.Load() && p.reader.pending() {
					continue
				}
				if p.draining.Load() && p.folder != nil && p.folder.remembered() > 0 {
					// A forced flush that met a full ring left counts
					// behind: the ring has room now.
					if p.folder.flush(true) == nil && p.reader.pending() {
						continue
					}
				}
				if p.draining.Load() {
					p.drained.Store(true)
					return Record{}, ErrClosed
				}
			}
			if errors.Is(err, os.ErrClosed) || p.drained.Load() {
				return Record{}, ErrClosed
			}
			return Record{}, fmt.Errorf("read %s: %w", p.transport, err)
		}
		r, err := decodeRecord(raw)
		if err != nil {
			p.undecodable.Add(1)
			continue
		}
		switch r.h.Kind {
		case kindSuccess:
			p.successes.Add(1)
			return Record{Success: &event.Success{Time: p.wall(r.h.BootNs), PID: r.h.Pid, TID: r.h.Tid,
				Name: cString(r.h.Comm[:])}}, nil
		case kindPending:
			if p.folder != nil {
				p.folder.schedule(foldFlushDelay)
			}
			continue
		case kindRepeats:
			if rec, ok := p.repeats(&r); ok {
				return rec, nil
			}
			continue
		}
		e := r.toEvent(p.wall, p.openHook)
		p.enricher.enrichWith(e, p.mode == ModeTracepoint, r.caller())
		if p.diag != nil {
			p.diag.diagnose(e, &r)
		}
		if r.h.Rid != 0 && p.folder != nil {
			p.folder.remember(r.h.Rid, e)
		}
		p.failures.Add(1)
		return Record{Failure: e}, nil
	}
}

// discardRest reads what the ring buffer still holds without delivering
// it, so a shutdown that ran out of time still says how much it dropped.
// The caller holds readMu.
func (p *Probe) discardRest() {
	defer p.drained.Store(true)
	if p.reader == nil {
		return
	}
	p.reader.setDeadline(time.Now())
	for flushes := 0; ; {
		raw, err := p.reader.read()
		if errors.Is(err, errFlushed) && flushes == 0 {
			// The flush of Drain, not yet seen: what follows it is still
			// in the ring.
			flushes++
			continue
		}
		if err != nil {
			return
		}
		r, err := decodeRecord(raw)
		switch {
		case err != nil:
			p.undecodable.Add(1)
		case r.h.Kind == kindSuccess:
			p.undrainedMarkers.Add(1)
		case r.h.Kind == kindPending:
		case r.h.Kind == kindRepeats:
			p.undrained.Add(r.h.Repeats)
		default:
			p.undrained.Add(1)
		}
	}
}

// Drain detaches every hook, so no new record arrives, and lets Read go on
// returning what the ring buffer still holds until it is empty or deadline
// passes; then Read returns ErrClosed. It does not wait: the caller keeps
// reading, and calls Close afterwards.
func (p *Probe) Drain(deadline time.Time) {
	p.drainOnce.Do(func() {
		var errs []error
		for _, l := range p.links {
			errs = append(errs, l.Close())
		}
		p.detachErr = errors.Join(errs...)
		if p.folder != nil {
			// Nothing can fold any more: hand every count over.
			p.folder.stop()
			_ = p.folder.flush(true)
		}
		p.deadline.Store(deadline.UnixNano())
		p.draining.Store(true)
		if p.reader != nil {
			// Wakes a Read blocked on an empty ring: it would otherwise
			// wait for a record that can no longer come.
			_ = p.reader.flush()
		}
	})
}

// Close detaches everything (when Drain did not already), counts what was
// not drained in Stats().Undrained, and releases the program. A blocked
// Read returns ErrClosed. Stats stays readable.
func (p *Probe) Close() error {
	p.Drain(time.Now())
	var errs []error
	p.closeOnce.Do(func() {
		errs = append(errs, p.detachErr)
		// A Read in progress returns soon: Drain woke it, and its deadline
		// has passed or bounds its wait.
		p.readMu.Lock()
		if !p.drained.Load() {
			p.discardRest()
		}
		p.readMu.Unlock()

		p.statsMu.Lock()
		p.finalLost = p.kernelLost()
		p.released = true
		if p.lostMem != nil {
			unix.Munmap(p.lostMem)
			p.lostMem = nil
		}
		p.statsMu.Unlock()

		if p.reader != nil {
			errs = append(errs, p.reader.close())
		}
		if p.coll != nil {
			p.coll.Close()
		}
		p.enricher.close()
	})
	return errors.Join(errs...)
}

func (p *Probe) wall(bootNs uint64) time.Time {
	return p.bootBase.Add(time.Duration(bootNs))
}

// recordClock is the clock of the records' boot_ns: CLOCK_BOOTTIME, but
// CLOCK_MONOTONIC in the perf build (bpf_ktime_get_boot_ns came with 5.8,
// the kernels that build is for have only bpf_ktime_get_ns; a suspend
// after start shifts its times by the time suspended).
func recordClock(transport string) int32 {
	if transport == TransportPerf {
		return unix.CLOCK_MONOTONIC
	}
	return unix.CLOCK_BOOTTIME
}

// clockBase is the wall-clock time at which clock read zero.
func clockBase(clock int32) time.Time {
	var ts unix.Timespec
	now := time.Now()
	if err := unix.ClockGettime(clock, &ts); err != nil {
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
