// SPDX-License-Identifier: Apache-2.0

package provoke

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// CoreHelperPath is a usermode helper that cannot exist, so the kernel's
// own exec of it fails with ENOENT.
const CoreHelperPath = "/nonexistent/execfaild-core-helper"

const corePatternFile = "/proc/sys/kernel/core_pattern"

// CorePipeFailure makes the kernel itself fail an exec: it points
// core_pattern at a pipe to a missing helper, crashes a re-executed child so
// the kernel tries to start that helper, and restores core_pattern. It
// changes a system-wide setting, so only run it on a machine the test owns
// (a VM). The returned outcome has nothing to release.
func CorePipeFailure(exe string) (*Outcome, error) {
	old, err := os.ReadFile(corePatternFile)
	if err != nil {
		return nil, fmt.Errorf("read core_pattern: %w", err)
	}
	if err := os.WriteFile(corePatternFile, []byte("|"+CoreHelperPath), 0); err != nil {
		return nil, fmt.Errorf("set core_pattern: %w", err)
	}
	crashErr := crashChild(exe)
	// The kernel waits for the helper's exec (UMH_WAIT_EXEC) before the
	// dumping process finishes, so restoring after the child was reaped is
	// not early.
	restore := bytes.TrimSuffix(old, []byte("\n"))
	if err := os.WriteFile(corePatternFile, restore, 0); err != nil {
		return nil, fmt.Errorf("restore core_pattern to %q: %w", restore, err)
	}
	if crashErr != nil {
		return nil, crashErr
	}
	return &Outcome{
		Case:          "kernel_invoked_core_pipe",
		Syscall:       "kernel",
		Path:          CoreHelperPath,
		Errno:         unix.ENOENT,
		Got:           unix.ENOENT,
		Reach:         ReachNone,
		Cause:         "not-found",
		CauseProof:    ProofKernel,
		CauseNames:    []string{CoreHelperPath},
		Argv:          []string{CoreHelperPath},
		KernelInvoked: true,
	}, nil
}

func crashChild(exe string) error {
	cmd := exec.Command(exe)
	cmd.Env = append(cleanEnv(os.Environ()), crashEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	ws, ok := waitStatus(err)
	if !ok || !ws.Signaled() {
		return fmt.Errorf("crash child did not die from a signal (err %v, stderr %q)", err, lastLine(stderr.Bytes()))
	}
	if ws.Signal() != syscall.SIGABRT {
		return fmt.Errorf("crash child died from %v, want SIGABRT", ws.Signal())
	}
	return nil
}

func lastLine(b []byte) string {
	b = bytes.TrimSpace(b)
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	return string(b)
}

// ModprobePath is a modprobe that cannot exist, so the kernel's own exec of
// it fails with ENOENT.
const ModprobePath = "/nonexistent/execfaild-modprobe"

const modprobeFile = "/proc/sys/kernel/modprobe"

// ModprobeFailure makes the kernel fail the exec of its module loader: it
// points kernel.modprobe at a missing program and execs a file whose
// unprintable first bytes make exec request a binfmt module. It returns the
// helper's own ENOEXEC (to release) and the kernel-invoked exec's expected
// event. System-wide setting: only on a machine the test owns (a VM). A
// kernel without module support never calls modprobe; the caller tells that
// from the absence of /proc/sys/kernel/modprobe (ErrNoModules).
func (l *Lab) ModprobeFailure() (helper, kernel *Outcome, err error) {
	old, err := os.ReadFile(modprobeFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, ErrNoModules
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read kernel.modprobe: %w", err)
	}
	if err := os.WriteFile(modprobeFile, []byte(ModprobePath), 0); err != nil {
		return nil, nil, fmt.Errorf("set kernel.modprobe: %w", err)
	}
	// request_module waits for modprobe to finish (or fail to start), so
	// by the time the helper reports, the kernel's exec attempt is over.
	helper, herr := l.execve("modprobe_trigger", l.path("binary-garbage"), unix.ENOEXEC, ReachOpened, "", nil)
	restore := bytes.TrimSuffix(old, []byte("\n"))
	if err := os.WriteFile(modprobeFile, restore, 0); err != nil {
		if helper != nil {
			helper.Release()
		}
		return nil, nil, fmt.Errorf("restore kernel.modprobe to %q: %w", restore, err)
	}
	if herr != nil {
		return nil, nil, herr
	}
	expect(helper, nil, "not-a-program", ProofKernel, l.path("binary-garbage"), "00 01 02")
	return helper, &Outcome{
		Case:          "kernel_invoked_modprobe",
		Syscall:       "kernel",
		Path:          ModprobePath,
		Errno:         unix.ENOENT,
		Got:           unix.ENOENT,
		Reach:         ReachNone,
		Cause:         "not-found",
		CauseProof:    ProofKernel,
		CauseNames:    []string{ModprobePath},
		Argv:          []string{ModprobePath, "-q", "--", BinaryGarbageModule},
		KernelInvoked: true,
	}, nil
}

// KernelRequestsBinfmtModules tells whether this kernel runs modprobe for
// an unknown binary format (recent kernels do not), by pointing
// kernel.modprobe at a script that records its call and exec'ing
// binary garbage.
func (l *Lab) KernelRequestsBinfmtModules() (bool, error) {
	old, err := os.ReadFile(modprobeFile)
	if errors.Is(err, os.ErrNotExist) {
		return false, ErrNoModules
	}
	if err != nil {
		return false, fmt.Errorf("read kernel.modprobe: %w", err)
	}
	mark := l.path("modprobe-called")
	script := l.path("record-modprobe")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$@\" >"+mark+"\n"), 0o755); err != nil {
		return false, fmt.Errorf("write modprobe recorder: %w", err)
	}
	if err := os.Chmod(script, 0o755); err != nil {
		return false, fmt.Errorf("chmod modprobe recorder: %w", err)
	}
	if err := os.WriteFile(modprobeFile, []byte(script), 0); err != nil {
		return false, fmt.Errorf("set kernel.modprobe: %w", err)
	}
	o, herr := l.execve("binfmt_request_probe", l.path("binary-garbage"), unix.ENOEXEC, ReachOpened, "", nil)
	if o != nil {
		o.Release()
	}
	if err := os.WriteFile(modprobeFile, bytes.TrimSuffix(old, []byte("\n")), 0); err != nil {
		return false, fmt.Errorf("restore kernel.modprobe: %w", err)
	}
	if herr != nil {
		return false, herr
	}
	_, err = os.Stat(mark)
	return err == nil, nil
}

