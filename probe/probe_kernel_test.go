// SPDX-License-Identifier: Apache-2.0

package probe_test

// The real-kernel suite: attach the probe, make exec fail in every way
// provoke knows, and check each event field by field against what the
// helper and stat(2) say. It runs on the host (as root:
// `go test -count=1 -run Kernel -v ./probe/`, tracepoint mode there) and,
// compiled with `go test -c`, inside the vmtest guests (fentry, kprobe),
// where EXECFAILD_TEST_MODE names the mode the probe must run in and
// EXECFAILD_TEST_VM=1 allows the cases that change system-wide settings.
//
// What each mode provides, as asserted below:
//
//	field                      fentry/kprobe               tracepoint
//	return_value, error        kernel                      kernel
//	syscall, path, dirfd/flags kernel (syscall exit)       kernel (syscall exit)
//	arguments, environment     kernel, bounded, marked     same
//	process ids, comm, creds   kernel                      kernel
//	stdin_type/mode/path       kernel (fd 0 at exit)       kernel (fd 0 at exit)
//	binary.*                   kernel, source "kernel":    userspace stat through
//	                           required once a loader      /proc/<pid>, source
//	                           saw the file, optional      "userspace"; same
//	                           (but exact) when exec       required/optional/
//	                           refused it at open,         absent rules
//	                           absent when nothing exists
//	interpreter_path           kernel (open_exec name)     userspace (#! line)
//	stage                      from the hooks that fired   "loader" from evidence
//	                           (pre_open needs the open    (ENOEXEC, missing #!
//	                           hook; else absent)          interpreter), else absent
//	kernel_invoked             kernel_execve return        not observable (skipped)
//	process.exe, cwd           userspace (/proc/<pid>)     userspace (/proc/<pid>)
//	cause, cause_text          the case's cause, naming    the same, from userspace
//	                           what it must; inferred only evidence: inferred unless
//	                           where the hooks cannot see  the errno alone decides

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/probe"
	"github.com/execfaild/execfaild/probe/event"
	"github.com/execfaild/execfaild/probe/internal/provoke"
)

// The helper is this test binary re-executed; it must take over before the
// testing package parses flags. An init function does that without a
// TestMain, which other tests in this package may want for themselves.
func init() { provoke.MaybeHelper() }

const (
	// eventTimeout bounds the wait for one event while no record at all
	// arrives (records of other execs push it back). Generous because the
	// VM runs under software emulation, on machines slower than this one.
	eventTimeout = 10 * time.Second
	// quietPeriod is how long "no event" must hold before it is believed.
	quietPeriod = 750 * time.Millisecond
)

// requireRoot skips outside CI and fails in CI, where a missing
// prerequisite must not pass as a skip.
func requireRoot(t *testing.T) {
	t.Helper()
	if unix.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("needs root: CI runs the kernel suite as root")
	}
	t.Skip("needs root")
}

// collector drains the probe and lets tests wait for matching records.
type collector struct {
	mu        sync.Mutex
	changed   chan struct{}
	failures  []*event.Event
	successes []*event.Success
	err       error
	done      chan struct{}
}

func collect(p *probe.Probe) *collector {
	c := &collector{changed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			rec, err := p.Read()
			c.mu.Lock()
			if err != nil {
				if !errors.Is(err, probe.ErrClosed) {
					c.err = err
				}
				close(c.changed)
				c.changed = make(chan struct{})
				c.mu.Unlock()
				return
			}
			if rec.Failure != nil {
				c.failures = append(c.failures, rec.Failure)
			}
			if rec.Success != nil {
				c.successes = append(c.successes, rec.Success)
			}
			close(c.changed)
			c.changed = make(chan struct{})
			c.mu.Unlock()
		}
	}()
	return c
}

// wait returns the first failure that matches, or nil once no record has
// arrived for timeout: a probe still busy with other records is making
// progress toward this one.
func (c *collector) wait(timeout time.Duration, match func(*event.Event) bool) (*event.Event, error) {
	idle := time.NewTimer(timeout)
	defer idle.Stop()
	for {
		c.mu.Lock()
		for _, e := range c.failures {
			if match(e) {
				c.mu.Unlock()
				return e, nil
			}
		}
		if c.err != nil {
			err := c.err
			c.mu.Unlock()
			return nil, fmt.Errorf("probe read: %w", err)
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
			idle.Reset(timeout)
		case <-idle.C:
			return nil, nil
		}
	}
}

// waitSuccess is wait for a success record of tid.
func (c *collector) waitSuccess(timeout time.Duration, tid uint32) *event.Success {
	idle := time.NewTimer(timeout)
	defer idle.Stop()
	for {
		c.mu.Lock()
		for _, s := range c.successes {
			if s.TID == tid {
				c.mu.Unlock()
				return s
			}
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
			idle.Reset(timeout)
		case <-idle.C:
			return nil
		}
	}
}

