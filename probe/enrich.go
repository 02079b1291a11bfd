// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/execfaild/execfaild/probe/event"
)

// enricher adds what userspace can tell about a failure: the caller's exe,
// cwd, cgroup, unit and container, its parent, and - when the kernel hooks
// could not - the binary and its interpreter. Everything is read through
// procRoot so tests run on fixtures. The caller usually outlives its failed
// exec only briefly, so every read here is best effort and racy.
//
// A failure storm comes from few processes, cgroups and files, so what
// they tell is cached: cgroup paths by the kernel's cgroup id (checked
// against cgroupfs when first read), parents' exes by process identity
// (pid, start time, comm: a reused pid or an exec is a different key), and
// the interpreter a file names by its inode and ctime.
type enricher struct {
	procRoot string
	// cgroupRoot is the unified hierarchy's mount, where a cgroup's
	// directory inode is its id.
	cgroupRoot string
	host       string
	envMode    string
	keepEnv    map[string]bool

	cgroups boundedCache[uint64, cgroupInfo]
	// procs holds pidfd handles on processes met more than once; exes
	// serves where there are none (fixtures, no pidfd_open).
	procs     *procHandles
	exes      boundedCache[procIdentity, string]
	interps   boundedCache[fileKey, interpreter]
	statBuf   [512]byte
	statBufMu sync.Mutex
}

func newEnricher(cfg Config) *enricher {
	keep := make(map[string]bool, len(cfg.KeepEnv))
	for _, k := range cfg.KeepEnv {
		keep[k] = true
	}
	root := cfg.procRoot()
	return &enricher{procRoot: root, cgroupRoot: "/sys/fs/cgroup", host: event.LocalHost(), envMode: cfg.Environment, keepEnv: keep,
		procs: newProcHandles(root)}
}

// close releases the handles held on processes.
func (en *enricher) close() { en.procs.close() }

func (en *enricher) proc(pid uint32, rest ...string) string {
	return filepath.Join(append([]string{en.procRoot, strconv.FormatUint(uint64(pid), 10)}, rest...)...)
}

// callerRoot identifies the caller's root directory and mount namespace as
// the kernel saw them at the failure. Once the caller is gone, another
// process with the same root and namespace (its parent, or init) can stand
// in for it when a path it gave is resolved.
type callerRoot struct {
	known bool
	mntNS uint32
	dev   uint64 // st_dev encoding
	ino   uint64
}

// caller is what enrichment and diagnosis know of a failure's caller
// besides the event: the root the kernel recorded, the record's time (in
// the records' clock; 0: not known) and, once worked out, where the file
// it named is seen from here. Both ask for the latter; it is found once.
type caller struct {
	root    callerRoot
	at      uint64
	located bool
	files   callerFiles
}

// callerFiles is where a caller's file is seen from here. target is the
// file, openable from here; display is the path as the caller would name
// it; root is the directory target is under: /proc/<pid>/root, a stand-in
// process's, or a held root's prefix (held). alive: the caller was
// running when looked at. unchecked: it had its pid when the record was
// made, and may have exited since. procDir is the /proc directory whose
// mountinfo is the caller's mount table. missing: opening target found
// nothing. underRoot: target is root+walk, a path the caller resolved in
// its root (display is walk cleaned), and is opened with rootDir. base:
// target is base/rel, a path the caller resolved from a directory (its
// cwd, a dirfd) that base names from here; escape is that path from the
// caller's root, if known.
type callerFiles struct {
	target, display, root         string
	held                          *heldRoot
	procDir                       string
	alive, unchecked, ok, missing bool
	underRoot                     bool
	walk, base, rel, escape       string
}

// heldFiles is where the absolute path walk is under the held root h.
func heldFiles(h *heldRoot, walk string, alive bool) callerFiles {
	f := callerFiles{root: h.prefix, held: h, procDir: h.procDir, alive: alive, ok: true}
	f.inRoot(walk)
	return f
}

