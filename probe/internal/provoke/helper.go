// SPDX-License-Identifier: Apache-2.0

package provoke

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func init() {
	// runtime.main runs package init on the main thread; locking here keeps
	// the helper's main goroutine there, so "main thread" cases really call
	// exec with tid == pid and thread cases can be told apart.
	if os.Getenv(helperEnv) == "1" {
		runtime.LockOSThread()
	}
}

// MaybeHelper turns the process into a provoke helper, a successful exec
// target, or a crashing child when the environment asks for it, and never
// returns in those cases. Call it first thing in TestMain (or main) of any
// binary that uses a Lab.
func MaybeHelper() {
	switch {
	case os.Getenv(exit0Env) == "1":
		os.Exit(0)
	case os.Getenv(crashEnv) == "1":
		crash()
	case os.Getenv(raceEnv) == "1":
		execRace()
	case os.Getenv(helperEnv) == "1":
		os.Exit(helper())
	}
}

// crash dies from a signal that dumps core, so the kernel runs the
// core_pattern pipe helper.
func crash() {
	lim := unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &lim); err != nil {
		fmt.Fprintf(os.Stderr, "raise RLIMIT_CORE: %v\n", err)
	}
	// With traceback "crash" the runtime ends a fatal panic by raising
	// SIGABRT with the default action, which dumps core.
	debug.SetTraceback("crash")
	panic("provoked crash for a core_pattern pipe")
}

// helper reads one request from fd 3, makes the exec it asks for and
// reports what it saw on fd 4; with SucceedAfter it then execs the
// successful image. It stays alive until the parent closes fd 3.
func helper() int {
	ctl := os.NewFile(3, "provoke-control")
	enc := json.NewEncoder(os.NewFile(4, "provoke-report"))
	fatal := func(err error) int {
		enc.Encode(report{Err: err.Error()})
		return 2
	}

	var req request
	if err := json.NewDecoder(ctl).Decode(&req); err != nil {
		return fatal(fmt.Errorf("decode request: %v", err))
	}
	c, err := prepare(req)
	if err != nil {
		return fatal(err)
	}
	attempt := func() int {
		rep, err := c.attempt(enc)
		if err != nil {
			return fatal(err)
		}
		return rep
	}
	var rc int
	if req.Thread {
		rc = onOtherThread(attempt)
	} else {
		rc = attempt()
	}
	// What the exec was handed stays referenced until it has run.
	runtime.KeepAlive(c)
	if rc != 0 {
		return rc
	}
	if req.ExitNow {
		return 0
	}
	// Stay alive until the parent closes the control pipe: probes that
	// resolve fields through /proc/<pid> need the caller to exist.
	io.Copy(io.Discard, ctl)
	return 0
}

// call is the exec a helper makes, prepared before it runs: the files it
// must see, the C strings it passes and the raw arguments it hands the
// kernel, some of them bad on purpose.
type call struct {
	req    request
	keep   []*os.File // open files the exec must see
	dirfd  int
	fdFile *File // the memfd execveat runs, when it is one

	path             *byte
	argv, envv       []*byte
	raw              []uintptr // argv as addresses, when one is bad
	pathArg, argvArg uintptr
	pathBuf          []byte       // RewritePath: the path as this process rewrites it
	rewritten        <-chan error // RewritePath: the rewrite's outcome

	succPath          *byte
	succArgv, succEnv []*byte
}

