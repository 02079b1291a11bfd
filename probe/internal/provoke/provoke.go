// SPDX-License-Identifier: Apache-2.0

// Package provoke makes the kernel fail program executions on purpose and
// says what a correct failure event must contain.
//
// Every failing exec is issued by a helper process: the calling binary
// re-executed with a switch in its environment (see MaybeHelper), which sets
// up stdin, credentials and file descriptors as the case asks, calls the raw
// execve/execveat syscall, reports the errno and its own identity on a pipe,
// and then stays alive until released. Staying alive matters: a probe that
// resolves fields in userspace (through /proc/<pid>) needs the caller to
// exist when the event is read. Re-execution needs no toolchain and no
// second binary, so it works inside a minimal VM as well.
package provoke

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Environment switches read by MaybeHelper. They are distinct so that a
// successful exec of the binary (exit0Env) cannot start a helper by accident.
const (
	helperEnv = "EXECFAILD_PROVOKE_HELPER"
	exit0Env  = "EXECFAILD_PROVOKE_EXIT0"
	crashEnv  = "EXECFAILD_PROVOKE_CRASH"
	raceEnv   = "EXECFAILD_PROVOKE_RACE"
)

// Reach tells how far exec got with the file named by the path, which
// decides whether an event may, must, or must not describe a binary.
type Reach int

const (
	// ReachNone: no file exists at the end of the path (ENOENT, ELOOP,
	// ENOTDIR); no event may carry binary fields.
	ReachNone Reach = iota
	// ReachRefused: the file exists but exec refused it while opening it
	// or before its image was checked (EACCES, ETXTBSY, E2BIG). Kernel hooks
	// placed after the open do not see it; a userspace stat does. Binary
	// fields are optional but must be correct when present.
	ReachRefused
	// ReachOpened: exec opened the file and handed it to a binary loader
	// (ENOEXEC, missing interpreter). Every mode must describe the binary.
	ReachOpened
)

func (r Reach) String() string {
	switch r {
	case ReachNone:
		return "none"
	case ReachRefused:
		return "refused"
	case ReachOpened:
		return "opened"
	}
	return fmt.Sprintf("Reach(%d)", int(r))
}

// File is what stat(2) says about a file, in the units of event.Binary.
type File struct {
	Path  string // absolute, symlinks resolved, as the kernel's d_path prints it
	Dev   uint64 // st_dev, userspace encoding
	Ino   uint64
	Mode  uint32 // st_mode including the type bits
	Ctime uint64 // ns since the epoch
}

// Stdin describes the caller's fd 0 at the moment of the exec, as the helper
// saw it through fstat and /proc/self/fd/0.
type Stdin struct {
	Closed bool
	Type   string // chr, fifo, sock, reg, dir, blk, lnk, or "closed"
	Mode   uint32
	Link   string // readlink /proc/self/fd/0: a path, or pipe:[N] / socket:[N]
}

// Caller is the helper's identity at the moment it called exec.
type Caller struct {
	PID, TID, PPID  uint32
	UID, GID, EUID  uint32
	LoginUID        *uint32 // nil when unset (4294967295)
	Comm            string
	Cwd             string
	MainThread      bool // tid == pid
	RequestedThread bool // the case asked for a non-main thread
}

// Outcome is one provoked exec: what the event must say, who called, and
// what the kernel returned. Release must be called once the event was
// checked, so the helper exits.
type Outcome struct {
	Case string

	Syscall string // "execve", "execveat" or "kernel"
	ABI     string // "ia32" for a 32-bit syscall, "" for the native one
	// Rewritten is what the caller's memory held in place of Path once
	// the exec returned (RewritePath).
	Rewritten string
	// PathFault and ArgvFault: the path, or an argv entry, was unreadable;
	// the event must say truncated rather than end quietly (Argv is then
	// what was readable).
	PathFault, ArgvFault bool
	Path                 string // as passed to the syscall
	// Errno is what the case is built to produce; Got is what the kernel
	// actually returned to the helper. A correct event carries Got.
	Errno unix.Errno
	Got   unix.Errno
	Dirfd *int32  // execveat only: the descriptor number passed
	Flags *uint32 // execveat only

	Reach  Reach
	Binary *File // stat of the file exec opens; nil with ReachNone

	// Cause is the diagnosis a correct event carries (a cause code), and
	// CauseNames what its sentence must name: the offending path or value.
	// CauseProof says what can prove the cause: ProofErrno, ProofKernel or
	// ProofUserspace.
	Cause      string
	CauseNames []string
	CauseProof string
	// CauseMeasured is named too where the probe measures argv and envp
	// after E2BIG (its default build; not the one for kernels before 5.17).
	CauseMeasured []string

	// Interpreter is the path a script's #! line names, byte for byte
	// (a CRLF file yields a trailing "\r"); empty when no script is involved.
	Interpreter string

	Argv []string
	Env  []string

	Stdin  Stdin
	Caller Caller

	// Succeeded is set for cases that follow the failure with a successful
	// exec from the same thread: the exec'd image ran and exited 0.
	Succeeded bool
	// KernelInvoked marks an exec the kernel started itself (usermode helper).
	KernelInvoked bool

	release func() error
}