// inRoot makes f the absolute path walk, as the caller's exec walked it,
// under f's root.
func (f *callerFiles) inRoot(walk string) {
	f.walk, f.display, f.target, f.underRoot = walk, path.Clean(walk), f.root+walk, true
}

// cwdWalk is the kernel's walk of p from the caller's cwd, relative to
// its root.
func cwdWalk(cwd, p string) string { return cwd + "/" + p }

// rootDir is the caller's root, to open its absolute paths from; close
// it after use.
func (f *callerFiles) rootDir() *rootDir {
	if f.held != nil {
		return heldRootDir(f.held)
	}
	return procRootDir(f.root)
}

// openIn opens the caller's file as the caller found it, its absolute
// paths resolved in dir (the caller's root). A relative path is opened
// beneath the directory it starts from; a walk that leaves it (".."
// above it, an absolute symlink) is taken from the caller's root, where
// the kernel took it, and fails when that path is not known.
func (f *callerFiles) openIn(dir *rootDir, flags int) (int, error) {
	switch {
	case f.underRoot:
		return dir.open(f.walk, flags)
	case f.base != "" && !noOpenat2.Load():
		fd, err := openBeneath(f.base, f.rel, flags)
		switch {
		case err == unix.EXDEV && f.escape != "":
			return dir.open(f.escape, flags)
		case err != unix.ENOSYS:
			return fd, err
		}
	}
	return unix.Open(f.target, flags|unix.O_CLOEXEC, 0)
}

// enrich completes e. userspaceFiles asks for binary.* and interpreter_path
// to be resolved here (tracepoint-only mode).
func (en *enricher) enrich(e *event.Event, userspaceFiles bool) {
	en.enrichWith(e, userspaceFiles, &caller{})
}

func (en *enricher) enrichWith(e *event.Event, userspaceFiles bool, c *caller) {
	e.Host = en.host
	p := &e.Process
	if e.KernelInvoked {
		// A usermode helper thread: its exe and cwd are the kernel's, not
		// a program worth naming.
		en.parent(e, c.at)
		return
	}
	// The kernel's walk, when it had one, was taken at the failure; /proc
	// is read later, from a caller that may have moved on or exited (and
	// then its pid may be another process's).
	gone := en.procs.exitedBefore(p.PID, c.at)
	if p.Exe == "" && !gone {
		p.Exe, _ = os.Readlink(en.proc(p.PID, "exe"))
	}
	if p.Cwd == "" && !gone {
		p.Cwd, _ = os.Readlink(en.proc(p.PID, "cwd"))
	}
	if cg, ok := en.cgroup(p.PID, p.CgroupID); ok {
		p.Cgroup, p.Unit, p.UserUnit, p.ContainerID = cg.path, cg.unit, cg.userUnit, cg.container
	}
	en.parent(e, c.at)
	if userspaceFiles {
		en.resolveFiles(e, c)
	}
	en.redactEnv(e)
}

func (en *enricher) parent(e *event.Event, at uint64) {
	ppid := e.Process.PPID
	if ppid == 0 {
		return
	}
	par := &event.Parent{PID: ppid}
	e.Parent = par
	named := false
	if !en.procs.exitedBefore(ppid, at) {
		en.procs.with(ppid, at, func(h *procHandle, _ bool) { par.Comm, par.Exe, named = h.name(at, en.procs.now()) })
	}
	if !named {
		en.parentFromStat(par)
	}
}

// parentFromStat names the parent through /proc/<ppid>/stat, whose start
// time tells a reused pid apart, keeping its exe per process identity.
func (en *enricher) parentFromStat(par *event.Parent) {
	ppid := par.PID
	en.statBufMu.Lock()
	comm, start, ok := readProcStat(en.proc(ppid, "stat"), en.statBuf[:])
	en.statBufMu.Unlock()
	if !ok {
		if b, err := os.ReadFile(en.proc(ppid, "comm")); err == nil {
			par.Comm = strings.TrimSuffix(string(b), "\n")
		}
		par.Exe, _ = os.Readlink(en.proc(ppid, "exe"))
		return
	}
	par.Comm = comm
	id := procIdentity{pid: ppid, start: start, comm: comm}
	if exe, ok := en.exes.get(id); ok {
		par.Exe = exe
		return
	}
	exe, err := os.Readlink(en.proc(ppid, "exe"))
	if err != nil {
		return
	}
	// Read after the stat: if the pid was reused in between, the new
	// process's stat no longer matches id, and this exe is not kept
	// under it.
	if _, again, ok := readProcStat(en.proc(ppid, "stat"), make([]byte, 512)); ok && again == start {
		en.exes.put(id, exe)
	}
	par.Exe = exe
}

