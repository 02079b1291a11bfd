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

func helper() int {
	ctl := os.NewFile(3, "provoke-control")
	out := os.NewFile(4, "provoke-report")
	enc := json.NewEncoder(out)
	fatal := func(format string, args ...any) int {
		enc.Encode(report{Err: fmt.Sprintf(format, args...)})
		return 2
	}

	var req request
	if err := json.NewDecoder(ctl).Decode(&req); err != nil {
		return fatal("decode request: %v", err)
	}

	// Resources the exec must see stay referenced until the helper exits.
	var keep []*os.File
	defer runtime.KeepAlive(keep)
	if req.OpenForWrite != "" {
		f, err := os.OpenFile(req.OpenForWrite, os.O_WRONLY, 0)
		if err != nil {
			return fatal("open %s for writing: %v", req.OpenForWrite, err)
		}
		keep = append(keep, f)
	}

	dirfd := unix.AT_FDCWD
	var fdFile *File
	switch {
	case req.DirfdOpen != "":
		fd, err := unix.Open(req.DirfdOpen, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			return fatal("open dirfd %s: %v", req.DirfdOpen, err)
		}
		dirfd = fd
	case req.Memfd != nil:
		// Not close-on-exec: execveat of a close-on-exec fd takes a
		// different path in the kernel for scripts.
		fd, err := unix.MemfdCreate("execfaild-provoke", 0)
		if err != nil {
			return fatal("memfd_create: %v", err)
		}
		if _, err := unix.Write(fd, req.Memfd); err != nil {
			return fatal("write memfd: %v", err)
		}
		if req.MemfdMode != 0 {
			if err := unix.Fchmod(fd, req.MemfdMode); err != nil {
				return fatal("fchmod memfd: %v", err)
			}
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return fatal("fstat memfd: %v", err)
		}
		link, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
		if err != nil {
			return fatal("readlink memfd: %v", err)
		}
		fdFile = fileFromStat(link, &st)
		dirfd = fd
	}

	if req.DropTo != nil {
		id := int(*req.DropTo)
		// Go applies these to every thread of the process.
		if err := syscall.Setgroups(nil); err != nil {
			return fatal("setgroups: %v", err)
		}
		if err := syscall.Setgid(id); err != nil {
			return fatal("setgid %d: %v", id, err)
		}
		if err := syscall.Setuid(id); err != nil {
			return fatal("setuid %d: %v", id, err)
		}
	}

	path, err := unix.BytePtrFromString(req.Path)
	if err != nil {
		return fatal("path: %v", err)
	}
	argv, err := cStrings(req.Argv)
	if err != nil {
		return fatal("argv: %v", err)
	}
	envv, err := cStrings(req.Env)
	if err != nil {
		return fatal("env: %v", err)
	}
	var succPath *byte
	var succArgv, succEnv []*byte
	if req.SucceedAfter {
		if succPath, err = unix.BytePtrFromString(req.SucceedPath); err != nil {
			return fatal("success path: %v", err)
		}
		if succArgv, err = cStrings([]string{req.SucceedPath}); err != nil {
			return fatal("success argv: %v", err)
		}
		if succEnv, err = cStrings(req.SucceedEnv); err != nil {
			return fatal("success env: %v", err)
		}
	}

	// Pointers the kernel must fail to read: address 1 is never mapped.
	pathArg, argvArg := uintptr(unsafe.Pointer(path)), uintptr(unsafe.Pointer(&argv[0]))
	raw := make([]uintptr, len(argv))
	if req.BadPath {
		pathArg = 1
	}
	if req.BadArgv > 0 {
		for i, p := range argv {
			raw[i] = uintptr(unsafe.Pointer(p))
		}
		raw[req.BadArgv] = 1
		argvArg = uintptr(unsafe.Pointer(&raw[0]))
	}
	// RewritePath: the path lives in a buffer this process rewrites while
	// the exec is stalled copying argv[1] (userfaultfd), so the caller's
	// memory no longer says what the kernel used once the syscall returns.
	var pathBuf []byte
	var rewritten <-chan error
	if req.RewritePath != "" {
		pathBuf = make([]byte, max(len(req.Path), len(req.RewritePath))+1)
		copy(pathBuf, req.Path)
		pathArg = uintptr(unsafe.Pointer(&pathBuf[0]))
		if len(req.Argv) < 2 {
			return fatal("rewrite_path needs argv[1] to stall on")
		}
		stall, err := newStalledString(req.Argv[1])
		if err != nil {
			return fatal("stall argv[1]: %v", err)
		}
		for i, p := range argv {
			raw[i] = uintptr(unsafe.Pointer(p))
		}
		raw[1] = stall.addr()
		argvArg = uintptr(unsafe.Pointer(&raw[0]))
		rewritten = stall.serve(func() {
			clear(pathBuf)
			copy(pathBuf, req.RewritePath)
		})
	}

	attempt := func() int {
		rep := snapshot()
		rep.Dirfd = dirfd
		rep.FdFile = fdFile
		if req.CloseStdin {
			// Closed here, after the runtime's start-up check that reopens
			// missing standard descriptors on /dev/null, and after the
			// snapshot, which opens files. Nothing opens a file between
			// this and the exec, so fd 0 really is closed.
			if err := unix.Close(0); err != nil {
				return fatal("close stdin: %v", err)
			}
			rep.Stdin = Stdin{Closed: true, Type: "closed"}
		}
		var errno syscall.Errno
		switch {
		case req.Compat:
			var err error
			errno, err = compatExec(req.Syscall == "execveat", dirfd, req.Path, req.Argv, req.Env, req.Flags)
			if err != nil {
				return fatal("compat %s: %v", req.Syscall, err)
			}
		case req.Syscall == "none":
			// Only the successful exec below.
		case req.Syscall == "execve" && req.Repeat > 0:
			errno = storm(req, argvArg, uintptr(unsafe.Pointer(&envv[0])))
		case req.Syscall == "execve":
			_, _, errno = unix.Syscall(unix.SYS_EXECVE, pathArg, argvArg, uintptr(unsafe.Pointer(&envv[0])))
		case req.Syscall == "execveat":
			_, _, errno = unix.Syscall6(unix.SYS_EXECVEAT,
				uintptr(dirfd),
				uintptr(unsafe.Pointer(path)),
				uintptr(unsafe.Pointer(&argv[0])),
				uintptr(unsafe.Pointer(&envv[0])),
				uintptr(req.Flags), 0)
		default:
			return fatal("unknown syscall %q", req.Syscall)
		}
		rep.Errno = int(errno)
		if rewritten != nil {
			if err := <-rewritten; err != nil {
				return fatal("rewrite path during exec: %v", err)
			}
		}
		if err := enc.Encode(rep); err != nil {
			return 2
		}
		if !req.SucceedAfter {
			return 0
		}
		// Announce before the exec: a successful exec never returns, and
		// the new image inherits fd 4, whose close at its exit ends the
		// conversation.
		if err := enc.Encode(report{Succeeding: true, PID: rep.PID, TID: rep.TID}); err != nil {
			return 2
		}
		_, _, errno = unix.Syscall(unix.SYS_EXECVE,
			uintptr(unsafe.Pointer(succPath)),
			uintptr(unsafe.Pointer(&succArgv[0])),
			uintptr(unsafe.Pointer(&succEnv[0])))
		return fatal("success exec of %s failed: %v", req.SucceedPath, errno)
	}

	var rc int
	if req.Thread {
		rc = onOtherThread(attempt)
	} else {
		rc = attempt()
	}
	runtime.KeepAlive(argv)
	runtime.KeepAlive(raw)
	runtime.KeepAlive(pathBuf)
	runtime.KeepAlive(envv)
	runtime.KeepAlive(succArgv)
	runtime.KeepAlive(succEnv)
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
// as fast as one thread can, and returns the first errno.
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
	for range req.Repeat {
		for _, p := range ptrs {
			_, _, errno := unix.Syscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(p)), argv, envp)
			if first == 0 {
				first = errno
			}
		}
	}
	runtime.KeepAlive(ptrs)
	return first
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