// Release lets the helper exit and reaps it. Safe to call more than once.
func (o *Outcome) Release() error {
	if o.release == nil {
		return nil
	}
	r := o.release
	o.release = nil
	return r()
}

// request is what the parent sends the helper on its control pipe. It goes
// over a pipe rather than the environment because E2BIG cases carry more
// than one environment string may hold.
type request struct {
	Syscall string `json:"syscall"`
	// Compat issues the syscall through the 32-bit ABI (int $0x80).
	// BadPath passes an unreadable filename pointer; BadArgv > 0 makes
	// argv[BadArgv] unreadable: the kernel answers EFAULT.
	BadPath bool `json:"bad_path,omitempty"`
	// Repeat > 0 fails the execve Repeat times over each of Paths (or
	// Path) in a tight loop on one thread: a storm.
	Repeat int      `json:"repeat,omitempty"`
	Paths  []string `json:"paths,omitempty"`
	// Pace sleeps this long after each of a storm's execs: a storm as a
	// slow machine makes it.
	Pace time.Duration `json:"pace,omitempty"`
	// RewritePath replaces the path in the caller's memory while the exec
	// is inside the kernel (stalled on argv[1] through userfaultfd).
	RewritePath string `json:"rewrite_path,omitempty"`
	// ExitNow: the helper exits as soon as it reported, instead of waiting
	// to be released, like a caller that gives up after a failed exec.
	ExitNow bool     `json:"exit_now,omitempty"`
	BadArgv int      `json:"bad_argv,omitempty"`
	Compat  bool     `json:"compat,omitempty"`
	Path    string   `json:"path"`
	Argv    []string `json:"argv"`
	Env     []string `json:"env"`
	Flags   uint32   `json:"flags"`
	// DirfdOpen names a directory the helper opens and passes as dirfd.
	DirfdOpen string `json:"dirfd_open,omitempty"`
	// Memfd: the helper creates a memfd with this content (and mode, when
	// non-zero) and passes it as dirfd with an empty path.
	Memfd     []byte `json:"memfd,omitempty"`
	MemfdMode uint32 `json:"memfd_mode,omitempty"`
	// Landlock: the helper's thread forbids itself every exec (Landlock
	// ruleset handling only LANDLOCK_ACCESS_FS_EXECUTE) before the exec.
	Landlock bool `json:"landlock,omitempty"`
	// Seccomp: the helper's thread installs a seccomp filter that answers
	// every execve with EPERM, before the exec.
	Seccomp bool `json:"seccomp,omitempty"`
	// OpenForWrite is held open for writing across the exec (ETXTBSY).
	OpenForWrite string `json:"open_for_write,omitempty"`
	Thread       bool   `json:"thread,omitempty"`
	CloseStdin   bool   `json:"close_stdin,omitempty"`
	// DropTo switches uid and gid before the exec so identity fields are
	// checked with values other than root's zeros.
	DropTo *uint32 `json:"drop_to,omitempty"`
	// SucceedAfter makes the helper exec SucceedPath (with SucceedEnv)
	// right after the failure, from the same thread.
	SucceedAfter bool     `json:"succeed_after,omitempty"`
	SucceedPath  string   `json:"succeed_path,omitempty"`
	SucceedEnv   []string `json:"succeed_env,omitempty"`
}

// report is what the helper sends back, one JSON object per exec attempt.
type report struct {
	Err string `json:"err,omitempty"` // helper setup failed
	// Progress > 0 marks a storm's progress report (execs made so far),
	// sent before its final report; no other field is set in it.
	Progress   int  `json:"progress,omitempty"`
	Errno      int  `json:"errno"`
	Succeeding bool `json:"succeeding,omitempty"`

	PID      int    `json:"pid"`
	TID      int    `json:"tid"`
	PPID     int    `json:"ppid"`
	UID      int    `json:"uid"`
	GID      int    `json:"gid"`
	EUID     int    `json:"euid"`
	LoginUID uint32 `json:"loginuid"`
	Comm     string `json:"comm"`
	Cwd      string `json:"cwd"`

	Stdin Stdin `json:"stdin"`
	Dirfd int   `json:"dirfd"`
	// FdFile describes the memfd passed with AT_EMPTY_PATH.
	FdFile *File `json:"fd_file,omitempty"`
}