func (c *collector) failuresOf(tid uint32) []*event.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*event.Event
	for _, e := range c.failures {
		if e.Process.TID == tid && !e.KernelInvoked {
			out = append(out, e)
		}
	}
	return out
}

func (c *collector) successesOf(tid uint32) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, s := range c.successes {
		if s.TID == tid {
			n++
		}
	}
	return n
}

// testMode is the mode EXECFAILD_TEST_MODE asks for ("" lets the probe pick).
func testMode() string { return os.Getenv("EXECFAILD_TEST_MODE") }

// closeAndCheck closes p, waits for its reader to stop, and fails the test
// for any record the probe lost or could not decode: a failure that is only
// counted is still a failure that escaped.
func closeAndCheck(t *testing.T, p *probe.Probe, col *collector) {
	t.Helper()
	// Drained first: records of unrelated execs still in the ring buffer
	// are read, not counted as undrained.
	p.Drain(time.Now().Add(eventTimeout))
	select {
	case <-col.done:
	case <-time.After(2 * eventTimeout):
		t.Error("Read did not return ErrClosed after Drain")
	}
	if err := p.Close(); err != nil {
		t.Errorf("close probe: %v", err)
	}
	s := p.Stats()
	t.Logf("probe stats at close: %+v", s)
	checkNoLoss(t, s)
}