// prepare does everything req asks for before the exec.
func prepare(req request) (*call, error) {
	c := &call{req: req, dirfd: unix.AT_FDCWD}
	for _, step := range []func() error{c.openFiles, c.dropPrivileges, c.restrict, c.cStrings, c.badArguments} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// openFiles opens what the exec must find open: a file held for writing,
// and execveat's directory or memfd.
func (c *call) openFiles() error {
	req := c.req
	if req.OpenForWrite != "" {
		f, err := os.OpenFile(req.OpenForWrite, os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("open %s for writing: %v", req.OpenForWrite, err)
		}
		c.keep = append(c.keep, f)
	}
	switch {
	case req.DirfdOpen != "":
		fd, err := unix.Open(req.DirfdOpen, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			return fmt.Errorf("open dirfd %s: %v", req.DirfdOpen, err)
		}
		c.dirfd = fd
	case req.Memfd != nil:
		fd, file, err := openMemfd(req.Memfd, req.MemfdMode)
		if err != nil {
			return err
		}
		c.dirfd, c.fdFile = fd, file
	}
	return nil
}

// openMemfd makes a memfd holding content, with mode when it is not 0.
func openMemfd(content []byte, mode uint32) (int, *File, error) {
	// Not close-on-exec: execveat of a close-on-exec fd takes a
	// different path in the kernel for scripts.
	fd, err := unix.MemfdCreate("execfaild-provoke", 0)
	if err != nil {
		return 0, nil, fmt.Errorf("memfd_create: %v", err)
	}
	if _, err := unix.Write(fd, content); err != nil {
		return 0, nil, fmt.Errorf("write memfd: %v", err)
	}
	if mode != 0 {
		if err := unix.Fchmod(fd, mode); err != nil {
			return 0, nil, fmt.Errorf("fchmod memfd: %v", err)
		}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, nil, fmt.Errorf("fstat memfd: %v", err)
	}
	link, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return 0, nil, fmt.Errorf("readlink memfd: %v", err)
	}
	return fd, fileFromStat(link, &st), nil
}

// restrict forbids this thread every exec, by seccomp or Landlock, when
// the request asks for it.
func (c *call) restrict() error {
	if c.req.Seccomp {
		if err := refuseExecve(); err != nil {
			return fmt.Errorf("seccomp: %v", err)
		}
	}
	if c.req.Landlock {
		if err := forbidExec(); err != nil {
			return fmt.Errorf("landlock: %v", err)
		}
	}
	return nil
}

// dropPrivileges becomes the user and group DropTo names, without
// supplementary groups.
func (c *call) dropPrivileges() error {
	if c.req.DropTo == nil {
		return nil
	}
	id := int(*c.req.DropTo)
	// Go applies these to every thread of the process.
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("setgroups: %v", err)
	}
	if err := syscall.Setgid(id); err != nil {
		return fmt.Errorf("setgid %d: %v", id, err)
	}
	if err := syscall.Setuid(id); err != nil {
		return fmt.Errorf("setuid %d: %v", id, err)
	}
	return nil
}

// cStrings builds the C strings of the failing exec and of the successful
// one that may follow.
func (c *call) cStrings() error {
	req := c.req
	var err error
	if c.path, err = unix.BytePtrFromString(req.Path); err != nil {
		return fmt.Errorf("path: %v", err)
	}
	if c.argv, err = cStrings(req.Argv); err != nil {
		return fmt.Errorf("argv: %v", err)
	}
	if c.envv, err = cStrings(req.Env); err != nil {
		return fmt.Errorf("env: %v", err)
	}
	c.pathArg, c.argvArg = uintptr(unsafe.Pointer(c.path)), uintptr(unsafe.Pointer(&c.argv[0]))
	if !req.SucceedAfter {
		return nil
	}
	if c.succPath, err = unix.BytePtrFromString(req.SucceedPath); err != nil {
		return fmt.Errorf("success path: %v", err)
	}
	if c.succArgv, err = cStrings([]string{req.SucceedPath}); err != nil {
		return fmt.Errorf("success argv: %v", err)
	}
	if c.succEnv, err = cStrings(req.SucceedEnv); err != nil {
		return fmt.Errorf("success env: %v", err)
	}
	return nil
}

// badArguments replaces the path or an argv entry with an address the
// kernel must fail to read, or with memory rewritten during the exec.
func (c *call) badArguments() error {
	req := c.req
	// Pointers the kernel must fail to read: address 1 is never mapped.
	c.raw = make([]uintptr, len(c.argv))
	if req.BadPath {
		c.pathArg = 1
	}
	if req.BadArgv > 0 {
		for i, p := range c.argv {
			c.raw[i] = uintptr(unsafe.Pointer(p))
		}
		c.raw[req.BadArgv] = 1
		c.argvArg = uintptr(unsafe.Pointer(&c.raw[0]))
	}
	if req.RewritePath != "" {
		return c.rewritePath()
	}
	return nil
}