// StatFile stats path (following symlinks) and reports it the way a
// correct event's binary fields would.
func StatFile(path string) (*File, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", path, err)
	}
	real, err = filepath.Abs(real)
	if err != nil {
		return nil, fmt.Errorf("absolute path of %s: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(real, &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", real, err)
	}
	return fileFromStat(real, &st), nil
}

func fileFromStat(path string, st *unix.Stat_t) *File {
	return &File{
		Path:  path,
		Dev:   st.Dev,
		Ino:   st.Ino,
		Mode:  st.Mode,
		Ctime: uint64(st.Ctim.Sec)*1e9 + uint64(st.Ctim.Nsec),
	}
}

// TypeName names the file type in a st_mode the way event.StdinType does.
func TypeName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFCHR:
		return "chr"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFSOCK:
		return "sock"
	case unix.S_IFREG:
		return "reg"
	case unix.S_IFDIR:
		return "dir"
	case unix.S_IFBLK:
		return "blk"
	case unix.S_IFLNK:
		return "lnk"
	case 0:
		// Anonymous inodes (eventfd, epoll…) carry no type bits.
		return "anon"
	}
	return fmt.Sprintf("unknown(%#o)", mode&unix.S_IFMT)
}

// helperTimeout bounds every wait on a helper without progress, so a
// wedged case fails the test instead of hanging the kernel matrix. A
// variable for the lab's own tests.
var helperTimeout = 30 * time.Second

// spawn starts a helper with req, stdin (nil: /dev/null) and waits for the
// failure report. With req.SucceedAfter it also waits for the successful
// image to exit.
func (l *Lab) spawn(name string, req request, stdin *os.File) (*Outcome, error) {
	h, err := l.startHelper(name, stdin)
	if err != nil {
		return nil, err
	}
	// A killer ends a helper that makes no progress for helperTimeout:
	// reading a report from a helper that never writes one would block
	// forever. A storm's progress reports push it back, so a storm takes
	// as long as the machine needs and a stuck one still ends.
	var killed atomic.Bool
	killer := time.AfterFunc(helperTimeout, func() {
		killed.Store(true)
		h.cmd.Process.Kill()
	})
	defer killer.Stop()

	if err := json.NewEncoder(h.ctl).Encode(req); err != nil {
		return nil, h.fail(name, fmt.Errorf("send request: %w", err))
	}
	dec := json.NewDecoder(bufio.NewReader(h.out))
	var rep report
	done := 0
	for {
		rep = report{}
		if err := dec.Decode(&rep); err != nil {
			if killed.Load() {
				err = fmt.Errorf("%w: killed after %v without progress (%s)", err, helperTimeout, progressNote(req, done))
			}
			return nil, h.fail(name, fmt.Errorf("read helper report: %w", err))
		}
		if rep.Progress == 0 {
			break
		}
		done = rep.Progress
		killer.Reset(helperTimeout)
	}
	if rep.Err != "" {
		return nil, h.fail(name, errors.New(rep.Err))
	}
	o := expected(name, req, rep)
	if !req.SucceedAfter {
		o.release = h.reap
		return o, nil
	}
	if err := h.awaitSuccess(dec, req); err != nil {
		return nil, h.fail(name, err)
	}
	o.Succeeded = true
	return o, nil
}

// progressNote says how far a helper got before it stopped reporting.
func progressNote(req request, done int) string {
	if req.Repeat == 0 {
		return "no report"
	}
	return fmt.Sprintf("%d of %d storm execs made", done, req.Repeat*max(1, len(req.Paths)))
}

// helperProc is a running helper: ctl carries the request to it (its fd
// 3), out its reports back (its fd 4).
type helperProc struct {
	cmd     *exec.Cmd
	ctl     *os.File
	out     *os.File
	stderr  *bytes.Buffer
	once    sync.Once
	waitErr error
}

// startHelper starts a helper in the lab's directory with stdin (nil:
// /dev/null) and the pipes it talks over.
func (l *Lab) startHelper(name string, stdin *os.File) (*helperProc, error) {
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("%s: control pipe: %w", name, err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		ctlR.Close()
		ctlW.Close()
		return nil, fmt.Errorf("%s: report pipe: %w", name, err)
	}
	h := &helperProc{cmd: exec.Command(l.Exe), ctl: ctlW, out: outR, stderr: &bytes.Buffer{}}
	cmd := h.cmd
	cmd.Env = append(cleanEnv(os.Environ()), helperEnv+"=1")
	cmd.Dir = l.Dir
	if stdin != nil {
		cmd.Stdin = stdin
	}
	cmd.Stderr = &lockedWriter{w: h.stderr}
	cmd.Stdout = cmd.Stderr
	cmd.ExtraFiles = []*os.File{ctlR, outW} // fds 3 and 4 in the helper
	startErr := cmd.Start()
	ctlR.Close()
	outW.Close()
	if startErr != nil {
		ctlW.Close()
		outR.Close()
		return nil, fmt.Errorf("%s: start helper %s: %w", name, l.Exe, startErr)
	}
	return h, nil
}