// TestKernelProbe is the whole real-kernel suite under one probe instance:
// attaching is the slow part under emulation, and one instance also proves
// the probe keeps working across many different failures.
func TestKernelProbe(t *testing.T) {
	requireRoot(t)
	cfg := probe.DefaultConfig()
	wantMode := testMode()
	if wantMode != "" {
		cfg.Mode = wantMode
	}
	p := startProbe(t, cfg)
	col := collect(p)
	t.Cleanup(func() { closeAndCheck(t, p, col) })
	mode := p.Mode()
	measuredBuild = p.Report().Build != "legacy"
	if wantMode != "" && mode != wantMode {
		t.Fatalf("probe runs in mode %q, EXECFAILD_TEST_MODE asks for %q", mode, wantMode)
	}
	switch mode {
	case "fentry", "kprobe", "tracepoint", "legacy":
	default:
		t.Fatalf("probe reports unknown mode %q", mode)
	}
	r := p.Report()
	t.Logf("probe mode %s (build %s, transport %s) on kernel %s", mode, r.Build, r.Transport, kernelRelease())
	// Legacy mode stands for a kernel before 5.8, which has no ring buffer.
	if mode == probe.ModeLegacy && testTransport() == "" && r.Transport != probe.TransportPerf {
		t.Errorf("legacy mode sends through %q, want the perf event array", r.Transport)
	}
	openHook, fexitVerdict, seccompHook := false, false, false
	for _, h := range p.Report().Hooks {
		if h.Name == "seccomp" && h.Attached {
			seccompHook = true
		}
		if h.Name == "open" && h.Attached {
			openHook = true
		}
		if h.Name == "verdict" && h.Kind == "fexit" && h.Attached {
			fexitVerdict = true
		}
		t.Logf("hook %-14s %-40s %-18s attached=%v %s", h.Name, h.Function, h.Kind, h.Attached, h.Reason)
	}

	lab, err := provoke.NewLab(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Error(err)
		}
	})
	lim := provoke.Limits{MaxArgs: cfg.MaxArgs, MaxEnv: cfg.MaxEnv, MaxArgLen: cfg.MaxArgLen}

	for _, c := range provoke.Cases(lim) {
		t.Run(c.Name, func(t *testing.T) {
			if c.Compat && !provoke.CompatSupported {
				t.Skip("no 32-bit syscall ABI is provoked on this architecture")
			}
			o, err := c.Run(lab)
			if errors.Is(err, provoke.ErrNoLandlock) {
				t.Skip(err.Error())
			}
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := o.Release(); err != nil {
					t.Errorf("release helper: %v", err)
				}
			}()
			if o.Got != o.Errno {
				t.Fatalf("kernel returned %s to the helper, case is built for %s: the case itself is broken here",
					unix.ErrnoName(o.Got), unix.ErrnoName(o.Errno))
			}
			if c.BeforeSyscall && fexitVerdict && !seccompHook {
				// A known gap, not a pass: the fexit of the syscall
				// function never runs for a syscall seccomp refused, and
				// this kernel would not attach the seccomp hook.
				t.Skip("not reported here: the verdict is taken at the execve function's return, which a seccomp-refused exec never reaches, and __secure_computing could not be hooked")
			}
			ev, err := col.wait(eventTimeout, func(e *event.Event) bool {
				return e.Process.TID == o.Caller.TID && e.Path == o.Path && !e.KernelInvoked
			})
			if err != nil {
				t.Fatal(err)
			}
			if ev == nil {
				t.Fatalf("no event for tid %d path %q: no record for %v (others for that tid: %d)",
					o.Caller.TID, o.Path, eventTimeout, len(col.failuresOf(o.Caller.TID)))
			}
			checkEvent(t, mode, openHook, cfg, lab, o, ev)
			if o.Succeeded {
				checkSuccessAfter(t, col, o, lab.Exe)
			}
			t.Logf("case %s mode %s: %s path=%q binary=%s interp=%q stdin=%s stage=%q cause=%s inferred=%v %q",
				c.Name, mode, ev.Error, ev.Path, describeBinary(ev.Binary), ev.InterpreterPath, ev.StdinType, ev.Stage,
				ev.Cause, ev.CauseInferred, ev.CauseText)
		})
	}

	t.Run("success_no_event", func(t *testing.T) {
		// A plain successful exec: no failure, and no Success record either,
		// since the thread had no pending ENOENT.
		cmd := exec.Command(lab.Exe)
		cmd.Env = []string{"EXECFAILD_PROVOKE_EXIT0=1"}
		if err := cmd.Run(); err != nil {
			t.Fatalf("run %s as a successful exec: %v", lab.Exe, err)
		}
		tid := uint32(cmd.Process.Pid)
		time.Sleep(quietPeriod)
		if fs := col.failuresOf(tid); len(fs) != 0 {
			t.Errorf("successful exec by pid %d produced %d failure events, first: %s %q", tid, len(fs), fs[0].Error, fs[0].Path)
		}
		if n := col.successesOf(tid); n != 0 {
			t.Errorf("successful exec without a pending ENOENT produced %d Success records", n)
		}
	})

	t.Run("thread_success_then_reused_tid", func(t *testing.T) {
		// A worker thread's successful exec: no failure, no Success
		// record. What exec learned about that binary must not outlive
		// the attempt: a later failure by a task that reuses the worker's
		// tid reports its own fields only.
		o, err := lab.ThreadSuccess()
		if err != nil {
			t.Fatal(err)
		}
		tid := o.Caller.TID
		if o.Caller.MainThread {
			t.Fatalf("helper exec'd from its main thread (tid %d), the case needs a worker", tid)
		}
		time.Sleep(quietPeriod)
		if fs := col.failuresOf(tid); len(fs) != 0 {
			t.Errorf("successful exec from worker tid %d produced %d failure events", tid, len(fs))
		}
		if n := col.successesOf(tid) + col.successesOf(o.Caller.PID); n != 0 {
			t.Errorf("successful exec from a worker without a pending ENOENT produced %d Success records", n)
		}
		fail, err := withNextPID(tid, func() (*provoke.Outcome, error) {
			return lab.Execve("reused_tid", lab.Path("does-not-exist"), unix.ENOENT, provoke.ReachNone, "",
				func(argv, env []string) ([]string, []string) { return argv, env })
		})
		if err != nil {
			t.Fatal(err)
		}
		defer fail.Release()
		ev, err := col.wait(eventTimeout, func(e *event.Event) bool {
			return e.Process.TID == fail.Caller.TID && e.Path == fail.Path
		})
		if err != nil || ev == nil {
			t.Fatalf("no event for the failure of reused tid %d (err %v)", tid, err)
		}
		checkEvent(t, mode, openHook, cfg, lab, fail, ev)
	})

	t.Run("restarted_exec_not_a_failure", func(t *testing.T) {
		// Two threads exec at once; the loser's execve ends in
		// -ERESTARTNOINTR as the winner's de_thread kills it. The race
		// is not forced, so a run may not provoke it; when it does, a
		// report of that restart code is a false failure.
		// Only failures from after the race began count: the suite
		// rewinds ns_last_pid (reused_tid), so a race pid can be one that
		// another process failed with earlier (a compiler driver's PATH
		// probing, run alongside).
		col.mu.Lock()
		before := len(col.failures)
		col.mu.Unlock()
		pids, err := lab.ExecRace(40)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(quietPeriod)
		col.mu.Lock()
		defer col.mu.Unlock()
		for _, e := range col.failures[before:] {
			if slices.Contains(pids, e.Process.PID) {
				t.Errorf("pid %d reported %s (%d) for an exec that was restarted or succeeded", e.Process.PID, e.Error, e.ReturnValue)
			}
		}
	})

	t.Run("compat_static_binary", func(t *testing.T) {
		if !provoke.CompatSupported {
			t.Skip("no 32-bit syscall ABI is provoked on this architecture")
		}
		// A real 32-bit program, loaded by the kernel in compat mode.
		prog := lab.Path("ia32-prog")
		target := lab.Path("does-not-exist-ia32")
		argv := []string{"ia32-prog", "--flag", "two words"}
		if err := os.WriteFile(prog, provoke.I386Program(target, argv), 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(prog)
		cmd.Dir = lab.Dir
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != int(unix.ENOENT) {
			t.Fatalf("32-bit program: %v, want its exec to fail with ENOENT (exit 2)", err)
		}
		pid := uint32(cmd.Process.Pid)
		ev, err := col.wait(eventTimeout, func(e *event.Event) bool { return e.Process.PID == pid })
		if err != nil || ev == nil {
			t.Fatalf("no event for the 32-bit program's failed execve (pid %d, err %v)", pid, err)
		}
		eq(t, "abi", ev.ABI, event.ABIIA32)
		eq(t, "syscall", ev.Syscall, event.SyscallExecve)
		eq(t, "error", ev.Error, "ENOENT")
		eq(t, "path", ev.Path, target)
		eq(t, "arguments", fmt.Sprintf("%q", ev.Arguments), fmt.Sprintf("%q", argv))
		eq(t, "process.comm", ev.Process.Comm, "ia32-prog")
		eq(t, "process.exe", ev.Process.Exe, prog)
		eq(t, "process.cwd", ev.Process.Cwd, lab.Dir)
		if ev.Binary != nil {
			t.Errorf("binary %+v for a path that does not exist", ev.Binary)
		}
	})

	t.Run("rewritten_path", func(t *testing.T) {
		o, err := lab.RewrittenPath()
		if err != nil {
			t.Fatal(err)
		}
		defer o.Release()
		if o.Got != o.Errno {
			t.Fatalf("kernel returned %s, case is built for %s", unix.ErrnoName(o.Got), unix.ErrnoName(o.Errno))
		}
		ev, err := col.wait(eventTimeout, func(e *event.Event) bool { return e.Process.TID == o.Caller.TID })
		if err != nil || ev == nil {
			t.Fatalf("no event for tid %d (err %v)", o.Caller.TID, err)
		}
		if mode == "tracepoint" {
			// No hook sees the kernel's copy: the path is read back from
			// the caller's memory at the exit, as documented.
			eq(t, "path_source", ev.PathSource, event.SourceCaller)
			t.Skipf("tracepoint mode reads the path from the caller's memory at exit: got %q, the kernel used %q", ev.Path, o.Path)
		}
		eq(t, "path_source", ev.PathSource, event.SourceKernel)
		checkEvent(t, mode, openHook, cfg, lab, o, ev)
	})

	t.Run("kernel_invoked_core_pipe", func(t *testing.T) {
		if os.Getenv("EXECFAILD_TEST_VM") != "1" {
			t.Skip("changes the system-wide core_pattern: runs only in a test VM (EXECFAILD_TEST_VM=1)")
		}
		if mode == "tracepoint" {
			// Kernel-initiated execs never reach a syscall exit; only the
			// kernel_execve hook of fentry/kprobe mode sees them.
			t.Skip("tracepoint mode cannot observe kernel-initiated execs")
		}
		o, err := provoke.CorePipeFailure(lab.Exe)
		if err != nil {
			t.Fatal(err)
		}
		checkKernelInvoked(t, col, mode, o)
	})

	t.Run("kernel_invoked_modprobe_mount", func(t *testing.T) {
		if os.Getenv("EXECFAILD_TEST_VM") != "1" {
			t.Skip("changes the system-wide kernel.modprobe: runs only in a test VM (EXECFAILD_TEST_VM=1)")
		}
		if mode == "tracepoint" {
			t.Skip("tracepoint mode cannot observe kernel-initiated execs")
		}
		o, err := lab.ModprobeByMount()
		if errors.Is(err, provoke.ErrNoModules) {
			t.Skip(err.Error())
		}
		if err != nil {
			t.Fatal(err)
		}
		checkKernelInvoked(t, col, mode, o)
	})

	t.Run("kernel_invoked_modprobe", func(t *testing.T) {
		if os.Getenv("EXECFAILD_TEST_VM") != "1" {
			t.Skip("changes the system-wide kernel.modprobe: runs only in a test VM (EXECFAILD_TEST_VM=1)")
		}
		if mode == "tracepoint" {
			t.Skip("tracepoint mode cannot observe kernel-initiated execs")
		}
		requests, err := lab.KernelRequestsBinfmtModules()
		if errors.Is(err, provoke.ErrNoModules) {
			t.Skip(err.Error())
		}
		if err != nil {
			t.Fatal(err)
		}
		if !requests {
			// Checked with a modprobe that records its call: there is no
			// kernel exec to report (kernel_invoked_modprobe_mount covers
			// modprobe on this kernel).
			t.Skip("this kernel runs no modprobe for an unknown binary format")
		}
		helper, o, err := lab.ModprobeFailure()
		if errors.Is(err, provoke.ErrNoModules) {
			t.Skip(err.Error())
		}
		if err != nil {
			t.Fatal(err)
		}
		defer helper.Release()
		// The exec that made the kernel look for a module is an ordinary
		// failure of its own, reported like any other.
		ev, err := col.wait(eventTimeout, func(e *event.Event) bool {
			return e.Process.TID == helper.Caller.TID && e.Path == helper.Path && !e.KernelInvoked
		})
		if err != nil {
			t.Fatal(err)
		}
		if ev == nil {
			t.Fatalf("no event for the triggering exec of %s", helper.Path)
		}
		checkEvent(t, mode, openHook, cfg, lab, helper, ev)
		checkKernelInvoked(t, col, mode, o)
	})

	t.Run("path_search", func(t *testing.T) { pathSearchCases(t, p, col) })
	t.Run("size_sweep", func(t *testing.T) { sizeSweepCases(t, p, col, cfg) })
}