// cgroup returns the caller's cgroup path and what it names. The kernel's
// cgroup id, when known, identifies the cgroup the failure happened in for
// good (ids are not reused): /proc is read the first time, and the answer
// kept only when cgroupfs confirms that path has that id - the caller may
// have moved since.
func (en *enricher) cgroup(pid uint32, id uint64) (cgroupInfo, bool) {
	if id != 0 {
		if cg, ok := en.cgroups.get(id); ok {
			return cg, true
		}
	}
	path, err := readCgroup(en.proc(pid, "cgroup"))
	if err != nil {
		return cgroupInfo{}, false
	}
	cg := cgroupInfo{path: path, container: containerIDFromCgroup(path)}
	cg.unit, cg.userUnit = cgroupUnits(path)
	if id != 0 {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(en.cgroupRoot, path), &st); err == nil && st.Ino == id {
			en.cgroups.put(id, cg)
		}
	}
	return cg, true
}

// readCgroup returns the process's cgroup path: the unified (v2) hierarchy
// when present, else the systemd named hierarchy.
func readCgroup(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read cgroup: %w", err)
	}
	var named string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		id, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		ctrl, cg, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		if id == "0" && ctrl == "" {
			return cg, nil
		}
		if ctrl == "name=systemd" {
			named = cg
		}
	}
	if named != "" {
		return named, nil
	}
	return "", errors.New("read cgroup: no unified or systemd hierarchy")
}

// cgroupUnits names the units of a cgroup path as systemd lays it out:
// slices nest, and the first component below them is the unit the system
// manager runs. Everything below that unit is the unit's own (a delegated
// subtree, or a user manager's units), named by whoever runs there, so the
// system unit is never read from it: `systemd-run --user --unit=cron` must
// not pass for cron.service. Under a user manager (user@UID.service) the
// user's unit is taken from its own level and reported apart.
func cgroupUnits(cg string) (system, user string) {
	system, rest := firstUnit(strings.Split(strings.Trim(cg, "/"), "/"))
	if userManager.MatchString(system) {
		user, _ = firstUnit(rest)
	}
	return system, user
}

var userManager = regexp.MustCompile(`^user@[0-9]+\.service$`)

// firstUnit returns the first component after the leading slices when it
// names a unit, and the components below it.
func firstUnit(parts []string) (string, []string) {
	for i, p := range parts {
		if strings.HasSuffix(p, ".slice") {
			continue
		}
		for _, suf := range []string{".service", ".scope", ".socket", ".mount", ".swap"} {
			if strings.HasSuffix(p, suf) && len(p) > len(suf) {
				return p, parts[i+1:]
			}
		}
		return "", nil
	}
	return "", nil
}

var (
	hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)
	// The scope names runtimes' systemd cgroup drivers give a container.
	runtimeScope = regexp.MustCompile(`^(?:docker|cri-containerd|crio|libpod)-([0-9a-f]{64})\.scope$`)
)

