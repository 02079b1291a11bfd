// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Features is what the feature probes found: nil error means available.
type Features struct {
	Fentry error // fentry/fexit trampolines load and attach
	Kprobe error // kprobes attach
}

// probeTarget is a function every kernel we support has and that exec
// calls; a probe that attaches there will attach to the real hooks.
const probeTarget = "security_bprm_check"

// detectFeatures tries tiny programs instead of reading version strings:
// distributions backport and disable features independently. What a
// kernel allows does not change while it runs: it is tried once per
// process (attaching and detaching a trampoline costs a grace period).
var detectFeatures = sync.OnceValue(func() Features {
	return Features{Fentry: probeFentry(), Kprobe: probeKprobe()}
})

func trivial() asm.Instructions {
	return asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}
}

func probeFentry() error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.Tracing,
		AttachType:   ebpf.AttachTraceFEntry,
		AttachTo:     probeTarget,
		Instructions: trivial(),
		License:      "GPL",
	})
	if errors.Is(err, unix.EPERM) {
		// The library's hint about memlock does not apply: the limit was
		// raised already. EPERM here is lockdown, an LSM or no trampolines.
		return fmt.Errorf("load fentry program on %s: %w", probeTarget, unix.EPERM)
	}
	if err != nil {
		return fmt.Errorf("load fentry program: %w", err)
	}
	defer prog.Close()
	l, err := link.AttachTracing(link.TracingOptions{Program: prog})
	if err != nil {
		return fmt.Errorf("attach fentry program: %w", err)
	}
	return l.Close()
}

func probeKprobe() error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.Kprobe,
		Instructions: trivial(),
		License:      "GPL",
	})
	if err != nil {
		return fmt.Errorf("load kprobe program: %w", err)
	}
	defer prog.Close()
	l, err := link.Kprobe(probeTarget, prog, nil)
	if err != nil {
		return fmt.Errorf("attach kprobe: %w", err)
	}
	return l.Close()
}

// chooseMode picks the richest usable mode, or checks a forced one.
func chooseMode(want string, f Features) (string, error) {
	switch want {
	case ModeFentry:
		if f.Fentry != nil {
			return "", fmt.Errorf("probe.mode fentry: fentry/fexit unavailable on this kernel: %w", f.Fentry)
		}
		return ModeFentry, nil
	case ModeKprobe, ModeLegacy:
		if f.Kprobe != nil {
			return "", fmt.Errorf("probe.mode %s: kprobes unavailable on this kernel: %w", want, f.Kprobe)
		}
		return ModeKprobe, nil
	case ModeTracepoint:
		return ModeTracepoint, nil
	}
	switch {
	case f.Fentry == nil:
		return ModeFentry, nil
	case f.Kprobe == nil:
		return ModeKprobe, nil
	}
	return ModeTracepoint, nil
}

func haveBPF() error {
	// One sentence each: what is missing and the oldest kernel with it.
	if err := features.HaveProgramType(ebpf.TracePoint); err != nil {
		return fmt.Errorf("tracepoint programs are missing (Linux 4.7 or newer has them): %w", err)
	}
	// Where the ring buffer (5.8) is missing, the perf event array takes
	// its place; every build reads memory through these helpers.
	if err := features.HaveProgramHelper(ebpf.Kprobe, asm.FnProbeReadKernel); err != nil {
		return fmt.Errorf("bpf_probe_read_kernel is missing (Linux 5.5 or newer has it): %w", err)
	}
	if err := features.HaveProgramType(ebpf.RawTracepoint); err != nil {
		return fmt.Errorf("raw tracepoint programs are missing (Linux 4.17 or newer has them): %w", err)
	}
	return nil
}

// ensureTracefs mounts tracefs where the tracepoint API looks for it: on
// minimal systems nothing else does.
func ensureTracefs() error {
	for _, dir := range []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"} {
		if _, err := os.Stat(dir + "/events"); err == nil {
			return nil
		}
	}
	if err := unix.Mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, ""); err != nil {
		return fmt.Errorf("mount tracefs at /sys/kernel/tracing: %w", err)
	}
	return nil
}

// HookStatus is one attachment point in the report.
type HookStatus struct {
	Name     string // what it gives: verdict, open, binary, loader, interpreter, kernel_execve
	Function string // kernel function or tracepoint
	Kind     string // tracepoint, fentry, fexit, kprobe, kprobe+kretprobe
	Attached bool
	Reason   string // why not, when not attached
}

// FieldStatus tells where a group of event fields comes from.
type FieldStatus struct {
	Fields string
	Source string // kernel, userspace (racy), unavailable
}

// Report describes what the probe could attach and what it will fill in.
type Report struct {
	Mode     string
	Features Features
	Hooks    []HookStatus
	Fields   []FieldStatus
	// Build is "default", or "legacy" on kernels without bpf_loop (5.8 to
	// 5.16); Folding tells whether storms' repeats are counted in the
	// kernel (it needs syscall programs, 5.14).
	Build   string
	Folding bool
	// Transport is ringbuf, or perf (a perf event array) where the kernel
	// has no BPF ring buffer or the configuration asks for it.
	Transport string
}

func fieldReport(mode string, hooks []HookStatus) []FieldStatus {
	attached := map[string]bool{}
	for _, h := range hooks {
		if h.Attached {
			attached[h.Name] = true
		}
	}
	src := func(hook string) string {
		switch {
		case attached[hook]:
			return "kernel"
		case mode == ModeTracepoint && hook != "kernel_execve" && hook != "open":
			return "userspace (stat through /proc/<pid>; racy)"
		}
		return "unavailable"
	}
	stage := "kernel"
	switch {
	case mode == ModeTracepoint:
		stage = "userspace (loader failures only)"
	case !attached["open"]:
		stage = "kernel (no pre_open/open distinction)"
	}
	return []FieldStatus{
		{"return_value error syscall dirfd flags path arguments environment", "kernel"},
		{"process.pid tid ppid uid gid euid loginuid comm cgroup_id", "kernel"},
		{"stdin_type stdin_mode stdin_path", "kernel"},
		{"binary.path device_id inode_number ctime inode_mode", src("binary")},
		{"interpreter_path", src("interpreter")},
		{"stage", stage},
		{"kernel_invoked (usermode helper failures)", src("kernel_execve")},
		{"process.exe cwd cgroup unit container_id, parent", "userspace (/proc; racy)"},
	}
}

// String renders the report for probe-check.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "mode: %s\n", r.Mode)
	if r.Transport != "" {
		fmt.Fprintf(&b, "transport: %s\n", r.Transport)
	}
	feat := func(err error) string {
		if err == nil {
			return "yes"
		}
		return "no (" + err.Error() + ")"
	}
	fmt.Fprintf(&b, "fentry/fexit: %s\nkprobes: %s\n", feat(r.Features.Fentry), feat(r.Features.Kprobe))
	b.WriteString("hooks:\n")
	for _, h := range r.Hooks {
		state := "attached"
		if !h.Attached {
			state = "not attached: " + h.Reason
		}
		fmt.Fprintf(&b, "  %-14s %-36s %-17s %s\n", h.Name, h.Function, h.Kind, state)
	}
	b.WriteString("fields:\n")
	for _, f := range r.Fields {
		fmt.Fprintf(&b, "  %-66s %s\n", f.Fields, f.Source)
	}
	return b.String()
}