// checkKernelInvoked waits for the kernel's own failed exec of o.Path. The
// caller is a kernel worker, so the event is matched by path, and only the
// fields a usermode helper has are checked.
func checkKernelInvoked(t *testing.T, col *collector, mode string, o *provoke.Outcome) {
	t.Helper()
	// Matched by argv too: two cases run the same missing modprobe for
	// different modules.
	ev, err := col.wait(eventTimeout, func(e *event.Event) bool {
		return e.KernelInvoked && e.Path == o.Path && slices.Equal(e.Arguments, o.Argv)
	})
	if err != nil {
		t.Fatal(err)
	}
	if ev == nil {
		t.Fatalf("no kernel_invoked event for %s within %v", o.Path, eventTimeout)
	}
	eq(t, "syscall", ev.Syscall, event.SyscallKernel)
	eq(t, "return_value", ev.ReturnValue, -int32(o.Got))
	eq(t, "error", ev.Error, unix.ErrnoName(o.Got))
	eq(t, "arguments", fmt.Sprintf("%q", ev.Arguments), fmt.Sprintf("%q", o.Argv))
	if ev.Dirfd != nil || ev.Flags != nil {
		t.Errorf("dirfd/flags %v/%v on a kernel exec, want absent", ev.Dirfd, ev.Flags)
	}
	if ev.Binary != nil {
		t.Errorf("binary %+v for a program that does not exist", ev.Binary)
	}
	checkCause(t, mode, o, ev)
	t.Logf("case %s mode %s: %s path=%q argv=%q comm=%q", o.Case, mode, ev.Error, ev.Path, ev.Arguments, ev.Process.Comm)
}

