// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"os"
	"path"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/execfaild/execfaild/probe/event"
	"github.com/execfaild/execfaild/probe/internal/diagnose"
)

// diagnoser gathers the evidence about each failure - the kernel's, from
// the record, and what userspace can still read through the caller's
// /proc/<pid> - and fills the event's cause. Files are looked at only for
// the errnos whose cause depends on them, and only as far as the kernel's
// evidence leaves the cause open: a storm of plain ENOENT costs a stat or
// two per failure, never a file read.
type diagnoser struct {
	en   *enricher
	arch diagnose.Arch
	// kernelHooks: exec's hooks are attached, the open hook among them, so
	// a hook that did not fire is evidence.
	kernelHooks bool
	captureEnv  bool

	lsmFile string
	lsmOnce sync.Once
	lsms    []string
}

func newDiagnoser(en *enricher, kernelHooks, captureEnv bool) *diagnoser {
	return &diagnoser{en: en, arch: diagnose.ArchOf(runtime.GOARCH), kernelHooks: kernelHooks, captureEnv: captureEnv,
		lsmFile: "/sys/kernel/security/lsm"}
}

// diagnose sets e.Cause, e.CauseText and e.CauseInferred.
func (d *diagnoser) diagnose(e *event.Event, r *record) {
	ev := d.kernelEvidence(e, r)
	if loc, ok := d.locate(e, r); ok {
		d.gather(ev, e, r, loc)
		loc.dir.close()
	}
	res := diagnose.Diagnose(ev)
	e.Cause, e.CauseText, e.CauseInferred = res.Cause, res.Text, res.Inferred
}

// kernelEvidence is what the record says: the hooks that fired, the
// program's first bytes and the interpreter exec asked for.
func (d *diagnoser) kernelEvidence(e *event.Event, r *record) *diagnose.Evidence {
	h := &r.h
	ev := &diagnose.Evidence{
		Errno:       unix.Errno(-e.ReturnValue),
		Arch:        d.arch,
		KernelHooks: d.kernelHooks,
		Opened:      h.Hooks&(hookOpen|hookCreds|hookLoader) != 0,
		InterpTried: h.Hooks&hookInterp != 0,
		Loaders:     int(h.Loaders),
		Interp:      e.InterpreterPath,
		// A userspace interpreter (tracepoint mode) is userspace evidence.
		InterpKernel: e.InterpreterSource == event.SourceKernel,
	}
	ev.Program.Path = e.ResolvedPath()
	if h.Flags&flagHasHead != 0 {
		ev.Program.Head, ev.Program.HeadKernel = r.head, true
	}
	return ev
}

// location is where the caller's files are, seen from here.
type location struct {
	dir     *rootDir    // the caller's root, where its absolute paths are opened
	files   callerFiles // where the program is, and what enrichment found
	cwd     string      // the caller's cwd, absolute in its root
	pidDir  string      // /proc/<pid> of the caller, when it is still there
	procDir string      // the /proc directory whose mountinfo is the caller's mounts
	// opened: the program, opened once asked for, or why not.
	opened *openedProgram
}

type openedProgram struct {
	name string
	err  error
	done bool
}

func (d *diagnoser) locate(e *event.Event, r *record) (location, bool) {
	if e.KernelInvoked {
		// Usermode helpers run in init's file system namespace and root.
		if !path.IsAbs(e.Path) {
			return location{}, false
		}
		f := callerFiles{root: d.en.proc(1, "root")}
		f.inRoot(e.Path)
		return location{dir: procRootDir(f.root), files: f, cwd: "/", procDir: d.en.proc(1), opened: &openedProgram{}}, true
	}
	f := d.en.callerPath(e, r.caller())
	if !f.ok {
		return location{}, false
	}
	loc := location{dir: f.rootDir(), files: f, cwd: e.Process.Cwd, procDir: f.procDir, opened: &openedProgram{}}
	if f.alive || f.unchecked && readsProc(e.ReturnValue) && d.en.procs.running(e.Process.PID) {
		loc.pidDir = d.en.proc(e.Process.PID)
	}
	return loc, true
}

// readsProc tells whether diagnosing the failure ret reads the caller's
// /proc directory (its credentials, descriptors or limits).
func readsProc(ret int32) bool {
	switch unix.Errno(-ret) {
	case unix.EACCES, unix.EPERM, unix.ETXTBSY, unix.E2BIG:
		return true
	}
	return false
}

// program names the program so that it opens from here, as the caller
// found it.
func (l location) program() (string, error) {
	o := l.opened
	if !o.done {
		o.done = true
		f := &l.files
		if f.underRoot && l.dir.plain || !f.underRoot && f.base == "" {
			o.name = f.target
		} else if fd, err := f.openIn(l.dir, unix.O_PATH); err != nil {
			o.err = err
		} else {
			o.name = l.dir.keep(fd)
		}
	}
	return o.name, o.err
}

// stat stats a path of the caller's (see in).
func (l location) stat(p string, st *unix.Stat_t) error {
	if !path.IsAbs(p) {
		p = path.Join(l.cwd, p)
	}
	return l.dir.stat(p, st)
}

// in names a path of the caller's (absolute in its root, or relative to
// its cwd) so that it opens from here.
func (l location) in(p string) (string, error) {
	if !path.IsAbs(p) {
		p = path.Join(l.cwd, p)
	}
	return l.dir.name(p)
}

