// SPDX-License-Identifier: Apache-2.0

package canary

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// execAttempts is how many failing execs each hook must count, exactly.
const execAttempts = 3

// bprmHook is an LSM hook every kernel since 2.6 calls once per exec that
// got as far as an opened binary; it is global, so never inlined, and has
// BTF, so both kprobes and fentry can attach to it.
const bprmHook = "security_bprm_check"

func inVM() bool { return os.Getenv("EXECFAILD_TEST_VM") == "1" }

// setup skips outside the harness, and fails on a missing prerequisite
// wherever it must be present: in a test guest or in CI.
func setup(t *testing.T) {
	t.Helper()
	if os.Getenv("EXECFAILD_TEST_MODE") == "" {
		t.Skip("EXECFAILD_TEST_MODE unset: run through vmtest/matrix.sh")
	}
	if os.Geteuid() != 0 {
		missing(t, "needs root")
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatalf("remove memlock rlimit: %v", err)
	}
}

func missing(t *testing.T, reason string) {
	t.Helper()
	if inVM() || os.Getenv("CI") == "true" {
		t.Fatal(reason)
	}
	t.Skip(reason)
}

func TestRunsAsRoot(t *testing.T) {
	setup(t)
	if uid := os.Geteuid(); uid != 0 {
		t.Fatalf("euid = %d, want 0", uid)
	}
}

func TestKernelBTF(t *testing.T) {
	setup(t)
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Fatalf("kernel BTF: %v", err)
	}
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Fatalf("load kernel BTF: %v", err)
	}
	var fn *btf.Func
	if err := spec.TypeByName(bprmHook, &fn); err != nil {
		t.Fatalf("BTF has no func %s: %v", bprmHook, err)
	}
}

func TestKernelSeries(t *testing.T) {
	setup(t)
	want := os.Getenv("EXECFAILD_TEST_KERNEL")
	if want == "" {
		t.Skip("EXECFAILD_TEST_KERNEL unset: no series to compare with")
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatalf("uname: %v", err)
	}
	release := unix.ByteSliceToString(uts.Release[:])
	// "6.1." must not match "6.12.x", hence the trailing dot.
	if !strings.HasPrefix(release, want+".") {
		t.Fatalf("kernel release %q is not of series %s", release, want)
	}
	t.Logf("kernel %s", release)
}

func TestTracepointCountsFailedExec(t *testing.T) {
	setup(t)
	counter, prog := load(t, ebpf.TracePoint, ebpf.AttachNone, "")
	l, err := link.Tracepoint("syscalls", "sys_exit_execve", prog, nil)
	if err != nil {
		missing(t, "attach tracepoint syscalls/sys_exit_execve: "+err.Error())
	}
	defer l.Close()
	failExecs(t, filepath.Join(t.TempDir(), "absent"), unix.ENOENT)
	checkCount(t, counter)
}

func TestKprobeCountsExec(t *testing.T) {
	setup(t)
	if !inVM() {
		t.Skip("kprobes are checked in test guests only (the host kernel may lack them)")
	}
	counter, prog := load(t, ebpf.Kprobe, ebpf.AttachNone, "")
	l, err := link.Kprobe(bprmHook, prog, nil)
	if err != nil {
		t.Fatalf("attach kprobe %s: %v", bprmHook, err)
	}
	defer l.Close()
	failExecs(t, notProgram(t), unix.ENOEXEC)
	checkCount(t, counter)
}

func TestFentryCountsExec(t *testing.T) {
	setup(t)
	if !inVM() {
		t.Skip("fentry is checked in test guests only (the host refuses trampolines)")
	}
	counter, prog := load(t, ebpf.Tracing, ebpf.AttachTraceFEntry, bprmHook)
	l, err := link.AttachTracing(link.TracingOptions{Program: prog})
	// The matrix reads the kernel's build config: arm64 kernels without
	// ftrace direct calls (before 6.4) cannot attach trampolines to kernel
	// functions. Such a kernel must refuse, cleanly; any other must attach.
	if why := os.Getenv("EXECFAILD_TEST_NO_FENTRY"); why != "" {
		if err == nil {
			l.Close()
			t.Fatalf("fentry %s attached although the matrix expects this kernel to refuse (%s)", bprmHook, why)
		}
		if !errors.Is(err, ebpf.ErrNotSupported) {
			t.Fatalf("attach fentry %s: %v, want a not-supported error (%s)", bprmHook, err, why)
		}
		t.Skipf("fentry on kernel functions is not supported here, as expected (%s): %v", why, err)
	}
	if err != nil {
		t.Fatalf("attach fentry %s: %v", bprmHook, err)
	}
	defer l.Close()
	failExecs(t, notProgram(t), unix.ENOEXEC)
	checkCount(t, counter)
}

// load builds a program that counts its invocations by this process only,
// so execs of unrelated processes on a busy host do not disturb the count.
func load(t *testing.T, typ ebpf.ProgramType, attach ebpf.AttachType, attachTo string) (*ebpf.Map, *ebpf.Program) {
	t.Helper()
	counter, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		t.Fatalf("create counter map: %v", err)
	}
	t.Cleanup(func() { counter.Close() })
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:       typ,
		AttachType: attach,
		AttachTo:   attachTo,
		License:    "GPL",
		Instructions: asm.Instructions{
			asm.FnGetCurrentPidTgid.Call(),
			asm.RSh.Imm(asm.R0, 32),
			asm.JNE.Imm(asm.R0, int32(os.Getpid()), "out"),
			asm.StoreImm(asm.RFP, -4, 0, asm.Word),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -4),
			asm.LoadMapPtr(asm.R1, counter.FD()),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "out"),
			asm.Mov.Imm(asm.R1, 1),
			asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
			asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
			asm.Return(),
		},
	})
	if err != nil {
		if errors.Is(err, unix.EPERM) && !inVM() {
			t.Skipf("load %s program: %v", typ, err)
		}
		t.Fatalf("load %s program: %v", typ, err)
	}
	t.Cleanup(func() { prog.Close() })
	return counter, prog
}

// notProgram is an executable file that no binary format accepts. It is
// text on purpose: a non-printable header makes the kernel try to load a
// binfmt module first, which would add a usermode-helper exec to the run.
func notProgram(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "not-a-program")
	if err := os.WriteFile(p, []byte("plain text, no #! line\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func failExecs(t *testing.T, path string, want unix.Errno) {
	t.Helper()
	for i := 0; i < execAttempts; i++ {
		err := unix.Exec(path, []string{path}, nil)
		if !errors.Is(err, want) {
			t.Fatalf("exec %s: got %v, want %v", path, err, want)
		}
	}
}

func checkCount(t *testing.T, counter *ebpf.Map) {
	t.Helper()
	var n uint64
	if err := counter.Lookup(uint32(0), &n); err != nil {
		t.Fatalf("read counter: %v", err)
	}
	if n != execAttempts {
		t.Fatalf("program ran %d times for %d failed execs of this process, want %d", n, execAttempts, execAttempts)
	}
}