func eq[T comparable](t *testing.T, field string, got, want T) {
	t.Helper()
	if got != want {
		if g, ok := any(got).(string); ok {
			t.Errorf("%s: got %q, want %q", field, g, any(want))
			return
		}
		t.Errorf("%s: got %v, want %v", field, got, want)
	}
}

// checkEvent compares one event with what the provoked exec must produce.
func checkEvent(t *testing.T, mode string, openHook bool, cfg probe.Config, lab *provoke.Lab, o *provoke.Outcome, ev *event.Event) {
	t.Helper()
	kernelHooks := mode != "tracepoint"
	source := event.SourceUserspace
	if kernelHooks {
		source = event.SourceKernel
	}

	eq(t, "return_value", ev.ReturnValue, -int32(o.Got))
	eq(t, "error", ev.Error, unix.ErrnoName(o.Got))
	eq(t, "error_text", ev.ErrorText, o.Got.Error())
	eq(t, "syscall", ev.Syscall, o.Syscall)
	eq(t, "abi", ev.ABI, o.ABI)
	eq(t, "path", ev.Path, o.Path)
	eq(t, "path_truncated", ev.PathTruncated, o.PathFault)
	eq(t, "kernel_invoked", ev.KernelInvoked, false)
	if o.Syscall == event.SyscallExecveat {
		if ev.Dirfd == nil || ev.Flags == nil {
			t.Errorf("execveat event without dirfd/flags: %v/%v", ev.Dirfd, ev.Flags)
		} else {
			eq(t, "dirfd", *ev.Dirfd, *o.Dirfd)
			eq(t, "flags", *ev.Flags, *o.Flags)
		}
	} else if ev.Dirfd != nil || ev.Flags != nil {
		t.Errorf("execve event with dirfd/flags %v/%v, want absent", ev.Dirfd, ev.Flags)
	}

	checkBinary(t, mode, source, o, ev)
	checkInterpreter(t, source, o, ev)
	checkStdin(t, o, ev)
	wantArgs, argsTrunc := expectStrings(o.Argv, cfg.MaxArgs, cfg.MaxArgLen)
	checkStrings(t, "arguments", ev.Arguments, ev.ArgumentsTruncated, wantArgs, argsTrunc || o.ArgvFault)
	checkEnvironment(t, cfg, o, ev)
	checkProcess(t, lab, o, ev)
	checkStage(t, mode, openHook, o, ev)
	checkCause(t, mode, o, ev)
}