// reap waits for the helper to exit, killing it after helperTimeout, and
// closes its pipes; it returns the same error every time it is called.
func (h *helperProc) reap() error {
	h.once.Do(func() {
		h.ctl.Close()
		done := make(chan error, 1)
		go func() { done <- h.cmd.Wait() }()
		select {
		case h.waitErr = <-done:
		case <-time.After(helperTimeout):
			h.cmd.Process.Kill()
			h.waitErr = fmt.Errorf("helper did not exit within %v", helperTimeout)
			<-done
		}
		h.out.Close()
	})
	return h.waitErr
}

// fail ends the helper and returns err for case name, with what the
// helper wrote to stderr.
func (h *helperProc) fail(name string, err error) error {
	h.cmd.Process.Kill()
	h.reap()
	if s := strings.TrimSpace(h.stderr.String()); s != "" {
		err = fmt.Errorf("%w (helper stderr: %s)", err, s)
	}
	return fmt.Errorf("%s: %w", name, err)
}

// awaitSuccess reads the helper's announcement that its follow-up exec is
// succeeding and waits for that image to exit 0.
func (h *helperProc) awaitSuccess(dec *json.Decoder, req request) error {
	var next report
	if err := dec.Decode(&next); err != nil {
		return fmt.Errorf("read success announcement: %w", err)
	}
	if next.Err != "" {
		return errors.New(next.Err)
	}
	if !next.Succeeding {
		return fmt.Errorf("follow-up exec of %s failed: %v", req.SucceedPath, unix.Errno(next.Errno))
	}
	if err := h.reap(); err != nil {
		return fmt.Errorf("successful image did not exit 0: %w", err)
	}
	return nil
}

// expected is what the probe must report for the failure the helper
// reported: derived from the request and the helper's own view, never from
// the probe's code.
func expected(name string, req request, rep report) *Outcome {
	o := &Outcome{
		Case:    name,
		Syscall: req.Syscall,
		Path:    req.Path,
		Got:     unix.Errno(rep.Errno),
		Argv:    req.Argv,
		Env:     req.Env,
		Stdin:   rep.Stdin,
		Caller: Caller{
			PID: uint32(rep.PID), TID: uint32(rep.TID), PPID: uint32(rep.PPID),
			UID: uint32(rep.UID), GID: uint32(rep.GID), EUID: uint32(rep.EUID),
			Comm: rep.Comm, Cwd: rep.Cwd,
			MainThread:      rep.PID == rep.TID,
			RequestedThread: req.Thread,
		},
	}
	if rep.LoginUID != 4294967295 {
		v := rep.LoginUID
		o.Caller.LoginUID = &v
	}
	if req.Compat {
		o.ABI = "ia32"
	}
	o.Rewritten = req.RewritePath
	if req.BadPath {
		o.PathFault, o.Path = true, ""
	}
	if req.BadArgv > 0 {
		o.ArgvFault, o.Argv = true, req.Argv[:req.BadArgv]
	}
	if req.Syscall == "execveat" {
		d, f := int32(rep.Dirfd), req.Flags
		o.Dirfd, o.Flags = &d, &f
	}
	if rep.FdFile != nil {
		o.Binary = rep.FdFile
	}
	return o
}

// cleanEnv drops the switches so a helper's own children behave normally.
func cleanEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if strings.HasPrefix(kv, helperEnv+"=") || strings.HasPrefix(kv, exit0Env+"=") || strings.HasPrefix(kv, crashEnv+"=") || strings.HasPrefix(kv, raceEnv+"=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// waitStatus extracts the signal that ended a process, if any.
func waitStatus(err error) (syscall.WaitStatus, bool) {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
			return ws, true
		}
	}
	return 0, false
}

// ExecRace runs n processes whose two threads exec at once (see execRace)
// and returns their pids; each must exit 0, its winner's image.
func (l *Lab) ExecRace(n int) ([]uint32, error) {
	var pids []uint32
	for range n {
		cmd := exec.Command(l.Exe)
		cmd.Env = append(cleanEnv(os.Environ()), raceEnv+"=1")
		if err := cmd.Run(); err != nil {
			return pids, fmt.Errorf("exec race: %w", err)
		}
		pids = append(pids, uint32(cmd.Process.Pid))
	}
	return pids, nil
}
