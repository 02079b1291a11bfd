// SPDX-License-Identifier: Apache-2.0

package provoke

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Lab is a scratch directory with the files the cases exec, plus the
// binary that re-executes itself as the helper. Only its own files and
// mounts are touched; Close undoes the mounts.
type Lab struct {
	Dir string // absolute, symlinks resolved
	Exe string // the running binary, re-executed as helper

	mounts []string
}

// garbage is neither ELF nor #! nor anything binfmt_misc is likely to
// claim, so exec answers ENOEXEC. Its first four bytes are printable text:
// for anything else a kernel with module support asks modprobe for a
// "binfmt-XXXX" handler before giving up, a side effect only the modprobe
// case wants (binaryGarbage).
var garbage = []byte("execfaild: text, no known binary format\n")

// binaryGarbage starts with unprintable bytes, which makes exec request
// module binfmt-6502 (the little-endian u16 at offset 2, 0x02 0x65).
var binaryGarbage = []byte("\x00\x01\x02execfaild binary garbage\n")

// BinaryGarbageModule is the module exec requests for binaryGarbage.
const BinaryGarbageModule = "binfmt-6502"

// NewLab prepares dir (which must exist and be empty enough for the case
// files) for provoking failures.
func NewLab(dir string) (*Lab, error) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("resolve lab dir %s: %w", dir, err)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable for re-exec: %w", err)
	}
	l := &Lab{Dir: real, Exe: exe}
	files := []struct {
		name string
		mode os.FileMode
		data []byte
	}{
		{"not-executable", 0o644, []byte("#!/bin/sh\nexit 0\n")},
		{"garbage", 0o755, garbage},
		{"garbage-at", 0o755, garbage},
		{"garbage-big", 0o755, garbage},
		{"garbage-busy", 0o755, garbage},
		{"binary-garbage", 0o755, binaryGarbage},
		{"no-shebang.sh", 0o755, []byte("echo this script has no interpreter line\n")},
		{"missing-interp.sh", 0o755, []byte("#!/nonexistent/sh -e\necho unreachable\n")},
		{"crlf.sh", 0o755, []byte("#!/bin/bash\r\necho unreachable\r\n")},
		{"plain-file", 0o644, []byte("a regular file, parent of nothing\n")},
		{"stdin-file", 0o644, []byte("read by nobody\n")},
	}
	for _, f := range files {
		p := filepath.Join(real, f.name)
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			return nil, fmt.Errorf("write lab file: %w", err)
		}
		// WriteFile's mode is filtered by the umask.
		if err := os.Chmod(p, f.mode); err != nil {
			return nil, fmt.Errorf("chmod lab file: %w", err)
		}
	}
	if err := os.Symlink("loop-b", filepath.Join(real, "loop-a")); err != nil {
		return nil, fmt.Errorf("symlink loop: %w", err)
	}
	if err := os.Symlink("loop-a", filepath.Join(real, "loop-b")); err != nil {
		return nil, fmt.Errorf("symlink loop: %w", err)
	}
	return l, nil
}

// Close unmounts what the lab mounted.
func (l *Lab) Close() error {
	var errs []error
	for i := len(l.mounts) - 1; i >= 0; i-- {
		if err := unix.Unmount(l.mounts[i], unix.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", l.mounts[i], err))
		}
	}
	l.mounts = nil
	return errors.Join(errs...)
}

func (l *Lab) path(name string) string { return filepath.Join(l.Dir, name) }

// Case is one way to make exec fail.
type Case struct {
	Name string
	// Root is set when the case needs privileges (mounting).
	Root bool
	// Compat cases use the 32-bit syscall ABI: amd64 only (CompatSupported).
	Compat bool
	// BeforeSyscall: the exec is refused before the syscall function runs
	// (seccomp), so a verdict taken at that function's return never sees it:
	// the probe needs its seccomp hook for it.
	BeforeSyscall bool
	Run           func(*Lab) (*Outcome, error)
}

// Env is the environment every case passes to exec: a kept variable, a
// secret one, and one with an empty value, so redaction can be checked.
var Env = []string{
	"PATH=/usr/local/bin:/usr/bin:/bin",
	"EXECFAILD_PROVOKE_SECRET=hunter2",
	"LANG=C.UTF-8",
	"EMPTY=",
}