// checkCause: the diagnosis the case is built for, a sentence naming what
// the case says it must, and marked inferred exactly when the mode had to
// gather its evidence in userspace.
// measuredBuild: the probe under test runs the default build, which
// measures argv and envp after E2BIG (the legacy build does not).
var measuredBuild bool

func checkCause(t *testing.T, mode string, o *provoke.Outcome, ev *event.Event) {
	t.Helper()
	if o.Cause == "" {
		t.Fatalf("case %s declares no expected cause", o.Case)
	}
	eq(t, "cause", ev.Cause, o.Cause)
	names := o.CauseNames
	if measuredBuild {
		names = append(names[:len(names):len(names)], o.CauseMeasured...)
	}
	for _, n := range names {
		if !strings.Contains(ev.CauseText, n) {
			t.Errorf("cause_text %q does not name %q", ev.CauseText, n)
		}
	}
	inferred := o.CauseProof == provoke.ProofUserspace || o.CauseProof == provoke.ProofKernel && mode == "tracepoint"
	eq(t, "cause_inferred", ev.CauseInferred, inferred)
}

func describeBinary(b *event.Binary) string {
	if b == nil {
		return "absent"
	}
	return fmt.Sprintf("%s(%s)", b.Path, b.Source)
}

func checkBinary(t *testing.T, mode, source string, o *provoke.Outcome, ev *event.Event) {
	t.Helper()
	switch o.Reach {
	case provoke.ReachNone:
		if ev.Binary != nil {
			t.Errorf("binary %+v, want absent: no file exists at %q", ev.Binary, o.Path)
		}
		return
	case provoke.ReachRefused:
		// Kernel hooks sit after the open succeeded and the file was
		// accepted for exec, so a refused file is invisible to them; a
		// userspace stat still finds it. Either way, what is there must
		// be right.
		if ev.Binary == nil {
			t.Logf("binary absent for a file exec refused early (mode %s)", mode)
			return
		}
	case provoke.ReachOpened:
		if ev.Binary == nil {
			t.Errorf("binary absent, want %s: exec opened it and handed it to a loader", o.Binary.Path)
			return
		}
	}
	b, want := ev.Binary, o.Binary
	gotPath, wantPath := b.Path, want.Path
	if strings.HasPrefix(wantPath, "/memfd:") {
		// d_path appends " (deleted)" to an unlinked file; a walk of the
		// dentry chain does not. Both name the same memfd.
		gotPath = strings.TrimSuffix(gotPath, " (deleted)")
		wantPath = strings.TrimSuffix(wantPath, " (deleted)")
	}
	eq(t, "binary.path", gotPath, wantPath)
	eq(t, "binary.device_id", b.DeviceID, want.Dev)
	eq(t, "binary.inode_number", b.InodeNumber, want.Ino)
	eq(t, "binary.inode_mode", fmt.Sprintf("0%o", b.InodeMode), fmt.Sprintf("0%o", want.Mode))
	eq(t, "binary.ctime", b.Ctime, want.Ctime)
	eq(t, "binary.source", b.Source, source)
}

func checkInterpreter(t *testing.T, source string, o *provoke.Outcome, ev *event.Event) {
	t.Helper()
	eq(t, "interpreter_path", ev.InterpreterPath, o.Interpreter)
	if o.Interpreter != "" {
		eq(t, "interpreter_source", ev.InterpreterSource, source)
	} else if ev.InterpreterSource != "" {
		t.Errorf("interpreter_source %q without an interpreter", ev.InterpreterSource)
	}
}

