package provoke

import (
	"bytes"
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