// Limits are the capture bounds of the probe under test (probe.Config's
// MaxArgs, MaxEnv, MaxArgLen). The truncation case exceeds each of them and
// the exact_limits case meets each exactly, so both edges are checked.
type Limits struct {
	MaxArgs, MaxEnv, MaxArgLen int
}

// Cases lists every failure the suite provokes, in a stable order.
func Cases(lim Limits) []Case {
	cases := []Case{
		{Name: "enoent", Run: func(l *Lab) (*Outcome, error) {
			p := l.path("does-not-exist")
			o, err := l.execve("enoent", p, unix.ENOENT, ReachNone, "", nil)
			return notFound(o, err, p, "nearest existing directory is "+l.Dir)
		}},
		{Name: "enoent_relative", Run: func(l *Lab) (*Outcome, error) {
			o, err := l.execve("enoent_relative", "./does-not-exist", unix.ENOENT, ReachNone, "", nil)
			return notFound(o, err, l.path("does-not-exist"))
		}},
		{Name: "eacces_not_executable", Run: func(l *Lab) (*Outcome, error) {
			o, err := l.execve("eacces_not_executable", l.path("not-executable"), unix.EACCES, ReachRefused, "", nil)
			return expect(o, err, "not-executable", ProofUserspace, l.path("not-executable"), "mode 0644")
		}},
		{Name: "eacces_noexec_mount", Root: true, Run: func(l *Lab) (*Outcome, error) {
			dir, err := l.noexecMount()
			if err != nil {
				return nil, err
			}
			p := filepath.Join(dir, "prog")
			if err := os.WriteFile(p, garbage, 0o755); err != nil {
				return nil, fmt.Errorf("eacces_noexec_mount: %w", err)
			}
			if err := os.Chmod(p, 0o755); err != nil {
				return nil, fmt.Errorf("eacces_noexec_mount: %w", err)
			}
			o, err := l.execve("eacces_noexec_mount", p, unix.EACCES, ReachRefused, "", nil)
			return expect(o, err, "noexec-mount", ProofUserspace, p, "on "+dir+", which is mounted noexec")
		}},
		{Name: "enoexec_garbage", Run: func(l *Lab) (*Outcome, error) {
			o, err := l.execve("enoexec_garbage", l.path("garbage"), unix.ENOEXEC, ReachOpened, "", nil)
			return expect(o, err, "not-a-program", ProofKernel, l.path("garbage"), "execfaild: text")
		}},
		{Name: "enoexec_no_shebang_relative", Run: func(l *Lab) (*Outcome, error) {
			// Relative on purpose: binary.path must still come out absolute.
			o, err := l.execve("enoexec_no_shebang_relative", "./no-shebang.sh", unix.ENOEXEC, ReachOpened, "", nil)
			return expect(o, err, "not-a-program", ProofKernel, l.path("no-shebang.sh"), "#!")
		}},
		{Name: "missing_interpreter", Run: func(l *Lab) (*Outcome, error) {
			o, err := l.execve("missing_interpreter", l.path("missing-interp.sh"), unix.ENOENT, ReachOpened, "/nonexistent/sh", nil)
			return expect(o, err, "interpreter-missing", ProofKernel, l.path("missing-interp.sh"), "/nonexistent/sh")
		}},
		{Name: "crlf_interpreter", Run: func(l *Lab) (*Outcome, error) {
			o, err := l.execve("crlf_interpreter", l.path("crlf.sh"), unix.ENOENT, ReachOpened, "/bin/bash\r", nil)
			return expect(o, err, "interpreter-crlf", ProofKernel, l.path("crlf.sh"), `"/bin/bash\r"`)
		}},
		{Name: "etxtbsy", Run: func(l *Lab) (*Outcome, error) {
			p := l.path("garbage-busy")
			o, err := l.execve("etxtbsy", p, unix.ETXTBSY, ReachRefused, "", func(r *request) { r.OpenForWrite = p })
			if err != nil {
				return nil, err
			}
			// The helper itself holds it open for writing.
			return expect(o, err, "text-busy", ProofErrno, p, fmt.Sprintf("pid %d,", o.Caller.PID))
		}},
		{Name: "e2big", Run: func(l *Lab) (*Outcome, error) {
			// One string longer than MAX_ARG_STRLEN (32 pages) is refused
			// whatever the stack limit. Garbage content makes a kernel that
			// let it through answer ENOEXEC instead of running anything.
			big := strings.Repeat("x", 32*4096+1)
			o, err := l.execve("e2big", l.path("garbage-big"), unix.E2BIG, ReachRefused, "", func(r *request) {
				r.Argv = append(r.Argv, big)
			})
			if err != nil {
				return nil, err
			}
			// Counted as exec counts it, with its NUL.
			o.CauseMeasured = []string{fmt.Sprintf("has %d bytes", len(big)+1)}
			return expect(o, err, "argument-list-too-long", ProofErrno, l.path("garbage-big"), "131072")
		}},
		{Name: "eloop", Run: func(l *Lab) (*Outcome, error) {
			o, err := l.execve("eloop", l.path("loop-a"), unix.ELOOP, ReachNone, "", nil)
			return expect(o, err, "symlink-loop", ProofKernel, l.path("loop-a"))
		}},
		{Name: "enotdir", Run: func(l *Lab) (*Outcome, error) {
			o, err := l.execve("enotdir", l.path("plain-file")+"/x", unix.ENOTDIR, ReachNone, "", nil)
			return expect(o, err, "not-a-directory", ProofErrno, l.path("plain-file")+" is not a directory")
		}},
		{Name: "execveat_dirfd_relative", Run: func(l *Lab) (*Outcome, error) {
			bin, err := StatFile(l.path("garbage-at"))
			if err != nil {
				return nil, err
			}
			req := l.baseRequest("garbage-at")
			req.Syscall = "execveat"
			req.DirfdOpen = l.Dir
			o, err := l.spawn("execveat_dirfd_relative", req, nil)
			if err != nil {
				return nil, err
			}
			o.Errno, o.Reach, o.Binary = unix.ENOEXEC, ReachOpened, bin
			return expect(o, nil, "not-a-program", ProofKernel, l.path("garbage-at"))
		}},
		{Name: "execveat_empty_path_memfd", Run: func(l *Lab) (*Outcome, error) {
			req := l.baseRequest("")
			req.Syscall = "execveat"
			req.Flags = unix.AT_EMPTY_PATH
			req.Memfd = garbage
			o, err := l.spawn("execveat_empty_path_memfd", req, nil)
			if err != nil {
				return nil, err
			}
			// The helper stat'ed the memfd itself (o.Binary).
			o.Errno, o.Reach = unix.ENOEXEC, ReachOpened
			return expect(o, nil, "not-a-program", ProofKernel, "/memfd:execfaild-provoke")
		}},
		{Name: "compat_execve_enoent", Compat: true, Run: func(l *Lab) (*Outcome, error) {
			// int $0x80 from a 64-bit program: invisible to the syscalls/
			// sys_exit_* tracepoints, which skip 32-bit syscalls.
			return notFound(l.execve("compat_execve_enoent", l.path("does-not-exist"), unix.ENOENT, ReachNone, "", func(r *request) { r.Compat = true }))
		}},
		{Name: "compat_execveat_enoexec", Compat: true, Run: func(l *Lab) (*Outcome, error) {
			bin, err := StatFile(l.path("garbage-at"))
			if err != nil {
				return nil, err
			}
			req := l.baseRequest("garbage-at")
			req.Syscall, req.Compat, req.DirfdOpen = "execveat", true, l.Dir
			o, err := l.spawn("compat_execveat_enoexec", req, nil)
			if err != nil {
				return nil, err
			}
			o.Errno, o.Reach, o.Binary = unix.ENOEXEC, ReachOpened, bin
			return expect(o, nil, "not-a-program", ProofKernel, l.path("garbage-at"))
		}},
		{Name: "efault_argv", Run: func(l *Lab) (*Outcome, error) {
			// An existing file, so the kernel gets as far as copying argv.
			o, err := l.execve("efault_argv", l.path("garbage"), unix.EFAULT, ReachRefused, "", func(r *request) { r.BadArgv = 2 })
			return expect(o, err, "unknown", ProofErrno, "bad address (EFAULT)")
		}},
		{Name: "efault_path", Run: func(l *Lab) (*Outcome, error) {
			o, err := l.execve("efault_path", "unreadable", unix.EFAULT, ReachNone, "", func(r *request) { r.BadPath = true })
			return expect(o, err, "unknown", ProofErrno, "bad address (EFAULT)")
		}},
		{Name: "enoent_then_success_thread", Run: func(l *Lab) (*Outcome, error) {
			// An execvp search from a worker thread: the thread takes the
			// leader's pid when its exec succeeds, and the success must
			// still end the search its failures started.
			return notFound(l.execve("enoent_then_success_thread", l.path("does-not-exist"), unix.ENOENT, ReachNone, "", func(r *request) {
				r.Thread = true
				r.SucceedAfter = true
				r.SucceedPath = l.Exe
				r.SucceedEnv = []string{exit0Env + "=1"}
			}))
		}},
		{Name: "non_main_thread", Run: func(l *Lab) (*Outcome, error) {
			return notFound(l.execve("non_main_thread", l.path("does-not-exist"), unix.ENOENT, ReachNone, "", func(r *request) { r.Thread = true }))
		}},
		{Name: "unprivileged_caller", Run: func(l *Lab) (*Outcome, error) {
			// Outside the 0700 lab dir, so the lookup fails with ENOENT and
			// not with EACCES on the directory.
			id := uint32(65534)
			return notFound(l.execve("unprivileged_caller", "/nonexistent/execfaild-provoke", unix.ENOENT, ReachNone, "", func(r *request) { r.DropTo = &id }))
		}, Root: true},
		{Name: "stdin_tty", Run: func(l *Lab) (*Outcome, error) {
			master, slave, err := l.openPTY()
			if err != nil {
				return nil, fmt.Errorf("stdin_tty: %w", err)
			}
			defer master.Close()
			defer slave.Close()
			return l.stdinCase("stdin_tty", slave, nil)
		}},
		{Name: "stdin_pipe", Run: func(l *Lab) (*Outcome, error) {
			r, w, err := os.Pipe()
			if err != nil {
				return nil, fmt.Errorf("stdin_pipe: %w", err)
			}
			defer r.Close()
			defer w.Close()
			return l.stdinCase("stdin_pipe", r, nil)
		}},
		{Name: "stdin_file", Run: func(l *Lab) (*Outcome, error) {
			f, err := os.Open(l.path("stdin-file"))
			if err != nil {
				return nil, fmt.Errorf("stdin_file: %w", err)
			}
			defer f.Close()
			return l.stdinCase("stdin_file", f, nil)
		}},
		{Name: "stdin_socket", Run: func(l *Lab) (*Outcome, error) {
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return nil, fmt.Errorf("stdin_socket: socketpair: %w", err)
			}
			a, b := os.NewFile(uintptr(fds[0]), "sock-a"), os.NewFile(uintptr(fds[1]), "sock-b")
			defer a.Close()
			defer b.Close()
			return l.stdinCase("stdin_socket", a, nil)
		}},
		{Name: "stdin_closed", Run: func(l *Lab) (*Outcome, error) {
			return l.stdinCase("stdin_closed", nil, func(r *request) { r.CloseStdin = true })
		}},
		{Name: "truncation", Run: func(l *Lab) (*Outcome, error) {
			return notFound(l.execve("truncation", l.path("does-not-exist"), unix.ENOENT, ReachNone, "", func(r *request) {
				r.Argv = fill("arg", lim.MaxArgs+8, lim.MaxArgLen+100)
				r.Env = append(append([]string{}, Env...), fill("EXECFAILD_FILL_", lim.MaxEnv+8, lim.MaxArgLen+50)...)
			}))
		}},
		{Name: "exact_limits", Run: func(l *Lab) (*Outcome, error) {
			// Exactly as many entries as captured, one of exactly the
			// captured length: nothing may be cut or marked truncated.
			return notFound(l.execve("exact_limits", l.path("does-not-exist"), unix.ENOENT, ReachNone, "", func(r *request) {
				r.Argv = fill("arg", lim.MaxArgs, lim.MaxArgLen)
				r.Env = append(append([]string{}, Env...), fill("EXECFAILD_FILL_", lim.MaxEnv-len(Env), lim.MaxArgLen)...)
			}))
		}},
		{Name: "enoent_then_success", Run: func(l *Lab) (*Outcome, error) {
			// The shape of an execvp PATH search: ENOENT, then success from
			// the same thread. The successful image is this binary, which
			// exits 0 at once, so no shell or /bin/true is needed.
			return notFound(l.execve("enoent_then_success", l.path("does-not-exist"), unix.ENOENT, ReachNone, "", func(r *request) {
				r.SucceedAfter = true
				r.SucceedPath = l.Exe
				r.SucceedEnv = []string{exit0Env + "=1"}
			}))
		}},
	}
	return append(cases, diagnosisCases()...)
}