func checkStdin(t *testing.T, o *provoke.Outcome, ev *event.Event) {
	t.Helper()
	eq(t, "stdin_type", ev.StdinType, o.Stdin.Type)
	if o.Stdin.Closed {
		if ev.StdinMode != nil || ev.StdinPath != "" {
			t.Errorf("closed stdin with stdin_mode %v stdin_path %q, want both absent", ev.StdinMode, ev.StdinPath)
		}
		return
	}
	if ev.StdinMode == nil {
		t.Errorf("stdin_mode absent, want 0%o", o.Stdin.Mode)
	} else {
		eq(t, "stdin_mode", fmt.Sprintf("0%o", *ev.StdinMode), fmt.Sprintf("0%o", o.Stdin.Mode))
	}
	switch o.Stdin.Type {
	case "fifo", "sock":
		// Pipes and sockets have no path, only a synthetic name
		// (pipe:[N]); reporting that name or nothing are both honest.
		if ev.StdinPath != "" && ev.StdinPath != o.Stdin.Link {
			t.Errorf("stdin_path %q, want empty or %q", ev.StdinPath, o.Stdin.Link)
		}
	default:
		eq(t, "stdin_path", ev.StdinPath, o.Stdin.Link)
	}
}

// expectStrings is what a capture bounded to max entries of maxLen bytes
// each must keep, and whether it must say it cut something.
func expectStrings(real []string, max, maxLen int) ([]string, bool) {
	var out []string
	trunc := len(real) > max
	for i, s := range real {
		if i >= max {
			break
		}
		if len(s) > maxLen {
			s, trunc = s[:maxLen], true
		}
		out = append(out, s)
	}
	return out, trunc
}

func checkStrings(t *testing.T, field string, got []string, gotTrunc bool, want []string, wantTrunc bool) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: got %d entries, want %d; first difference: %s", field, len(got), len(want), firstDiff(got, want))
	}
	eq(t, field+"_truncated", gotTrunc, wantTrunc)
}

func firstDiff(got, want []string) string {
	for i := range max(len(got), len(want)) {
		if i < len(got) && i < len(want) && got[i] == want[i] {
			continue
		}
		g, w := "<none>", "<none>"
		if i < len(got) {
			g = short(got[i])
		}
		if i < len(want) {
			w = short(want[i])
		}
		return fmt.Sprintf("[%d] got %q (%d bytes) want %q (%d bytes)", i, g, lenOr(got, i), w, lenOr(want, i))
	}
	return "none"
}

func lenOr(ss []string, i int) int {
	if i < len(ss) {
		return len(ss[i])
	}
	return -1
}

func short(s string) string {
	if len(s) > 40 {
		return s[:20] + "…" + s[len(s)-12:]
	}
	return s
}

// checkEnvironment applies the configured policy to what the helper passed:
// capture bounds first (the kernel side), then redaction of values whose
// names are not kept (userspace).
func checkEnvironment(t *testing.T, cfg probe.Config, o *provoke.Outcome, ev *event.Event) {
	t.Helper()
	if cfg.Environment == "none" {
		if len(ev.Environment) != 0 {
			t.Errorf("environment captured with environment=none: %d entries", len(ev.Environment))
		}
		return
	}
	want, trunc := expectStrings(o.Env, cfg.MaxEnv, cfg.MaxArgLen)
	redacted := false
	if cfg.Environment == "redact" {
		for i, kv := range want {
			name, _, _ := strings.Cut(kv, "=")
			if !slices.Contains(cfg.KeepEnv, name) {
				want[i] = name + "=<redacted>"
				redacted = true
			}
		}
	}
	checkStrings(t, "environment", ev.Environment, ev.EnvironmentTruncated, want, trunc)
	eq(t, "environment_redacted", ev.EnvironmentRedacted, redacted)
	for _, kv := range ev.Environment {
		if strings.Contains(kv, "hunter2") {
			t.Errorf("secret environment value leaked into the event: %q", kv)
		}
	}
}

func checkProcess(t *testing.T, lab *provoke.Lab, o *provoke.Outcome, ev *event.Event) {
	t.Helper()
	c, p := o.Caller, ev.Process
	eq(t, "process.pid", p.PID, c.PID)
	eq(t, "process.tid", p.TID, c.TID)
	eq(t, "process.ppid", p.PPID, c.PPID)
	eq(t, "process.uid", p.UID, c.UID)
	eq(t, "process.gid", p.GID, c.GID)
	eq(t, "process.euid", p.EUID, c.EUID)
	eq(t, "process.comm", p.Comm, c.Comm)
	switch {
	case c.LoginUID == nil && p.LoginUID != nil:
		t.Errorf("process.loginuid %d, want absent (unset)", *p.LoginUID)
	case c.LoginUID != nil && p.LoginUID == nil:
		t.Errorf("process.loginuid absent, want %d", *c.LoginUID)
	case c.LoginUID != nil && *p.LoginUID != *c.LoginUID:
		t.Errorf("process.loginuid %d, want %d", *p.LoginUID, *c.LoginUID)
	}
	if o.Succeeded {
		// The caller may be gone (or be the new image) before userspace
		// looks at /proc, so exe and cwd are optional here.
		if p.Cwd != "" {
			eq(t, "process.cwd", p.Cwd, c.Cwd)
		}
		return
	}
	// The helper is alive until released, so /proc/<pid> answers.
	eq(t, "process.cwd", p.Cwd, c.Cwd)
	exe, err := filepath.EvalSymlinks(lab.Exe)
	if err != nil {
		t.Fatalf("resolve test binary: %v", err)
	}
	eq(t, "process.exe", p.Exe, exe)
	// The parent is this test process, alive and easy to describe.
	if ev.Parent == nil {
		t.Errorf("parent absent, want pid %d", c.PPID)
		return
	}
	eq(t, "parent.pid", ev.Parent.PID, c.PPID)
	if comm, err := os.ReadFile("/proc/self/comm"); err == nil {
		eq(t, "parent.comm", ev.Parent.Comm, strings.TrimSuffix(string(comm), "\n"))
	}
	eq(t, "parent.exe", ev.Parent.Exe, exe)
}

