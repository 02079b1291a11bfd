// SPDX-License-Identifier: Apache-2.0

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
//	=== VMTEST END <name> exit=<code> seconds=<wall time> quiet=<longest time without progress>
//	=== VMTEST DONE jobs=<n> failed=<n>
//
// and powers the machine off. A job that is killed by a signal, its
// timeout or its idle limit (no progress - no output, no CPU work - for
// idle_sec) reports exit=-1. A job that works without writing gets
//
//	=== VMTEST BUSY <name>: no output for <time>, <cpu> of CPU in the last <time>
//
// lines, so whoever watches the console sees it alive.
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
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	// IdleSec stops the job once it has made no progress for this many
	// seconds - written nothing, and spent less than a tenth of a CPU:
	// SIGQUIT first (a Go test binary prints every goroutine's stack),
	// SIGKILL to its process group quitGrace later. 0 means no limit. A
	// deadline that follows progress: a slow machine's job runs as long
	// as it keeps going.
	IdleSec int `json:"idle_sec,omitempty"`
}

// quitGrace is how long a job stopped for idleness has to print its stacks.
const quitGrace = 15 * time.Second

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

func runJob(j Job) int { return runJobOn(os.Stdout, j) }

// runJobOn runs j with its output copied to console, framed by the BEGIN
// and END markers; END also gives the longest time the job made no progress
// (quiet=), so the host sees how close a job came to its idle limit.
func runJobOn(console *os.File, j Job) int {
	fmt.Fprintf(console, "=== VMTEST BEGIN %s\n", j.Name)
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
	out, err := watchOutput(console)
	if err != nil {
		fmt.Fprintf(console, "=== VMTEST WARN job %s: %v\n", j.Name, err)
		fmt.Fprintf(console, "=== VMTEST END %s exit=-1 seconds=0.00 quiet=0.0\n", j.Name)
		return -1
	}
	cmd.Stdout = out.w
	cmd.Stderr = out.w
	// A timed-out test binary leaves helpers behind; its own process group
	// lets one signal take them all.
	cmd.SysProcAttr = &unix.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return unix.Kill(-cmd.Process.Pid, unix.SIGKILL) }
	err = cmd.Start()
	out.w.Close()
	var stalled atomic.Bool
	if err == nil {
		stop := make(chan struct{})
		defer close(stop)
		if j.IdleSec > 0 {
			go out.watchdog(j.Name, time.Duration(j.IdleSec)*time.Second, cmd.Process.Pid, stop, func(idle time.Duration) {
				stalled.Store(true)
				fmt.Fprintf(console, "=== VMTEST WARN job %s: no output and no CPU work for %v: SIGQUIT, then SIGKILL after %v\n", j.Name, idle.Round(time.Second), quitGrace)
			})
		}
		err = cmd.Wait()
		// Helpers a finished job left behind hold its output open.
		_ = unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
	}
	out.drain(5 * time.Second)
	code := 0
	if err != nil {
		code = -1
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() >= 0 {
			code = ee.ExitCode()
		} else {
			fmt.Fprintf(console, "=== VMTEST WARN job %s: %v\n", j.Name, err)
		}
		if ctx.Err() != nil {
			fmt.Fprintf(console, "=== VMTEST WARN job %s: killed after timeout of %ds\n", j.Name, j.TimeoutSec)
			code = -1
		}
		if stalled.Load() {
			fmt.Fprintf(console, "=== VMTEST WARN job %s: stopped after %ds without progress\n", j.Name, j.IdleSec)
			code = -1
		}
	}
	fmt.Fprintf(console, "=== VMTEST END %s exit=%d seconds=%.2f quiet=%.1f\n", j.Name, code, time.Since(start).Seconds(), out.longestQuiet().Seconds())
	return code
}

// output carries a job's output to the console through a pipe and keeps
// track of the job's progress: a line written, or CPU time spent (a BPF
// verifier run can keep a suite silent for minutes on a slow machine
// while it works hard; a hung suite spends none).
type output struct {
	w       *os.File
	console *os.File
	done    chan struct{}

	mu sync.Mutex
	// last is the job's latest progress, longest the longest time it went
	// without any.
	last    time.Time
	longest time.Duration
}

// busyStep is how often a silent job's CPU time is sampled (a variable
// for the tests); busyShare is the share of a CPU it must have used over a
// step to count as working.
var busyStep = 10 * time.Second

const busyShare = 0.1

func watchOutput(console *os.File) (*output, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("output pipe: %w", err)
	}
	o := &output{w: w, console: console, done: make(chan struct{}), last: time.Now()}
	go func() {
		defer close(o.done)
		defer r.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				o.mark()
				console.Write(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	return o, nil
}

// mark records progress now.
func (o *output) mark() {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	o.longest = max(o.longest, now.Sub(o.last))
	o.last = now
}

func (o *output) idle() time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	return time.Since(o.last)
}

func (o *output) longestQuiet() time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	return max(o.longest, time.Since(o.last))
}

// drain waits up to bound for the job's output to reach the console.
func (o *output) drain(bound time.Duration) {
	select {
	case <-o.done:
	case <-time.After(bound):
	}
}

// watchdog stops pid's job once it has made no progress for limit. While
// the job works without writing, a console line says so every busyStep
// from the second one on, so the host, which watches the console, sees
// the guest alive.
func (o *output) watchdog(name string, limit time.Duration, pid int, stop <-chan struct{}, stalled func(time.Duration)) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	cpu, sampled := groupCPUTime("/proc", pid), time.Now()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		if now := time.Now(); now.Sub(sampled) >= busyStep {
			c := groupCPUTime("/proc", pid)
			if float64(c-cpu) >= busyShare*float64(now.Sub(sampled)) {
				if idle := o.idle(); idle >= busyStep {
					fmt.Fprintf(o.console, "=== VMTEST BUSY %s: no output for %v, %v of CPU in the last %v\n",
						name, idle.Round(time.Second), (c - cpu).Round(time.Millisecond), now.Sub(sampled).Round(time.Second))
				}
				o.mark()
			}
			cpu, sampled = c, now
		}
		if idle := o.idle(); idle >= limit {
			stalled(idle)
			_ = unix.Kill(pid, unix.SIGQUIT)
			select {
			case <-stop:
			case <-time.After(quitGrace):
				_ = unix.Kill(-pid, unix.SIGKILL)
			}
			return
		}
	}
}

// groupCPUTime is the CPU time the processes of process group pgid have
// used (user and system, their reaped children's included), from each
// <proc>/<pid>/stat: a test binary's own work and its helpers' alike.
func groupCPUTime(proc string, pgid int) time.Duration {
	ents, err := os.ReadDir(proc)
	if err != nil {
		return 0
	}
	var sum time.Duration
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile(filepath.Join(proc, e.Name(), "stat"))
		if err != nil {
			continue
		}
		if g, cpu, ok := parseStat(string(b)); ok && g == pgid {
			sum += cpu
		}
	}
	return sum
}

// parseStat reads the process group (field 5) and utime, stime, cutime
// and cstime (fields 14-17, in clock ticks of 1/100 s) from a
// /proc/<pid>/stat line; the command name in field 2 may hold spaces and
// parentheses, so fields count from its last ')'.
func parseStat(stat string) (pgid int, cpu time.Duration, ok bool) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state): field n is f[n-3].
	if len(f) < 15 {
		return 0, 0, false
	}
	pgid, err := strconv.Atoi(f[2])
	if err != nil {
		return 0, 0, false
	}
	var ticks int64
	for _, v := range f[11:15] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		ticks += n
	}
	return pgid, time.Duration(ticks) * 10 * time.Millisecond, true
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