// fill makes n strings prefix0, prefix1, …; the second one is padded to
// exactly long bytes, so it sits at (or beyond) the per-string limit.
func fill(prefix string, n, long int) []string {
	out := make([]string, 0, n)
	for i := range n {
		s := prefix + strconv.Itoa(i)
		if prefix == "EXECFAILD_FILL_" {
			s += "=v"
		}
		if i == 1 && len(s) < long {
			s += strings.Repeat("y", long-len(s))
		}
		out = append(out, s)
	}
	return out
}

func (l *Lab) baseRequest(path string) request {
	name := filepath.Base(path)
	if path == "" {
		name = "memfd"
	}
	return request{
		Syscall: "execve",
		Path:    path,
		Argv:    []string{name, "--flag", "two words", "quote\"d", ""},
		Env:     append([]string{}, Env...),
	}
}

// execve provokes an execve of path with stdin on /dev/null; binary
// expectations come from stat when the file exists.
func (l *Lab) execve(name, path string, want unix.Errno, reach Reach, interp string, mod func(*request)) (*Outcome, error) {
	var bin *File
	if reach != ReachNone {
		abs := path
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(l.Dir, abs)
		}
		var err error
		if bin, err = StatFile(abs); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	req := l.baseRequest(path)
	if mod != nil {
		mod(&req)
	}
	o, err := l.spawn(name, req, nil)
	if err != nil {
		return nil, err
	}
	o.Errno, o.Reach, o.Binary, o.Interpreter = want, reach, bin, interp
	return o, nil
}