// gather adds what userspace reads, errno by errno.
func (d *diagnoser) gather(ev *diagnose.Evidence, e *event.Event, r *record, loc location) {
	switch ev.Errno {
	case unix.ENOENT:
		d.gatherMissing(ev, loc)
	case unix.ENOEXEC:
		d.gatherFormat(ev, loc)
	case unix.EACCES, unix.EPERM:
		d.gatherAccess(ev, e, loc)
	case unix.ETXTBSY:
		ev.Writer = writerOf(loc)
	case unix.E2BIG:
		d.gatherSizes(ev, e, r, loc)
	case unix.ELOOP:
		if !(ev.KernelHooks && ev.Loaders > 0) {
			ev.Loop = symlinkLoop(loc)
		}
	case unix.ENOTDIR:
		ev.NotDir = firstNonDir(loc)
	}
}

// gatherMissing: with the hooks, none fired means the path did not
// resolve, and a loader that asked for an interpreter without a further
// check means the interpreter did not; only the rest needs looking at.
func (d *diagnoser) gatherMissing(ev *diagnose.Evidence, loc location) {
	if ev.KernelHooks && !ev.Opened && !ev.InterpTried {
		ev.NearestParent = nearestParent(loc)
		return
	}
	kernelProof := ev.KernelHooks && ev.InterpKernel && ev.Interp != "" && ev.Loaders <= 1
	if kernelProof && ev.Program.Head != nil {
		return
	}
	p := &ev.Program
	if loc.files.missing {
		p.Missing = true
		ev.NearestParent = nearestParent(loc)
		return
	}
	at, err := loc.program()
	if !statFile(p, at, err) {
		if p.Missing {
			ev.NearestParent = nearestParent(loc)
		}
		return
	}
	readHead(p, at)
	if ev.Interp == "" {
		ev.Interp, _ = readInterpreter(at)
	}
	if ev.Interp == "" || kernelProof {
		return
	}
	ev.Interpreter = inspectInterpreter(ev.Interp, loc)
}

// gatherFormat: the program's first bytes, and for a script its
// interpreter's.
func (d *diagnoser) gatherFormat(ev *diagnose.Evidence, loc location) {
	if at, err := loc.program(); err == nil {
		readHead(&ev.Program, at)
	}
	if !strings.HasPrefix(string(ev.Program.Head), "#!") {
		return
	}
	if ev.Interp == "" {
		ev.Interp, _ = parseShebang(ev.Program.Head)
	}
	if ev.Interp != "" {
		ev.Interpreter = inspectInterpreter(ev.Interp, loc)
	}
}

// inspectInterpreter stats the interpreter a file names, and reads the
// head and interpreter of its own.
func inspectInterpreter(interp string, loc location) *diagnose.File {
	f := &diagnose.File{Path: interp}
	at, err := loc.in(interp)
	if !statFile(f, at, err) {
		return f
	}
	readHead(f, at)
	if f.Interp, _ = readInterpreter(at); f.Interp != "" {
		var st unix.Stat_t
		f.InterpMissing = loc.stat(f.Interp, &st) == unix.ENOENT
	}
	return f
}

// statFile fills f's mode and owner from a stat (following links, as exec
// does) of at, which naming it found or failed with err; false when
// either failed, with Missing set for ENOENT.
func statFile(f *diagnose.File, at string, err error) bool {
	var st unix.Stat_t
	if err == nil {
		err = unix.Stat(at, &st)
	}
	if err != nil {
		f.Missing = err == unix.ENOENT
		return false
	}
	f.Stat, f.Mode, f.UID, f.GID = true, st.Mode, st.Uid, st.Gid
	return true
}

// readHead reads a file's first bytes unless the kernel's are known.
func readHead(f *diagnose.File, at string) {
	if f.Head != nil {
		return
	}
	// Never open anything but a regular file: opening a device or FIFO
	// can block or act.
	var st unix.Stat_t
	if unix.Stat(at, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return
	}
	fd, err := unix.Open(at, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return
	}
	buf := make([]byte, 256)
	n, err := unix.Read(fd, buf)
	if err != nil {
		return
	}
	f.Head = buf[:n]
}

// nearestParent is the deepest existing directory of the program's path.
func nearestParent(loc location) string {
	if !path.IsAbs(loc.files.display) {
		return ""
	}
	for dir := path.Dir(loc.files.display); ; dir = path.Dir(dir) {
		var st unix.Stat_t
		if loc.dir.stat(dir, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return dir
		}
		if dir == "/" {
			return ""
		}
	}
}

// firstNonDir is the first component of the program's path that exists
// and is not a directory.
func firstNonDir(loc location) string {
	if !path.IsAbs(loc.files.display) {
		return ""
	}
	parts := strings.Split(strings.Trim(loc.files.display, "/"), "/")
	for i := 1; i < len(parts); i++ {
		p := "/" + strings.Join(parts[:i], "/")
		var st unix.Stat_t
		if err := loc.dir.stat(p, &st); err != nil {
			return ""
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return p
		}
	}
	return ""
}

// symlinkLoop follows the program's path as far as its links go round: the
// chain when it comes back on itself, else nil.
func symlinkLoop(loc location) []string {
	if !path.IsAbs(loc.files.display) {
		return nil
	}
	chain := []string{loc.files.display}
	seen := map[string]bool{loc.files.display: true}
	cur := loc.files.display
	for range 40 {
		link, err := loc.dir.readlink(cur)
		if err != nil {
			return nil
		}
		if !path.IsAbs(link) {
			link = path.Join(path.Dir(cur), link)
		}
		chain = append(chain, link)
		if seen[link] {
			return chain
		}
		seen[link] = true
		cur = link
	}
	return nil
}

// lsmList is the kernel's list of active security modules, read once.
func (d *diagnoser) lsmList() []string {
	d.lsmOnce.Do(func() {
		if b, err := os.ReadFile(d.lsmFile); err == nil {
			d.lsms = strings.Split(strings.TrimSpace(string(b)), ",")
		}
	})
	return d.lsms
}