// checkStage: the hooks tell how far exec got. Tracepoint mode has no
// hooks; it may place a failure in the loader from evidence userspace sees
// (ENOEXEC, or a #! interpreter that is missing) and must otherwise leave
// the stage absent rather than guess. Without an attached open hook, a
// kernel mode cannot tell "before open" from "unknown" either.
func checkStage(t *testing.T, mode string, openHook bool, o *provoke.Outcome, ev *event.Event) {
	t.Helper()
	var want []string
	switch {
	case o.Reach == provoke.ReachOpened:
		want = []string{event.StageLoader}
	case mode == "tracepoint":
		want = []string{event.StageUnknown}
	case o.Reach == provoke.ReachNone && openHook:
		want = []string{event.StagePreOpen}
	case o.Reach == provoke.ReachNone:
		want = []string{event.StageUnknown}
	case openHook:
		// Refused while being opened or right after; whether the open
		// hook saw a file depends on where the check sits in this kernel
		// (E2BIG is checked before the open on 6.1, after it on 6.12).
		want = []string{event.StagePreOpen, event.StageOpen}
	default:
		want = []string{event.StageUnknown}
	}
	if !slices.Contains(want, ev.Stage) {
		t.Errorf("stage %q, want one of %q (mode %s, open hook attached %v, reach %v)", ev.Stage, want, mode, openHook, o.Reach)
	}
}

// checkSuccessAfter: the failure was followed by a successful exec of
// another program (exe) from the same thread. That success must not
// produce a failure, and must produce a Success record naming the program
// it ran (the kernel's 15 bytes of its file name), so that it ends only a
// PATH search for that program: this failure, of another name, must still
// be reported once the records are folded as the daemon folds them.
func checkSuccessAfter(t *testing.T, col *collector, o *provoke.Outcome, exe string) {
	t.Helper()
	s := col.waitSuccess(eventTimeout, o.Caller.TID)
	if s == nil {
		t.Errorf("no Success record for tid %d after ENOENT then a successful exec", o.Caller.TID)
	} else {
		eq(t, "success.pid", s.PID, o.Caller.PID)
		name := filepath.Base(exe)
		if len(name) > 15 {
			name = name[:15]
		}
		if s.Name == "" {
			// Read from /proc: a program reaped before the marker
			// was read leaves it unknown.
			t.Logf("success.name unknown (want %q)", name)
		} else {
			eq(t, "success.name", s.Name, name)
		}
	}
	if f := col.failuresOf(o.Caller.TID); len(f) > 0 && s != nil && s.Name != "" {
		var out []*event.Event
		fold := notify.NewPathSearches(time.Hour, nil, func(ev *event.Event) { out = append(out, ev) })
		ev := *f[0]
		fold.Failure(&ev)
		fold.Success(s)
		if len(out) != 1 || out[0].Path != o.Path {
			t.Errorf("ENOENT of %s then a successful exec of %s: %d reports after folding, want that failure", o.Path, exe, len(out))
		}
		fold.Flush()
	}
	time.Sleep(quietPeriod)
	if fs := col.failuresOf(o.Caller.TID); len(fs) != 1 {
		t.Errorf("tid %d has %d failure events, want exactly the one ENOENT", o.Caller.TID, len(fs))
	}
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// withNextPID runs start (which forks one process) with the kernel's next
// pid set to pid, through ns_last_pid, and retries when another fork took
// it first. The pid must be free.
func withNextPID(pid uint32, start func() (*provoke.Outcome, error)) (*provoke.Outcome, error) {
	for range 5 {
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(fmt.Sprint(pid-1)), 0); err != nil {
			return nil, fmt.Errorf("set ns_last_pid: %w", err)
		}
		o, err := start()
		if err != nil || o.Caller.PID == pid {
			return o, err
		}
		o.Release()
	}
	return nil, fmt.Errorf("no fork got pid %d in 5 tries", pid)
}