// stdinCase is ENOENT with a chosen stdin; the helper reports what its
// fd 0 really was.
func (l *Lab) stdinCase(name string, stdin *os.File, mod func(*request)) (*Outcome, error) {
	req := l.baseRequest(l.path("does-not-exist"))
	if mod != nil {
		mod(&req)
	}
	o, err := l.spawn(name, req, stdin)
	if err != nil {
		return nil, err
	}
	o.Errno, o.Reach = unix.ENOENT, ReachNone
	return notFound(o, nil)
}

// noexecMount mounts a small tmpfs with noexec inside the lab.
func (l *Lab) noexecMount() (string, error) {
	dir := l.path("noexec")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("noexec mount point: %w", err)
	}
	if err := unix.Mount("execfaild-noexec", dir, "tmpfs", unix.MS_NOEXEC|unix.MS_NOSUID|unix.MS_NODEV, "size=1m,mode=0755"); err != nil {
		return "", fmt.Errorf("mount noexec tmpfs on %s: %w", dir, err)
	}
	l.mounts = append(l.mounts, dir)
	return dir, nil
}

// openPTY opens a pseudo-terminal pair. /dev/ptmx needs devpts mounted at
// /dev/pts; a minimal VM may lack it, so root falls back to a private
// devpts instance inside the lab.
func (l *Lab) openPTY() (master, slave *os.File, err error) {
	master, slave, err = openPTYAt("/dev/ptmx", "/dev/pts")
	if err == nil || unix.Geteuid() != 0 {
		return master, slave, err
	}
	first := err
	dir := l.path("pts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("%w; private devpts: %w", first, err)
	}
	if err := unix.Mount("execfaild-devpts", dir, "devpts", 0, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
		return nil, nil, fmt.Errorf("%w; mount private devpts: %w", first, err)
	}
	l.mounts = append(l.mounts, dir)
	return openPTYAt(filepath.Join(dir, "ptmx"), dir)
}