// containerIDFromCgroup returns a container id only from a layout a
// runtime creates, where only root can create it: the system manager's
// unit being a runtime's scope (docker-, cri-containerd-, crio-, libpod-
// <id>.scope), or, for cgroupfs drivers, the top of the hierarchy
// (/docker/<id>, /kubepods/[burstable|besteffort/]pod<uid>/<id>). Names
// inside a unit's subtree are the unit's own choice and never count, so a
// rootless container (under user@UID.service) shows only in user_unit.
func containerIDFromCgroup(cg string) string {
	parts := strings.Split(strings.Trim(cg, "/"), "/")
	if unit, _ := firstUnit(parts); unit != "" {
		if m := runtimeScope.FindStringSubmatch(unit); m != nil {
			return m[1]
		}
		return ""
	}
	switch parts[0] {
	case "docker":
		if len(parts) >= 2 && hex64.MatchString(parts[1]) {
			return parts[1]
		}
	case "kubepods":
		i := 1
		if i < len(parts) && (parts[i] == "burstable" || parts[i] == "besteffort") {
			i++
		}
		if i+1 < len(parts) && strings.HasPrefix(parts[i], "pod") && hex64.MatchString(parts[i+1]) {
			return parts[i+1]
		}
	}
	return ""
}

// redactEnv applies the environment policy: values are replaced unless
// their name is kept; an entry without "=" is replaced whole.
func (en *enricher) redactEnv(e *event.Event) {
	switch en.envMode {
	case "none":
		e.Environment = nil
		e.EnvironmentTruncated = false
		return
	case "full":
		return
	}
	for i, kv := range e.Environment {
		name, _, ok := strings.Cut(kv, "=")
		switch {
		case !ok:
			e.Environment[i] = "<redacted>"
			e.EnvironmentRedacted = true
		case !en.keepEnv[name]:
			e.Environment[i] = name + "=<redacted>"
			e.EnvironmentRedacted = true
		}
	}
}

// resolveFiles stats the file the caller named and reads its #! line, as
// the caller would have seen it: through its root, cwd or dirfd.
func (en *enricher) resolveFiles(e *event.Event, c *caller) {
	fd, display, sharedRoot, ok := en.openCallerFile(e, c)
	if !ok {
		return
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return
	}
	// Our own view of the opened file names it with symlinks resolved,
	// which is what the kernel hooks report; it is only the caller's view
	// when both share a root.
	if sharedRoot {
		if p, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd)); err == nil {
			display = p
		}
	}
	e.Binary = &event.Binary{
		Path:        display,
		DeviceID:    st.Dev,
		InodeNumber: st.Ino,
		Ctime:       uint64(st.Ctim.Sec)*1e9 + uint64(st.Ctim.Nsec),
		InodeMode:   st.Mode,
		Source:      event.SourceUserspace,
	}
	if en.loaderCouldRun(e, fd, &st) {
		if interp, ok := en.interpreter(fd, &st); ok {
			e.InterpreterPath = interp
			e.InterpreterSource = event.SourceUserspace
		}
	}
	if e.Stage == event.StageUnknown {
		e.Stage = userspaceStage(e)
	}
}

// openCallerFile opens (O_PATH) the file the caller named, as the caller
// would have found it. sharedView tells that the caller's root is named
// "/" from here, so that our view of the file is the caller's.
func (en *enricher) openCallerFile(e *event.Event, c *caller) (fd int, display string, sharedView, ok bool) {
	f := en.callerPath(e, c)
	if !f.ok {
		return -1, "", false, false
	}
	dir := f.rootDir()
	fd, err := f.openIn(dir, unix.O_PATH)
	dir.close()
	switch {
	case err != nil:
	case f.held != nil:
		sharedView = f.held.slash
	default:
		link, _ := os.Readlink(f.root)
		sharedView = link == "/" && en.procRoot == hostProcRoot
	}
	if err != nil {
		// Diagnosis asks the same: the file is not there.
		c.files.missing = err == unix.ENOENT
		return -1, "", false, false
	}
	return fd, f.display, sharedView, true
}

// interpreter reads the interpreter the open file fd names, once per
// version of the file: a write or chmod moves its ctime, and with it the
// key.
func (en *enricher) interpreter(fd int, st *unix.Stat_t) (string, bool) {
	key := fileKey{dev: st.Dev, ino: st.Ino, ctime: statCtime(st), mtime: st.Mtim.Sec*1e9 + st.Mtim.Nsec, size: st.Size}
	if in, ok := en.interps.get(key); ok {
		return in.path, in.ok
	}
	path, ok := readInterpreter(fmt.Sprintf("/proc/self/fd/%d", fd))
	// Stat again: a file changed while it was read is not cached under
	// the version it was before.
	var after unix.Stat_t
	if err := unix.Fstat(fd, &after); err == nil && statCtime(&after) == key.ctime {
		en.interps.put(key, interpreter{path: path, ok: ok})
	}
	return path, ok
}

