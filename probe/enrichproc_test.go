// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/execfaild/execfaild/probe/event"
)

// chrootHelperEnv makes this test binary, re-executed, chroot into the
// directory it names and wait for its stdin to close.
const chrootHelperEnv = "EXECFAILD_TEST_CHROOT_HOLD"

func init() {
	dir := os.Getenv(chrootHelperEnv)
	if dir == "" {
		return
	}
	if err := unix.Chroot(dir); err != nil {
		os.Exit(3)
	}
	unix.Chdir("/")
	io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// needRoot skips outside CI and fails in CI, which runs as root.
func needRoot(t *testing.T, why string) {
	t.Helper()
	if unix.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("needs root (%s): CI runs the tests as root", why)
	}
	t.Skipf("needs root (%s)", why)
}

// program copies sleep(1) to dir/name, so that a process running it has
// comm name and exe dir/name.
func program(t *testing.T, dir, name string) string {
	t.Helper()
	src, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep(1) to copy")
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// sleepCmd runs a copy of sleep(1) made by program. argv[0] stays "sleep":
// where sleep is busybox, argv[0] picks the applet, while the task's name
// and exe still come from the copy's path.
func sleepCmd(path string) *exec.Cmd {
	cmd := exec.Command(path, "600")
	cmd.Args[0] = "sleep"
	return cmd
}

// busyboxSleep tells whether sleep(1) here is busybox, whose copies run
// only when argv[0] names the applet.
func busyboxSleep() bool {
	p, err := exec.LookPath("sleep")
	if err != nil {
		return false
	}
	r, err := filepath.EvalSymlinks(p)
	return err == nil && filepath.Base(r) == "busybox"
}

// started runs cmd until the test ends.
func started(t *testing.T, cmd *exec.Cmd) *exec.Cmd {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	execDone(t, cmd)
	return cmd
}

// execDone waits until cmd's process runs its program: Start returns once
// the new image's memory is in place (the vfork release), before the
// kernel renames the task and, on some kernels, before /proc shows the new
// exe.
func execDone(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	exe, err := filepath.EvalSymlinks(cmd.Path)
	if err != nil {
		t.Fatal(err)
	}
	comm := filepath.Base(cmd.Path)
	if len(comm) > 15 {
		comm = comm[:15]
	}
	pid := uint32(cmd.Process.Pid)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		b, _ := os.ReadFile(procFile(pid, "comm"))
		got, _ := os.Readlink(procFile(pid, "exe"))
		if strings.TrimSpace(string(b)) == comm && got == exe {
			return
		}
	}
	t.Fatalf("process %d never became %s (%s)", pid, comm, exe)
}

// reap kills cmd and waits for it: from then on its pid may be reused.
func reap(cmd *exec.Cmd) {
	cmd.Process.Kill()
	cmd.Wait()
}

// startAsPid starts the command mk makes with the pid a reaped process
// had, by setting the pid namespace's last allocated pid just below it
// (the way checkpoint/restore does). Other processes forking meanwhile
// may take it: then the attempt is repeated.
func startAsPid(t *testing.T, pid int, mk func() *exec.Cmd) *exec.Cmd {
	t.Helper()
	for range 1000 {
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0); err != nil {
			t.Skipf("cannot choose the next pid: %v", err)
		}
		cmd := mk()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if cmd.Process.Pid == pid {
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			execDone(t, cmd)
			return cmd
		}
		reap(cmd)
	}
	t.Skipf("pid %d was taken by other processes in 1000 attempts", pid)
	return nil
}

// parentOf enriches a failure whose caller's parent is ppid.
func parentOf(en *enricher, ppid int) *event.Parent {
	e := &event.Event{Path: "/x", Process: event.Process{PID: uint32(os.Getpid()), PPID: uint32(ppid)}}
	e.SetErrno(-2)
	en.enrich(e, false)
	return e.Parent
}