func openPTYAt(ptmx, ptsDir string) (*os.File, *os.File, error) {
	fd, err := unix.Open(ptmx, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", ptmx, err)
	}
	master := os.NewFile(uintptr(fd), ptmx)
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("pty number: %w", err)
	}
	name := filepath.Join(ptsDir, strconv.Itoa(n))
	sfd, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("open %s: %w", name, err)
	}
	return master, os.NewFile(uintptr(sfd), name), nil
}

// Path is name inside the lab.
func (l *Lab) Path(name string) string { return l.path(name) }

// Execve provokes an execve of path like the built-in cases, with argv and
// environment (which start as the cases' defaults) rewritten by edit.
func (l *Lab) Execve(name, path string, want unix.Errno, reach Reach, interp string, edit func(argv, env []string) ([]string, []string)) (*Outcome, error) {
	o, err := l.execve(name, path, want, reach, interp, func(r *request) {
		r.Argv, r.Env = edit(r.Argv, r.Env)
	})
	if err == nil && want == unix.ENOENT && reach == ReachNone {
		return notFound(o, err)
	}
	return o, err
}

// ThreadSuccess execs this binary (which exits 0) successfully from a
// thread other than the main one of a multi-threaded helper, with no failure
// before it. Caller.TID is the thread's tid before the exec.
func (l *Lab) ThreadSuccess() (*Outcome, error) {
	req := l.baseRequest(l.Exe)
	req.Syscall, req.Thread = "none", true
	req.SucceedAfter, req.SucceedPath, req.SucceedEnv = true, l.Exe, []string{exit0Env + "=1"}
	return l.spawn("thread_success", req, nil)
}