// UnknownFSModule is the module a mount of filesystem type UnknownFSType
// makes the kernel request.
const (
	UnknownFSType   = "execfaildfs"
	UnknownFSModule = "fs-" + UnknownFSType
)

// ModprobeByMount makes the kernel run kernel.modprobe (pointed at a
// missing file) by mounting a filesystem type nothing provides: every
// kernel with module support asks modprobe for "fs-<type>" first, whereas
// the binfmt module request of an unknown binary format is gone from
// recent kernels (7.x runs no modprobe for it).
func (l *Lab) ModprobeByMount() (*Outcome, error) {
	old, err := os.ReadFile(modprobeFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoModules
	}
	if err != nil {
		return nil, fmt.Errorf("read kernel.modprobe: %w", err)
	}
	if err := os.WriteFile(modprobeFile, []byte(ModprobePath), 0); err != nil {
		return nil, fmt.Errorf("set kernel.modprobe: %w", err)
	}
	dir := l.path("unknown-fs")
	merr := os.MkdirAll(dir, 0o755)
	if merr == nil {
		// request_module waits for modprobe to finish or fail to start:
		// once mount returns, the kernel's exec attempt is over.
		merr = unix.Mount("none", dir, UnknownFSType, 0, "")
		if merr == nil {
			unix.Unmount(dir, 0)
			merr = fmt.Errorf("mount of filesystem type %s succeeded", UnknownFSType)
		} else if errors.Is(merr, unix.ENODEV) {
			merr = nil
		}
	}
	restore := bytes.TrimSuffix(old, []byte("\n"))
	if err := os.WriteFile(modprobeFile, restore, 0); err != nil {
		return nil, fmt.Errorf("restore kernel.modprobe to %q: %w", restore, err)
	}
	if merr != nil {
		return nil, fmt.Errorf("mount unknown filesystem type: %w", merr)
	}
	return &Outcome{
		Case:          "kernel_invoked_modprobe_mount",
		Syscall:       "kernel",
		Path:          ModprobePath,
		Errno:         unix.ENOENT,
		Got:           unix.ENOENT,
		Reach:         ReachNone,
		Cause:         "not-found",
		CauseProof:    ProofKernel,
		CauseNames:    []string{ModprobePath},
		Argv:          []string{ModprobePath, "-q", "--", UnknownFSModule},
		KernelInvoked: true,
	}, nil
}

// ErrNoModules: the kernel has no module support, so exec never runs modprobe.
var ErrNoModules = errors.New("kernel without module support: exec never runs modprobe")