// rewritePath puts the path in a buffer this process rewrites while the
// exec is stalled copying argv[1] (userfaultfd), so the caller's memory no
// longer says what the kernel used once the syscall returns.
func (c *call) rewritePath() error {
	req := c.req
	c.pathBuf = make([]byte, max(len(req.Path), len(req.RewritePath))+1)
	copy(c.pathBuf, req.Path)
	c.pathArg = uintptr(unsafe.Pointer(&c.pathBuf[0]))
	if len(req.Argv) < 2 {
		return fmt.Errorf("rewrite_path needs argv[1] to stall on")
	}
	stall, err := newStalledString(req.Argv[1])
	if err != nil {
		return fmt.Errorf("stall argv[1]: %v", err)
	}
	for i, p := range c.argv {
		c.raw[i] = uintptr(unsafe.Pointer(p))
	}
	c.raw[1] = stall.addr()
	c.argvArg = uintptr(unsafe.Pointer(&c.raw[0]))
	c.rewritten = stall.serve(func() {
		clear(c.pathBuf)
		copy(c.pathBuf, req.RewritePath)
	})
	return nil
}

// attempt makes the failing exec on the calling thread and reports it,
// then, with SucceedAfter, announces and makes the successful one. It
// returns the helper's exit code, or an error to report.
func (c *call) attempt(enc *json.Encoder) (int, error) {
	req := c.req
	rep := snapshot()
	rep.Dirfd = c.dirfd
	rep.FdFile = c.fdFile
	if req.CloseStdin {
		// Closed here, after the runtime's start-up check that reopens
		// missing standard descriptors on /dev/null, and after the
		// snapshot, which opens files. Nothing opens a file between
		// this and the exec, so fd 0 really is closed.
		if err := unix.Close(0); err != nil {
			return 0, fmt.Errorf("close stdin: %v", err)
		}
		rep.Stdin = Stdin{Closed: true, Type: "closed"}
	}
	errno, err := c.exec()
	if err != nil {
		return 0, err
	}
	rep.Errno = int(errno)
	if c.rewritten != nil {
		if err := <-c.rewritten; err != nil {
			return 0, fmt.Errorf("rewrite path during exec: %v", err)
		}
	}
	if err := enc.Encode(rep); err != nil {
		return 2, nil
	}
	if !req.SucceedAfter {
		return 0, nil
	}
	// Announce before the exec: a successful exec never returns, and
	// the new image inherits fd 4, whose close at its exit ends the
	// conversation.
	if err := enc.Encode(report{Succeeding: true, PID: rep.PID, TID: rep.TID}); err != nil {
		return 2, nil
	}
	_, _, errno = unix.Syscall(unix.SYS_EXECVE,
		uintptr(unsafe.Pointer(c.succPath)),
		uintptr(unsafe.Pointer(&c.succArgv[0])),
		uintptr(unsafe.Pointer(&c.succEnv[0])))
	return 0, fmt.Errorf("success exec of %s failed: %v", req.SucceedPath, errno)
}

// exec makes the failing exec req asks for and returns its errno.
func (c *call) exec() (syscall.Errno, error) {
	req := c.req
	var errno syscall.Errno
	switch {
	case req.Compat:
		var err error
		errno, err = compatExec(req.Syscall == "execveat", c.dirfd, req.Path, req.Argv, req.Env, req.Flags)
		if err != nil {
			return 0, fmt.Errorf("compat %s: %v", req.Syscall, err)
		}
	case req.Syscall == "none":
		// Only the successful exec below.
	case req.Syscall == "execve" && req.Repeat > 0:
		errno = storm(req, c.argvArg, uintptr(unsafe.Pointer(&c.envv[0])))
	case req.Syscall == "execve":
		_, _, errno = unix.Syscall(unix.SYS_EXECVE, c.pathArg, c.argvArg, uintptr(unsafe.Pointer(&c.envv[0])))
	case req.Syscall == "execveat":
		_, _, errno = unix.Syscall6(unix.SYS_EXECVEAT,
			uintptr(c.dirfd),
			uintptr(unsafe.Pointer(c.path)),
			uintptr(unsafe.Pointer(&c.argv[0])),
			uintptr(unsafe.Pointer(&c.envv[0])),
			uintptr(req.Flags), 0)
	default:
		return 0, fmt.Errorf("unknown syscall %q", req.Syscall)
	}
	return errno, nil
}