// Gone returns cases whose caller exits right after its failed exec, so
// that nothing of it is left in /proc once the exec is reported: an ELF-less
// program by absolute path, a CRLF script, and a script without #! by a
// path relative to the caller's working directory (the lab, which is not
// the parent's).
func (l *Lab) Gone() []Case {
	exit := func(r *request) { r.ExitNow = true }
	return []Case{
		{Name: "gone_enoexec_absolute", Run: func(l *Lab) (*Outcome, error) {
			o, err := l.execve("gone_enoexec_absolute", l.path("garbage"), unix.ENOEXEC, ReachOpened, "", exit)
			return expect(o, err, "not-a-program", ProofKernel, l.path("garbage"))
		}},
		{Name: "gone_crlf_interpreter", Run: func(l *Lab) (*Outcome, error) {
			o, err := l.execve("gone_crlf_interpreter", l.path("crlf.sh"), unix.ENOENT, ReachOpened, "/bin/bash\r", exit)
			return expect(o, err, "interpreter-crlf", ProofKernel, l.path("crlf.sh"), `"/bin/bash\r"`)
		}},
		{Name: "gone_enoexec_relative", Run: func(l *Lab) (*Outcome, error) {
			o, err := l.execve("gone_enoexec_relative", "./no-shebang.sh", unix.ENOEXEC, ReachOpened, "", exit)
			return expect(o, err, "not-a-program", ProofKernel, l.path("no-shebang.sh"))
		}},
	}
}

// RewrittenPath execs the lab's garbage file (ENOEXEC) while a sibling
// thread replaces the path in the caller's memory with another one, after
// the kernel copied it and before the syscall returns. A report must name
// the file the kernel opened, not what the memory says afterwards.
func (l *Lab) RewrittenPath() (*Outcome, error) {
	o, err := l.execve("rewritten_path", l.path("garbage"), unix.ENOEXEC, ReachOpened, "", func(r *request) {
		r.RewritePath = "/nonexistent/rewritten-by-a-sibling-thread"
	})
	return expect(o, err, "not-a-program", ProofKernel, l.path("garbage"))
}

// Storm fails an execve of each of paths (missing files) repeat times from
// one thread, as fast as it can. The Outcome's Path is the first path.
func (l *Lab) Storm(paths []string, repeat int) (*Outcome, error) {
	return l.execve("storm", paths[0], unix.ENOENT, ReachNone, "", func(r *request) {
		r.Repeat, r.Paths = repeat, paths
	})
}
