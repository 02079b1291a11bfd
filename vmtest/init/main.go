// Command init is PID 1 of the test initramfs that vmtest boots under qemu.
//
// It mounts the kernel filesystems the probe needs (proc, sysfs, devtmpfs,
// devpts, tmpfs on /tmp and /dev/shm, tracefs, debugfs, bpffs, cgroup2), then
// runs jobs one after another with their output on the console, framed by
// markers the host parses:
//
//	=== VMTEST INIT release=<uname -r> uptime=<seconds since kernel start>
//	=== VMTEST BEGIN <name>
//	... the job's stdout and stderr ...
//	=== VMTEST END <name> exit=<code> seconds=<wall time>
//	=== VMTEST DONE jobs=<n> failed=<n>
//
// and powers the machine off. A job that is killed by a signal or its
// timeout reports exit=-1.
//
// Jobs come from /vmtest/jobs.json (a JSON array of Job) and, for quick
// experiments, from the kernel command line: everything after "--" in
// qemu's -append becomes one job named "cmdline". Unknown key=value words
// on the command line reach init's environment (the kernel does that), and
// every job inherits that environment, so
// `-append "console=ttyS0 FOO=1 -- /bin/sh -c 'echo $FOO'"` works.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Job is one command the guest runs.
type Job struct {
	Name string   `json:"name"`
	Argv []string `json:"argv"`
	// Env entries (KEY=VALUE) are added to init's own environment.
	Env []string `json:"env,omitempty"`
	// Dir is the working directory; "/" when empty.
	Dir string `json:"dir,omitempty"`
	// TimeoutSec kills the job after this many seconds; 0 means no limit
	// (the host's per-boot timeout still applies).
	TimeoutSec int `json:"timeout_sec,omitempty"`
}

const jobsFile = "/vmtest/jobs.json"

type mount struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
}

// The order matters: devtmpfs before devpts and /dev/shm, sysfs before the
// filesystems mounted below /sys.
var mounts = []mount{
	{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"},
	{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "gid=5,mode=620,ptmxmode=666"},
	{"tmpfs", "/dev/shm", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
	{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
	{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755"},
	{"tracefs", "/sys/kernel/tracing", "tracefs", 0, ""},
	{"debugfs", "/sys/kernel/debug", "debugfs", 0, ""},
	{"bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700"},
	{"cgroup2", "/sys/fs/cgroup", "cgroup2", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"securityfs", "/sys/kernel/security", "securityfs", 0, ""},
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "=== VMTEST ERROR %v\n", err)
	}
	powerOff()
}

func run() error {
	setupConsole()
	var errs []error
	for _, m := range mounts {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			errs = append(errs, fmt.Errorf("mkdir %s: %w", m.target, err))
			continue
		}
		if err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data); err != nil {
			// Not fatal: a kernel without, say, securityfs still runs the
			// jobs, and the job that needs the mount reports what is missing.
			fmt.Printf("=== VMTEST WARN mount %s on %s: %v\n", m.fstype, m.target, err)
		}
	}
	// The console is the first output path; after devtmpfs is mounted it
	// can be reopened so jobs inherit a real terminal.
	setupConsole()
	_ = unix.Sethostname([]byte("vmtest"))
	_ = os.Symlink("/proc/self/fd", "/dev/fd")
	_ = os.MkdirAll("/root", 0o700)

	var uts unix.Utsname
	_ = unix.Uname(&uts)
	fmt.Printf("=== VMTEST INIT release=%s uptime=%s\n", unix.ByteSliceToString(uts.Release[:]), uptime())

	jobs, err := loadJobs(jobsFile, os.Args[1:])
	if err != nil {
		errs = append(errs, err)
	}
	if len(jobs) == 0 && err == nil {
		errs = append(errs, fmt.Errorf("no jobs: neither %s nor arguments after -- on the kernel command line", jobsFile))
	}
	failed := 0
	for _, j := range jobs {
		if code := runJob(j); code != 0 {
			failed++
		}
	}
	fmt.Printf("=== VMTEST DONE jobs=%d failed=%d\n", len(jobs), failed)
	return errors.Join(errs...)
}

// setupConsole points fds 0-2 at /dev/console. Before devtmpfs is mounted
// the kernel may have started init without any open descriptors (the
// initramfs carries no /dev/console node), so output would vanish.
func setupConsole() {
	fd, err := unix.Open("/dev/console", unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return
	}
	for i := 0; i < 3; i++ {
		_ = unix.Dup2(fd, i)
	}
	if fd > 2 {
		unix.Close(fd)
	}
}

func loadJobs(file string, args []string) ([]Job, error) {
	var jobs []Job
	b, err := os.ReadFile(file)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &jobs); err != nil {
			return nil, fmt.Errorf("parse %s: %w", file, err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("read jobs: %w", err)
	}
	// The kernel hands init the words after "--" (or any word it did not
	// recognise that has no "="); only a leading "--" marks a command.
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) > 0 {
		jobs = append(jobs, Job{Name: "cmdline", Argv: args})
	}
	for i, j := range jobs {
		if len(j.Argv) == 0 {
			return nil, fmt.Errorf("job %d (%q): argv is empty", i, j.Name)
		}
		if j.Name == "" {
			jobs[i].Name = j.Argv[0]
		}
	}
	return jobs, nil
}

func runJob(j Job) int {
	fmt.Printf("=== VMTEST BEGIN %s\n", j.Name)
	start := time.Now()
	ctx := context.Background()
	if j.TimeoutSec > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(j.TimeoutSec)*time.Second)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, j.Argv[0], j.Argv[1:]...)
	cmd.Env = append(baseEnv(), j.Env...)
	cmd.Dir = j.Dir
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	// Tests read no input; a console stdin would let one block forever.
	if devnull, err := os.Open(os.DevNull); err == nil {
		defer devnull.Close()
		cmd.Stdin = devnull
	}
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stdout
	// A timed-out test binary leaves helpers behind; its own process group
	// lets one signal take them all.
	cmd.SysProcAttr = &unix.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return unix.Kill(-cmd.Process.Pid, unix.SIGKILL) }
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() >= 0 {
			code = ee.ExitCode()
		} else {
			fmt.Printf("=== VMTEST WARN job %s: %v\n", j.Name, err)
		}
		if ctx.Err() != nil {
			fmt.Printf("=== VMTEST WARN job %s: killed after timeout of %ds\n", j.Name, j.TimeoutSec)
			code = -1
		}
	}
	fmt.Printf("=== VMTEST END %s exit=%d seconds=%.2f\n", j.Name, code, time.Since(start).Seconds())
	return code
}

// baseEnv is init's environment (including key=value words from the kernel
// command line) with a PATH that finds busybox's applets.
func baseEnv() []string {
	env := []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/root"}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func uptime() string {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "unknown"
	}
	return f[0]
}

func powerOff() {
	unix.Sync()
	err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	// Returning from PID 1 panics the kernel; with panic=-1 and qemu's
	// -no-reboot that still ends the VM, only less tidily.
	fmt.Fprintf(os.Stderr, "=== VMTEST WARN power off: %v\n", err)
	os.Exit(1)
}