// A reused pid is another process: a parent named once through a handle
// on the pid's earlier owner must not lend that name to the new one. A
// cache keyed by pid alone answers "alpha" for bravo here.
func TestParentHandleNotFooledByPidReuse(t *testing.T) {
	needRoot(t, "choosing the next pid")
	dir := t.TempDir()
	alpha, bravo := program(t, dir, "alpha"), program(t, dir, "bravo")
	en := newEnricher(DefaultConfig())
	t.Cleanup(en.close)

	a := started(t, sleepCmd(alpha))
	pid := a.Process.Pid
	for i := range 2 {
		if p := parentOf(en, pid); p.Comm != "alpha" || p.Exe != alpha {
			t.Fatalf("failure %d: parent %+v, want alpha", i+1, p)
		}
	}
	if n := en.procs.len(); n != 1 {
		t.Fatalf("%d handles after the second failure under one parent, want 1", n)
	}

	reap(a)
	startAsPid(t, pid, func() *exec.Cmd { return sleepCmd(bravo) })
	for i := range 3 {
		if p := parentOf(en, pid); p.Comm != "bravo" || p.Exe != bravo {
			t.Errorf("failure %d after pid %d was reused: parent %+v, want bravo", i+1, pid, p)
		}
	}
	if n := en.procs.len(); n != 1 {
		t.Errorf("%d handles, want the new process's only", n)
	}
}

// A parent that execs keeps its pid and its handle, but is renamed: the
// next failure names what it runs now.
func TestParentHandleFollowsExec(t *testing.T) {
	pid, charlie, shExe, execNow := shellThatExecs(t, "charlie")
	en := newEnricher(DefaultConfig())
	t.Cleanup(en.close)
	for range 2 {
		if p := parentOf(en, pid); p.Exe != shExe {
			t.Fatalf("parent %+v, want exe %s", p, shExe)
		}
	}
	execNow()
	if p := parentOf(en, pid); p.Comm != "charlie" || p.Exe != charlie {
		t.Errorf("after exec: parent %+v, want charlie", p)
	}
	if n := en.procs.len(); n != 1 {
		t.Errorf("%d handles, want the one on the process that exec'd", n)
	}
}

// shellThatExecs starts a shell that execs a copy of sleep(1) named name
// when execNow is called, which returns once it has.
func shellThatExecs(t *testing.T, name string) (pid int, prog, shExe string, execNow func()) {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	if busyboxSleep() {
		// The shell's exec sets argv[0] to the path: a busybox copy
		// would not know which applet it is.
		t.Skip("sleep(1) is busybox here: a renamed copy run by sh exits at once")
	}
	prog = program(t, t.TempDir(), name)
	cmd := exec.Command(sh, "-c", `read line; exec "$0" 600`, prog)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	started(t, cmd)
	pid = cmd.Process.Pid
	shExe, _ = os.Readlink(procFile(uint32(pid), "exe"))
	return pid, prog, shExe, func() {
		in.Write([]byte("\n"))
		waitComm(t, pid, name)
	}
}

func waitComm(t *testing.T, pid int, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if b, _ := os.ReadFile(procFile(uint32(pid), "comm")); strings.TrimSpace(string(b)) == want {
			return
		}
	}
	t.Fatalf("process %d never became %s", pid, want)
}

// kernelRoot is what the kernel records of pid's root at a failure.
func kernelRoot(t *testing.T, pid int) callerRoot {
	t.Helper()
	var st, ns unix.Stat_t
	if err := unix.Stat(procFile(uint32(pid), "root")+"/", &st); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(procFile(uint32(pid), "ns/mnt"), &ns); err != nil {
		t.Fatal(err)
	}
	return callerRoot{known: true, mntNS: uint32(ns.Ino), dev: st.Dev, ino: st.Ino}
}

// binaryOf enriches, in tracepoint mode, pid's failure to exec path.
func binaryOf(en *enricher, pid int, path string, cr callerRoot) *event.Binary {
	e := &event.Event{Path: path, Process: event.Process{PID: uint32(pid)}}
	e.SetErrno(-13)
	en.enrichWith(e, true, &caller{root: cr})
	return e.Binary
}