// loaderCouldRun tells whether exec got as far as a binary format handler
// for this file, so that its #! line is evidence: a regular file the caller
// may execute, on a mount that allows exec, and a failure the loader can
// produce. Supplementary groups are not known here and count as "other".
func (en *enricher) loaderCouldRun(e *event.Event, fd int, st *unix.Stat_t) bool {
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return false
	}
	switch e.Error {
	case "E2BIG", "ETXTBSY", "ENOTDIR", "ELOOP", "EFAULT", "ENAMETOOLONG":
		return false
	}
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err == nil && fs.Flags&unix.ST_NOEXEC != 0 {
		return false
	}
	p := &e.Process
	var bit uint32
	switch {
	case p.EUID == 0:
		bit = 0o111
	case p.EUID == st.Uid:
		bit = 0o100
	case p.GID == st.Gid:
		bit = 0o010
	default:
		bit = 0o001
	}
	return st.Mode&bit != 0
}

// userspaceStage places a failure from evidence userspace can see: the
// loader refused the format, or the interpreter the #! line names is
// missing.
func userspaceStage(e *event.Event) string {
	switch {
	case e.Error == "ENOEXEC":
		return event.StageLoader
	case e.InterpreterPath != "" && e.Binary != nil && e.Error == "ENOENT":
		return event.StageLoader
	}
	return event.StageUnknown
}

// callerPath maps the exec's path to a path we can open: under the
// caller's root for absolute paths, its cwd for relative ones, its dirfd
// for execveat. It is worked out once per failure.
func (en *enricher) callerPath(e *event.Event, c *caller) callerFiles {
	if !c.located {
		c.files, c.located = en.locateFiles(e, c), true
	}
	return c.files
}

func (en *enricher) locateFiles(e *event.Event, c *caller) callerFiles {
	pid := e.Process.PID
	p := e.Path
	atFDCWD := e.Dirfd == nil || *e.Dirfd == unix.AT_FDCWD
	f := callerFiles{root: en.proc(pid, "root"), procDir: en.proc(pid)}
	gone := en.procs.exitedBefore(pid, c.at)
	// A caller met before whose root is one held open (init's, the
	// daemon's) has its absolute paths found from there.
	alive := false
	if !gone && path.IsAbs(p) {
		var held *heldRoot
		var checked, running bool
		en.procs.with(pid, c.at, func(h *procHandle, now bool) {
			held, _ = h.sharedRoot(c.root, en.procs.held)
			if held == nil && !now {
				now = !h.exited()
			}
			checked, running = h.rootChecked, now
		})
		if held != nil {
			// The record is the handle's process's; whether that still
			// runs is asked only by a diagnosis that reads its /proc.
			f := heldFiles(held, p, running)
			f.unchecked = !running
			return f
		}
		// A handle that checked its root is on a process still running.
		alive = checked && running
	}
	// A zombie keeps /proc/<pid> but no longer answers for its root, cwd
	// or descriptors.
	if !gone && !alive {
		before := en.procs.now()
		var st unix.Stat_t
		err := unix.Stat(f.root+"/", &st)
		alive = err == nil
		if err == unix.ENOENT {
			en.procs.noteGone(pid, before)
		}
	}
	f.alive = alive
	if !alive {
		root, held, ok := en.standInRoot(e, c.root)
		if !ok {
			return callerFiles{}
		}
		if held != nil {
			switch {
			case path.IsAbs(p):
				return heldFiles(held, p, false)
			case p != "" && atFDCWD && path.IsAbs(e.Process.Cwd):
				return heldFiles(held, cwdWalk(e.Process.Cwd, p), false)
			}
			return callerFiles{}
		}
		f.root, f.procDir = root, path.Dir(root)
	}
	switch {
	case p == "" && e.Flags != nil && *e.Flags&unix.AT_EMPTY_PATH != 0 && !atFDCWD && alive:
		f.target = en.proc(pid, "fd", strconv.Itoa(int(*e.Dirfd)))
		f.display, _ = os.Readlink(f.target)
	case p == "":
		return callerFiles{}
	case path.IsAbs(p):
		f.inRoot(p)
	case atFDCWD && alive:
		f.target, f.display = en.proc(pid, "cwd", p), path.Join(e.Process.Cwd, p)
		f.base, f.rel = en.proc(pid, "cwd"), p
		if path.IsAbs(e.Process.Cwd) {
			f.escape = e.Process.Cwd + "/" + p
		}
	case atFDCWD && path.IsAbs(e.Process.Cwd):
		f.inRoot(cwdWalk(e.Process.Cwd, p))
	case alive:
		fdPath := en.proc(pid, "fd", strconv.Itoa(int(*e.Dirfd)))
		dir, _ := os.Readlink(fdPath)
		f.target, f.display = fdPath+"/"+p, path.Join(dir, p)
		f.base, f.rel = fdPath, p
	default:
		return callerFiles{}
	}
	f.ok = true
	return f
}

