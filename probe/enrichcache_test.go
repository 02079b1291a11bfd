// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/execfaild/execfaild/probe/event"
)

func TestReadProcStat(t *testing.T) {
	f := filepath.Join(t.TempDir(), "stat")
	// A comm may hold spaces and parentheses; only the last ')' ends it.
	line := "4200 (a) b (c) S 1 4200 4200 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 209469 2998272 422 18446744073709551615 0\n"
	os.WriteFile(f, []byte(line), 0o644)
	comm, start, ok := readProcStat(f, make([]byte, 512))
	if !ok || comm != "a) b (c" || start != 209469 {
		t.Errorf("got comm %q start %d ok %v, want %q 209469", comm, start, ok, "a) b (c")
	}
	comm, start, ok = readProcStat("/proc/self/stat", make([]byte, 512))
	if !ok || comm == "" || start == 0 {
		t.Errorf("own stat: comm %q start %d ok %v", comm, start, ok)
	}
	if _, _, ok := readProcStat(filepath.Join(t.TempDir(), "gone"), make([]byte, 512)); ok {
		t.Error("a missing stat file parsed")
	}
}

// writeProc makes /proc/<pid> with a stat naming comm and start time and
// an exe link.
func writeProc(t *testing.T, root string, pid int, comm string, start uint64, exe string) {
	t.Helper()
	d := filepath.Join(root, strconv.Itoa(pid))
	os.MkdirAll(d, 0o755)
	stat := strconv.Itoa(pid) + " (" + comm + ") S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 " +
		strconv.FormatUint(start, 10) + " 0 0\n"
	if err := os.WriteFile(filepath.Join(d, "stat"), []byte(stat), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(d, "exe"))
	if err := os.Symlink(exe, filepath.Join(d, "exe")); err != nil {
		t.Fatal(err)
	}
}

// A parent's exe is read once per process: while the same process (pid,
// start time, comm) fails again, the cached exe is used; a reused pid or
// an exec is another process and is read afresh.
func TestParentExeCachedPerProcess(t *testing.T) {
	root := t.TempDir()
	en := fixtureEnricher(t, root, nil)
	parent := func() *event.Parent {
		e := &event.Event{Path: "/x", Process: event.Process{PID: 4300, PPID: 4200}}
		e.SetErrno(-2)
		en.enrich(e, false)
		return e.Parent
	}
	writeProc(t, root, 4200, "bash", 100, "/usr/bin/bash")
	if p := parent(); p.Comm != "bash" || p.Exe != "/usr/bin/bash" {
		t.Fatalf("parent %+v", p)
	}
	// Same process: the link is not read again (a changed fixture link
	// shows whether it was).
	writeProc(t, root, 4200, "bash", 100, "/changed")
	if p := parent(); p.Exe != "/usr/bin/bash" {
		t.Errorf("same process: exe %q, want the cached /usr/bin/bash", p.Exe)
	}
	// The pid reused by a later process.
	writeProc(t, root, 4200, "bash", 250, "/opt/other/bash")
	if p := parent(); p.Exe != "/opt/other/bash" {
		t.Errorf("reused pid: exe %q, want the new process's", p.Exe)
	}
	// The same process after a successful exec: renamed.
	writeProc(t, root, 4200, "python3", 250, "/usr/bin/python3")
	if p := parent(); p.Comm != "python3" || p.Exe != "/usr/bin/python3" {
		t.Errorf("after exec: parent %+v", p)
	}
}

// A cgroup is read once per kernel cgroup id, and only when cgroupfs
// confirms the path /proc shows has that id: a caller that moved to
// another cgroup before /proc was read must not teach the cache a wrong
// path.
func TestCgroupCachedByID(t *testing.T) {
	root, cgRoot := t.TempDir(), t.TempDir()
	en := fixtureEnricher(t, root, nil)
	en.cgroupRoot = cgRoot
	mk := func(path string) uint64 {
		d := filepath.Join(cgRoot, path)
		os.MkdirAll(d, 0o755)
		var st unix.Stat_t
		if err := unix.Stat(d, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	a, b := mk("system.slice/a.service"), mk("system.slice/b.service")
	os.MkdirAll(filepath.Join(root, "4300"), 0o755)
	setCgroup := func(path string) {
		os.WriteFile(filepath.Join(root, "4300", "cgroup"), []byte("0::/"+path+"\n"), 0o644)
	}
	unit := func(id uint64) string {
		e := &event.Event{Path: "/x", Process: event.Process{PID: 4300, CgroupID: id}}
		e.SetErrno(-2)
		en.enrich(e, false)
		return e.Process.Unit
	}
	setCgroup("system.slice/a.service")
	if u := unit(a); u != "a.service" {
		t.Fatalf("unit %q", u)
	}
	// Moved on to b after failing in a: the failure still belongs to a.
	setCgroup("system.slice/b.service")
	if u := unit(a); u != "a.service" {
		t.Errorf("cached cgroup id: unit %q, want a.service", u)
	}
	// Failed in b but already moved back to a when /proc was read: the
	// mismatch is not cached, so b's next failure reads /proc again.
	setCgroup("system.slice/a.service")
	unit(b)
	setCgroup("system.slice/b.service")
	if u := unit(b); u != "b.service" {
		t.Errorf("unconfirmed cgroup was cached: unit %q, want b.service", u)
	}
	if n := en.cgroups.len(); n != 2 {
		t.Errorf("%d cgroups cached, want 2", n)
	}
}

// The interpreter a file names is read once per version of the file;
// rewriting it (a new ctime) is read afresh.
func TestInterpreterCachedByInodeAndCtime(t *testing.T) {
	procRoot, dir := userspaceLab(t)
	script := filepath.Join(dir, "job.sh")
	os.WriteFile(script, []byte("#!/bin/bash\r\n"), 0o755)
	en := fixtureEnricher(t, procRoot, nil)
	interp := func() string {
		e := &event.Event{Path: "./job.sh", Process: event.Process{PID: 4242}}
		e.SetErrno(-2)
		en.enrich(e, true)
		return e.InterpreterPath
	}
	for range 3 {
		if got := interp(); got != "/bin/bash\r" {
			t.Fatalf("interpreter %q", got)
		}
	}
	if n := en.interps.len(); n != 1 {
		t.Errorf("%d interpreter entries after three failures of one file, want 1", n)
	}
	if err := os.WriteFile(script, []byte("#!/usr/bin/env python3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Some filesystems keep ctime in coarse ticks: force a visible change.
	unix.UtimesNano(script, []unix.Timespec{{Sec: 1}, {Sec: 1}})
	if got := interp(); got != "/usr/bin/env" {
		t.Errorf("rewritten file: interpreter %q, want /usr/bin/env", got)
	}
}

// A storm of distinct processes cannot grow a cache past its bound.
func TestEnrichCachesBounded(t *testing.T) {
	var c boundedCache[int, string]
	for i := range 3 * maxCacheEntries {
		c.put(i, strings.Repeat("x", 8))
		if c.len() > maxCacheEntries {
			t.Fatalf("%d entries after %d puts", c.len(), i+1)
		}
	}
}