// onOtherThread runs f on an OS thread other than the main one. The main
// goroutine is locked to the main thread (see init), so any goroutine that
// locks its own thread gets a different one; the check is belt and braces.
func onOtherThread(f func() int) int {
	done := make(chan int)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// Keep this thread occupied (never unlock) and try again.
			done <- onOtherThread(f)
			return
		}
		done <- f()
	}()
	return <-done
}

// snapshot records the caller's identity as the kernel will see it.
func snapshot() report {
	rep := report{
		PID:      unix.Getpid(),
		TID:      unix.Gettid(),
		PPID:     unix.Getppid(),
		UID:      unix.Getuid(),
		GID:      unix.Getgid(),
		EUID:     unix.Geteuid(),
		LoginUID: 4294967295,
	}
	if b, err := os.ReadFile("/proc/thread-self/comm"); err == nil {
		rep.Comm = strings.TrimSuffix(string(b), "\n")
	}
	if b, err := os.ReadFile("/proc/self/loginuid"); err == nil {
		if v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32); err == nil {
			rep.LoginUID = uint32(v)
		}
	}
	rep.Cwd, _ = os.Getwd()
	var st unix.Stat_t
	if err := unix.Fstat(0, &st); err != nil {
		rep.Stdin = Stdin{Closed: true, Type: "closed"}
	} else {
		rep.Stdin = Stdin{Type: TypeName(st.Mode), Mode: st.Mode}
		rep.Stdin.Link, _ = os.Readlink("/proc/self/fd/0")
	}
	return rep
}

// cStrings builds a NULL-terminated array of C strings for execve.
func cStrings(ss []string) ([]*byte, error) {
	out := make([]*byte, 0, len(ss)+1)
	for _, s := range ss {
		p, err := unix.BytePtrFromString(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return append(out, nil), nil
}

// storm fails execve Repeat times over each of Paths in turn (or Path),
// as fast as one thread can, and returns the first errno. About once a
// second it tells the parent how many execs it has made (a progress
// report on fd 4), so a slow machine's storm is waited for as long as it
// keeps going and a stuck one is stopped soon.
func storm(req request, argv, envp uintptr) syscall.Errno {
	paths := req.Paths
	if len(paths) == 0 {
		paths = []string{req.Path}
	}
	ptrs := make([]*byte, len(paths))
	for i, p := range paths {
		ptrs[i], _ = unix.BytePtrFromString(p)
	}
	var first syscall.Errno
	done, next := 0, time.Now().Add(progressEvery)
	for range req.Repeat {
		for _, p := range ptrs {
			_, _, errno := unix.Syscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(p)), argv, envp)
			if first == 0 {
				first = errno
			}
			if req.Pace > 0 {
				time.Sleep(req.Pace)
			}
			done++
			// The clock is read every 64 execs: a vDSO call, not a
			// syscall, and rare enough not to pace the storm.
			if done%64 == 0 && time.Now().After(next) {
				writeProgress(done)
				next = time.Now().Add(progressEvery)
			}
		}
	}
	runtime.KeepAlive(ptrs)
	return first
}

// progressEvery is how often a storm reports how far it got.
const progressEvery = time.Second

// writeProgress sends a progress report on fd 4 with a plain write: the
// storm runs on a locked thread, between raw execve calls, and a failed
// write only costs the parent one progress mark.
func writeProgress(done int) {
	b, _ := json.Marshal(report{Progress: done})
	unix.Write(4, append(b, '\n'))
}

// execRace has two threads exec this binary (which then exits 0) at the
// same moment. One wins; the other, blocked on the exec lock the winner
// holds, is killed by the winner's de_thread, and its execve returns
// -ERESTARTNOINTR to the syscall exit on its way out: a restart code the
// caller never sees, which must not be reported as a failure.
func execRace() {
	exe, err := os.Executable()
	if err != nil {
		os.Exit(2)
	}
	path, _ := unix.BytePtrFromString(exe)
	argv, _ := cStrings([]string{exe})
	env, _ := cStrings([]string{exit0Env + "=1"})
	var ready atomic.Int32
	start := make(chan struct{})
	for range 2 {
		go func() {
			runtime.LockOSThread()
			ready.Add(1)
			<-start
			unix.Syscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(path)),
				uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&env[0])))
		}()
	}
	for ready.Load() < 2 {
		runtime.Gosched()
	}
	close(start)
	select {}
}