// The caller's absolute path is resolved from the daemon's root only for
// a process found to share it: a reused pid whose new process is
// chrooted elsewhere has its path resolved under its own root. A cache
// keyed by pid alone finds the first process's file.
func TestCallerRootNotFooledByPidReuse(t *testing.T) {
	needRoot(t, "chroot and choosing the next pid")
	dir, path, jail, ino := jailedTwin(t)
	en, a, pid, cr := alphaCaller(t, dir)
	for i := range 2 {
		if b := binaryOf(en, pid, path, cr); b == nil || b.InodeNumber != ino["/"] {
			t.Fatalf("failure %d: binary %+v, want inode %d", i+1, b, ino["/"])
		}
	}
	if h := en.procs.m[uint32(pid)]; h == nil || h.root == nil {
		t.Fatalf("after the caller's second failure: handle %+v, want one sharing a held root", h)
	}

	reap(a)
	startAsPid(t, pid, chrootHelper(t, jail))
	waitRoot(t, pid, jail)
	cr = kernelRoot(t, pid)
	for i := range 3 {
		if b := binaryOf(en, pid, path, cr); b == nil || b.InodeNumber != ino[jail] {
			t.Errorf("failure %d after pid %d was reused by a chrooted process: binary %+v, want inode %d", i+1, pid, b, ino[jail])
		}
	}
}

// jailedTwin makes a file at path both under "/" and under jail, and
// returns their inodes by root.
func jailedTwin(t *testing.T) (dir, path, jail string, ino map[string]uint64) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, "bin", "tool")
	jail = filepath.Join(dir, "jail")
	ino = map[string]uint64{}
	for _, root := range []string{"/", jail} {
		p := filepath.Join(root, path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		unix.Stat(p, &st)
		ino[root] = st.Ino
	}
	return dir, path, jail, ino
}

// chrootHelper makes commands running this test binary chrooted into
// dir, until the test ends.
func chrootHelper(t *testing.T, dir string) func() *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The helper holds on until its stdin closes.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(); r.Close() })
	return func() *exec.Cmd {
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), chrootHelperEnv+"="+dir)
		cmd.Stdin = r
		return cmd
	}
}