// standInRoot finds, for a caller that is gone, a root that is the
// caller's - the same directory in the same mount namespace, as the kernel
// recorded at the failure: one held open, else its parent's, else init's.
func (en *enricher) standInRoot(e *event.Event, cr callerRoot) (string, *heldRoot, bool) {
	if !cr.known {
		return "", nil, false
	}
	if h := en.procs.heldFor(cr); h != nil {
		return h.prefix, h, true
	}
	for _, pid := range []uint32{e.Process.PPID, 1} {
		if pid == 0 {
			continue
		}
		root := en.proc(pid, "root")
		var st unix.Stat_t
		if err := unix.Stat(root+"/", &st); err != nil || st.Dev != cr.dev || st.Ino != cr.ino {
			continue
		}
		if ns, err := os.Readlink(en.proc(pid, "ns", "mnt")); err != nil || ns != fmt.Sprintf("mnt:[%d]", cr.mntNS) {
			continue
		}
		return root, nil, true
	}
	return "", nil, false
}

// readInterpreter returns the interpreter a file names: its #! line, or
// an ELF program's PT_INTERP (the dynamic loader, whose absence makes exec
// fail with ENOENT although the program exists).
func readInterpreter(file string) (string, bool) {
	if interp, ok := readShebang(file); ok {
		return interp, true
	}
	f, err := elf.Open(file)
	if err != nil {
		return "", false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP || p.Filesz == 0 || p.Filesz > 4096 {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return "", false
		}
		return string(bytes.TrimRight(b, "\x00")), true
	}
	return "", false
}

// readShebang returns the interpreter a #! line names, parsed the way the
// kernel's script loader does: within the first 256 bytes, leading blanks
// skipped, the name ending at a blank, newline or NUL - so a CRLF line
// keeps its "\r".
func readShebang(file string) (string, bool) {
	f, err := os.Open(file)
	if err != nil {
		return "", false
	}
	defer f.Close()
	buf := make([]byte, 256)
	n, _ := f.Read(buf)
	return parseShebang(buf[:n])
}

func parseShebang(b []byte) (string, bool) {
	if !bytes.HasPrefix(b, []byte("#!")) {
		return "", false
	}
	b = b[2:]
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	} else if len(b) >= 254 {
		// The kernel refuses a line that does not end in the buffer when
		// the interpreter name would be cut.
		return "", false
	}
	b = bytes.TrimLeft(b, " \t")
	end := bytes.IndexFunc(b, func(r rune) bool { return r == ' ' || r == '\t' || r == 0 })
	if end >= 0 {
		b = b[:end]
	}
	if len(b) == 0 {
		return "", false
	}
	return string(b), true
}