// A chroot into a bind mount of "/" has the very directory the daemon
// has for root, and the kernel records nothing else: only the mount tells
// them apart. Paths under the daemon's other mounts (here /proc) are not
// in that chroot, and must not be found from the daemon's root.
func TestCallerRootBindMountOfRootNotShared(t *testing.T) {
	needRoot(t, "bind mount and chroot")
	jail := filepath.Join(t.TempDir(), "jail")
	os.Mkdir(jail, 0o755)
	if err := unix.Mount("/", jail, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("bind mount: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(jail, unix.MNT_DETACH) })
	en := newEnricher(DefaultConfig())
	t.Cleanup(en.close)
	b := started(t, chrootHelper(t, jail)())
	pid := b.Process.Pid
	waitRoot(t, pid, jail)
	cr := kernelRoot(t, pid)
	if !slices.ContainsFunc(en.procs.held, func(r *heldRoot) bool { return r.cr == cr }) {
		t.Fatalf("the chroot's root %+v is not recorded as a held root: the case is not made", cr)
	}
	for i := range 3 {
		if b := binaryOf(en, pid, "/proc/version", cr); b != nil {
			t.Errorf("failure %d: binary %+v found outside the caller's root", i+1, b)
		}
	}
	if h := en.procs.m[uint32(pid)]; h == nil || !h.rootChecked || h.root != nil {
		t.Errorf("handle %+v, want one that found the root not shared", h)
	}
}

// waitRoot waits until the chroot helper pid has both chrooted to want
// and changed into it: the two are separate calls, and a test that starts
// between them sees the new root with the old working directory.
func waitRoot(t *testing.T, pid int, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		root, _ := os.Readlink(procFile(uint32(pid), "root"))
		cwd, _ := os.Readlink(procFile(uint32(pid), "cwd"))
		if root == want && cwd == want {
			return
		}
	}
	t.Fatalf("process %d never chrooted to %s and changed into it", pid, want)
}

// Handles are opened for processes that fail again, bounded, and all
// closed with the enricher.
func TestProcHandlesBoundedAndClosed(t *testing.T) {
	sleep := program(t, t.TempDir(), "sleeper")
	var pids []int
	for range maxProcHandles + 10 {
		pids = append(pids, started(t, sleepCmd(sleep)).Process.Pid)
	}
	before := openFDs(t)
	en := newEnricher(DefaultConfig())
	parentOf(en, pids[0])
	if n := en.procs.len(); n != 0 {
		t.Fatalf("%d handles after one failure, want none (a one-shot process costs nothing)", n)
	}
	for _, pid := range pids {
		parentOf(en, pid)
		parentOf(en, pid)
		if n := en.procs.len(); n > maxProcHandles {
			t.Fatalf("%d handles, bound %d", n, maxProcHandles)
		}
	}
	if en.procs.len() == 0 {
		t.Fatal("no handles held")
	}
	en.close()
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors open after close, %d before", after, before)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// failureAt enriches, in tracepoint mode, a failure of pid to exec path
// that the kernel recorded at time at (the records' clock).
func failureAt(en *enricher, pid int, path string, cr callerRoot, at uint64) (*event.Binary, *caller) {
	e := &event.Event{Path: path, Process: event.Process{PID: uint32(pid)}}
	e.SetErrno(-13)
	c := &caller{root: cr, at: at}
	en.enrichWith(e, true, c)
	return e.Binary, c
}

// alphaCaller starts a copy of sleep(1) named alpha under dir, with a
// fresh enricher, and returns its process and the root the kernel would
// record for it.
func alphaCaller(t *testing.T, dir string) (en *enricher, a *exec.Cmd, pid int, cr callerRoot) {
	t.Helper()
	en = newEnricher(DefaultConfig())
	t.Cleanup(en.close)
	a = started(t, sleepCmd(program(t, dir, "alpha")))
	pid = a.Process.Pid
	return en, a, pid, kernelRoot(t, pid)
}

// goneCaller runs a caller sharing a held root, notes its root and a time
// it ran at, and reaps it.
func goneCaller(t *testing.T, dir string) (en *enricher, pid int, cr callerRoot, at uint64) {
	t.Helper()
	en, a, pid, cr := alphaCaller(t, dir)
	if en.procs.heldFor(cr) == nil {
		t.Skipf("the caller's root %+v is not one held open here", cr)
	}
	at = en.procs.now()
	reap(a)
	return en, pid, cr, at
}

// A storm's records are read after their callers have exited. The first
// record of a caller gone finds so; that caller's other records, made
// before, are known gone without asking /proc again, and are resolved from
// the held root the kernel's record names: the file the caller would
// have found.
func TestGoneCallerResolvedFromHeldRoot(t *testing.T) {
	needRoot(t, "holding init's root")
	dir := t.TempDir()
	tool := program(t, dir, "tool")
	var st unix.Stat_t
	if err := unix.Stat(tool, &st); err != nil {
		t.Fatal(err)
	}
	en, pid, cr, at := goneCaller(t, dir)
	for i := range 3 {
		b, c := failureAt(en, pid, tool, cr, at+uint64(i))
		if b == nil || b.InodeNumber != st.Ino {
			t.Errorf("record %d of the caller gone: binary %+v, want inode %d", i+1, b, st.Ino)
		}
		if c.files.held == nil {
			t.Errorf("record %d of the caller gone: resolved under %q, want a held root", i+1, c.files.root)
		}
		if !en.procs.exitedBefore(uint32(pid), at) {
			t.Errorf("after record %d the caller's exit is not known", i+1)
		}
	}
	if _, ok := en.procs.m[uint32(pid)]; ok {
		t.Errorf("a handle is held on pid %d, whose process is gone", pid)
	}
}

// That a pid's process has exited holds for records made before it was
// found so, not after: a new process with the pid, chrooted elsewhere, has
// its path resolved under its own root. Keyed by pid alone, its records
// would be taken for the old process's and stand in for a root not its.
func TestGoneCallerNotFooledByPidReuse(t *testing.T) {
	needRoot(t, "chroot and choosing the next pid")
	dir, path, jail, ino := jailedTwin(t)
	en, a, pid, cr := alphaCaller(t, dir)
	at := en.procs.now()
	reap(a)
	if b, _ := failureAt(en, pid, path, cr, at); b == nil || b.InodeNumber != ino["/"] {
		t.Fatalf("the gone caller's record: binary %+v, want inode %d", b, ino["/"])
	}
	if !en.procs.exitedBefore(uint32(pid), at) {
		t.Fatal("the caller's exit is not known: the case is not made")
	}

	startAsPid(t, pid, chrootHelper(t, jail))
	waitRoot(t, pid, jail)
	cr = kernelRoot(t, pid)
	for i := range 3 {
		b, c := failureAt(en, pid, path, cr, en.procs.now())
		if b == nil || b.InodeNumber != ino[jail] {
			t.Errorf("record %d of the process reusing pid %d: binary %+v (under %q), want inode %d", i+1, pid, b, c.files.root, ino[jail])
		}
	}
}

// A caller gone whose root is a held one is diagnosed from there, and the
// mount table read is that root's namespace's: a noexec mount is named.
func TestGoneCallerNoexecMountNamed(t *testing.T) {
	needRoot(t, "mounting a noexec tmpfs")
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	if err := unix.Mount("tmpfs", mnt, "tmpfs", unix.MS_NOEXEC, ""); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	tool := filepath.Join(mnt, "tool")
	if err := os.WriteFile(tool, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	en, pid, cr, at := goneCaller(t, dir)
	d := newDiagnoser(en, false, true)
	for i := range 2 {
		e := &event.Event{Path: tool, Process: event.Process{PID: uint32(pid), Cwd: "/"}}
		e.SetErrno(-13)
		r := &record{}
		r.who, r.whoRead = caller{root: cr, at: at + uint64(i)}, true
		en.enrichWith(e, true, r.caller())
		d.diagnose(e, r)
		if e.Cause != event.CauseNoexecMount || !strings.Contains(e.CauseText, mnt+", which is mounted noexec") {
			t.Errorf("record %d of the caller gone: cause %q (%q), want %q naming %s", i+1, e.Cause, e.CauseText, event.CauseNoexecMount, mnt)
		}
		if r.who.files.held == nil {
			t.Errorf("record %d of the caller gone: resolved under %q, want a held root", i+1, r.who.files.root)
		}
	}
}

// A record is its caller's even when it is read after the caller exited
// and another process took its pid: a record made while the handle's
// process was seen running is resolved as that process would have, and
// only a record made later is the new process's. Asking /proc whether
// "the pid" is alive, as before, resolved the old record under the new
// process's root.
func TestRecordReadAfterPidReuseKeepsItsCaller(t *testing.T) {
	needRoot(t, "chroot and choosing the next pid")
	dir, path, jail, ino := jailedTwin(t)
	en, a, pid, crA := alphaCaller(t, dir)
	for i := range 2 {
		if b, _ := failureAt(en, pid, path, crA, en.procs.now()); b == nil || b.InodeNumber != ino["/"] {
			t.Fatalf("record %d while the caller runs: binary %+v, want inode %d", i+1, b, ino["/"])
		}
	}
	made := en.procs.now() // a record made now, read later
	if b, _ := failureAt(en, pid, path, crA, en.procs.now()); b == nil || b.InodeNumber != ino["/"] {
		t.Fatalf("record while the caller runs: binary %+v, want inode %d", b, ino["/"])
	}

	reap(a)
	startAsPid(t, pid, chrootHelper(t, jail))
	waitRoot(t, pid, jail)
	if b, c := failureAt(en, pid, path, crA, made); b == nil || b.InodeNumber != ino["/"] {
		t.Errorf("the first caller's record, read after pid %d was reused: binary %+v (under %q), want inode %d", pid, b, c.files.root, ino["/"])
	}
	crB := kernelRoot(t, pid)
	if b, c := failureAt(en, pid, path, crB, en.procs.now()); b == nil || b.InodeNumber != ino[jail] {
		t.Errorf("the new process's record: binary %+v (under %q), want inode %d", b, c.files.root, ino[jail])
	}
}

// parentAt enriches a failure made at time at (the records' clock) whose
// caller's parent is ppid.
func parentAt(en *enricher, ppid int, at uint64) *event.Parent {
	e := &event.Event{Path: "/x", Process: event.Process{PID: uint32(os.Getpid()), PPID: uint32(ppid)}}
	e.SetErrno(-2)
	en.enrichWith(e, false, &caller{at: at})
	return e.Parent
}

// A parent's name read after a record was made is as recent as a new read
// would be, and stands for it; a record made after that read reads the
// name again, and so follows an exec.
func TestParentNameReadOncePerRecordTime(t *testing.T) {
	pid, delta, shExe, execNow := shellThatExecs(t, "delta")
	en := newEnricher(DefaultConfig())
	t.Cleanup(en.close)
	parentAt(en, pid, en.procs.now())
	made := en.procs.now()
	if p := parentAt(en, pid, en.procs.now()); p.Exe != shExe {
		t.Fatalf("parent %+v, want exe %s", p, shExe)
	}
	execNow()
	if p := parentAt(en, pid, made); p.Exe != shExe {
		t.Errorf("a record made before the last read, after the exec: parent %+v, want the name read then (%s)", p, shExe)
	}
	if p := parentAt(en, pid, en.procs.now()); p.Comm != "delta" || p.Exe != delta {
		t.Errorf("a record made after the exec: parent %+v, want delta", p)
	}
}

// jailLink makes name, a path in the chroot jail, a symlink to to.
func jailLink(t *testing.T, jail, name, to string) {
	t.Helper()
	if err := os.Symlink(to, filepath.Join(jail, name)); err != nil {
		t.Fatal(err)
	}
}

// chrootedCaller starts a process chrooted into jail, with a fresh
// enricher, and returns its pid and the root the kernel would record.
func chrootedCaller(t *testing.T, jail string) (en *enricher, pid int, cr callerRoot) {
	t.Helper()
	en = newEnricher(DefaultConfig())
	t.Cleanup(en.close)
	pid = started(t, chrootHelper(t, jail)()).Process.Pid
	waitRoot(t, pid, jail)
	return en, pid, kernelRoot(t, pid)
}

// An absolute symlink on the caller's path points into the caller's root,
// as the kernel followed it for the caller: found through
// /proc/<pid>/root, it would lead back into the daemon's root, to the
// twin file there.
func TestCallerAbsoluteSymlinkStaysInItsRoot(t *testing.T) {
	needRoot(t, "chroot")
	dir, path, jail, ino := jailedTwin(t)
	link := filepath.Join(dir, "link")
	jailLink(t, jail, link, path)
	en, pid, cr := chrootedCaller(t, jail)
	for i := range 2 {
		if b := binaryOf(en, pid, link, cr); b == nil || b.InodeNumber != ino[jail] {
			t.Errorf("failure %d: binary %+v, want the chroot's inode %d (the daemon's twin is %d)", i+1, b, ino[jail], ino["/"])
		}
	}
}

// Diagnosis, too, follows a chrooted caller's absolute symlinks in its
// root: the program it found is not executable (its twin in the daemon's
// root is), and the nearest directory of a missing path is the one the
// caller's link leads to, which the daemon's root does not have.
func TestCallerAbsoluteSymlinkDiagnosedInItsRoot(t *testing.T) {
	needRoot(t, "chroot")
	dir, path, jail, _ := jailedTwin(t)
	if err := os.Chmod(path, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	linkDir := filepath.Join(dir, "linkdir")
	jailLink(t, jail, link, path)
	jailLink(t, jail, linkDir, filepath.Join(dir, "realdir"))
	os.Mkdir(filepath.Join(jail, dir, "realdir"), 0o755)
	en, pid, cr := chrootedCaller(t, jail)
	d := newDiagnoser(en, false, true)
	diagnosed := func(p string, errno int32) *event.Event {
		e := &event.Event{Path: p, Process: event.Process{PID: uint32(pid), Cwd: "/"}}
		e.SetErrno(errno)
		r := &record{}
		r.who, r.whoRead = caller{root: cr, at: en.procs.now()}, true
		en.enrichWith(e, true, r.caller())
		d.diagnose(e, r)
		return e
	}
	if e := diagnosed(link, -13); e.Cause != event.CauseNotExecutable {
		t.Errorf("EACCES through the link: cause %q (%q), want %q", e.Cause, e.CauseText, event.CauseNotExecutable)
	}
	missing := filepath.Join(linkDir, "tool")
	if e := diagnosed(missing, -2); !strings.Contains(e.CauseText, "nearest existing directory is "+linkDir+")") {
		t.Errorf("ENOENT under the linked directory: %q, want the nearest existing directory %s", e.CauseText, linkDir)
	}
}

// A held root other than the daemon's (init's, seen from a sandboxed
// daemon) resolves absolute symlinks in itself too.
func TestHeldRootAbsoluteSymlinkStaysInIt(t *testing.T) {
	needRoot(t, "opening a root held")
	dir, path, jail, ino := jailedTwin(t)
	link := filepath.Join(dir, "link")
	jailLink(t, jail, link, path)
	h := holdRoot(jail, "/proc/self")
	if h == nil || h.slash {
		t.Fatalf("held root %+v, want one that is not the daemon's", h)
	}
	t.Cleanup(func() { unix.Close(h.fd) })
	r := heldRootDir(h)
	defer r.close()
	fd, err := r.open(link, unix.O_PATH)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Ino != ino[jail] {
		t.Errorf("opened inode %d (%v), want the held root's %d (the daemon's twin is %d)", st.Ino, err, ino[jail], ino["/"])
	}
}

// A relative path leaves the caller's cwd as the kernel walked it: an
// absolute symlink, or ".." at the caller's root, goes on in the caller's
// root. Found from /proc/<pid>/cwd, the first leads into the daemon's
// root and the second above the caller's.
func TestCallerRelativePathLeavesCwdInItsRoot(t *testing.T) {
	needRoot(t, "chroot")
	_, path, jail, ino := jailedTwin(t)
	jailLink(t, jail, "/rlink", path)
	en, pid, cr := chrootedCaller(t, jail)
	for _, p := range []string{"rlink", "../" + strings.TrimPrefix(path, "/")} {
		e := &event.Event{Path: p, Process: event.Process{PID: uint32(pid), Cwd: "/"}}
		e.SetErrno(-13)
		en.enrichWith(e, true, &caller{root: cr, at: en.procs.now()})
		if e.Binary == nil || e.Binary.InodeNumber != ino[jail] {
			t.Errorf("%q from the chroot's /: binary %+v, want the chroot's inode %d (the daemon's twin is %d)", p, e.Binary, ino[jail], ino["/"])
		}
	}
}

// The program's path is opened as exec walked it: ".." after a symlink
// goes up from where the link led. Cleaned as a string first, the path
// names another file, here none.
func TestCallerPathDotDotAfterSymlink(t *testing.T) {
	needRoot(t, "holding init's root")
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "a"), 0o755)
	os.MkdirAll(filepath.Join(dir, "b", "c"), 0o755)
	if err := os.Symlink(filepath.Join(dir, "b", "c"), filepath.Join(dir, "a", "link")); err != nil {
		t.Fatal(err)
	}
	x := filepath.Join(dir, "b", "x")
	if err := os.WriteFile(x, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var want unix.Stat_t
	if err := unix.Stat(x, &want); err != nil {
		t.Fatal(err)
	}
	en, _, pid, cr := alphaCaller(t, dir)
	p := filepath.Join(dir, "a", "link") + "/../x"
	for i := range 3 {
		if b := binaryOf(en, pid, p, cr); b == nil || b.InodeNumber != want.Ino {
			t.Errorf("failure %d of %s: binary %+v, want %s's inode %d", i+1, p, b, x, want.Ino)
		}
	}
}
