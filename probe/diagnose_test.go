// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/execfaild/execfaild/probe/event"
)

// diagnoseFixture runs the enricher and the diagnoser over e the way Read
// does, in a kernel mode (hooks attached) or tracepoint mode.
func diagnoseFixture(t *testing.T, procRoot string, kernelHooks bool, e *event.Event, r *record) {
	t.Helper()
	en := fixtureEnricher(t, procRoot, nil)
	en.enrichWith(e, !kernelHooks, r.caller())
	d := newDiagnoser(en, kernelHooks, true)
	d.lsmFile = filepath.Join(procRoot, "lsm")
	d.diagnose(e, r)
}

func wantCause(t *testing.T, e *event.Event, cause string, inferred bool, says ...string) {
	t.Helper()
	if e.Cause != cause || e.CauseInferred != inferred {
		t.Errorf("cause %q inferred %v, want %q inferred %v (%q)", e.Cause, e.CauseInferred, cause, inferred, e.CauseText)
	}
	for _, s := range says {
		if !strings.Contains(e.CauseText, s) {
			t.Errorf("cause_text %q does not say %q", e.CauseText, s)
		}
	}
}

// aarch64ELF is the start of an ELF header for aarch64 (or x86-64 on
// arm64): a machine this kernel does not run.
func foreignHead() ([]byte, string) {
	m, name := uint16(183), "aarch64"
	if diagArch := newDiagnoser(nil, false, false).arch; diagArch.Native.Machine == 183 {
		m, name = 62, "x86-64"
	}
	return []byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, byte(m), byte(m >> 8)}, name
}

func TestDiagnoseKernelHead(t *testing.T) {
	// The kernel's copy of the first bytes decides; no file is read.
	procRoot, _ := userspaceLab(t)
	head, arch := foreignHead()
	e := &event.Event{Path: "/nonexistent/prog", Process: event.Process{PID: 4242}}
	e.SetErrno(-int32(unix.ENOEXEC))
	r := &record{head: head}
	r.h.Flags = flagHasHead
	r.h.Hooks = hookOpen | hookCreds | hookLoader
	r.h.Loaders = 1
	diagnoseFixture(t, procRoot, true, e, r)
	wantCause(t, e, event.CauseWrongArchitecture, false, "/nonexistent/prog", arch)
}

func TestDiagnoseUserspaceHead(t *testing.T) {
	procRoot, dir := userspaceLab(t)
	head, arch := foreignHead()
	prog := filepath.Join(dir, "prog")
	if err := os.WriteFile(prog, head, 0o755); err != nil {
		t.Fatal(err)
	}
	e := &event.Event{Path: "./prog", Process: event.Process{PID: 4242}}
	e.SetErrno(-int32(unix.ENOEXEC))
	diagnoseFixture(t, procRoot, false, e, &record{})
	wantCause(t, e, event.CauseWrongArchitecture, true, prog, arch)
}

func TestDiagnoseMissingInterpreterUserspace(t *testing.T) {
	procRoot, dir := userspaceLab(t)
	script := filepath.Join(dir, "run.py")
	if err := os.WriteFile(script, []byte("#!/nonexistent/python4 -u\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e := &event.Event{Path: script, Process: event.Process{PID: 4242}}
	e.SetErrno(-int32(unix.ENOENT))
	diagnoseFixture(t, procRoot, false, e, &record{})
	wantCause(t, e, event.CauseInterpreterMissing, true, script, "/nonexistent/python4")
}

func TestDiagnoseNotFoundKernel(t *testing.T) {
	// No hook fired: the path did not resolve; the nearest existing
	// directory is looked up through the caller's root.
	procRoot, dir := userspaceLab(t)
	missing := filepath.Join(dir, "a", "b", "prog")
	e := &event.Event{Path: missing, Process: event.Process{PID: 4242}}
	e.SetErrno(-int32(unix.ENOENT))
	diagnoseFixture(t, procRoot, true, e, &record{})
	wantCause(t, e, event.CauseNotFound, false, missing, "nearest existing directory is "+dir)
}

func TestDiagnoseNotExecutableForCaller(t *testing.T) {
	// The caller's credentials come from its status: uid 1000 without
	// capabilities, and a file only its owner, root, may execute.
	procRoot, dir := userspaceLab(t)
	prog := filepath.Join(dir, "tool")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o744); err != nil {
		t.Fatal(err)
	}
	os.Chmod(prog, 0o744)
	// Searchable by anyone (t.TempDir's are 0700), so only the file's own
	// mode stands in the way.
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	status := "Name:\ttool\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nGroups:\t27 1000\nCapEff:\t0000000000000000\nSeccomp:\t0\n"
	if err := os.WriteFile(filepath.Join(procRoot, "4242", "status"), []byte(status), 0o644); err != nil {
		t.Fatal(err)
	}
	e := &event.Event{Path: prog, Process: event.Process{PID: 4242, UID: 1000, EUID: 1000, GID: 1000}}
	e.SetErrno(-int32(unix.EACCES))
	diagnoseFixture(t, procRoot, true, e, &record{})
	var st unix.Stat_t
	unix.Stat(prog, &st)
	if st.Uid == 1000 {
		t.Skip("the fixture's owner is the caller")
	}
	wantCause(t, e, event.CauseNotExecutable, true, prog, "mode 0744", "uid 1000")
}

func TestDiagnoseTextBusyWriter(t *testing.T) {
	procRoot, dir := userspaceLab(t)
	prog := filepath.Join(dir, "busy")
	if err := os.WriteFile(prog, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	pd := filepath.Join(procRoot, "4242")
	os.MkdirAll(filepath.Join(pd, "fdinfo"), 0o755)
	os.Symlink(prog, filepath.Join(pd, "fd", "9"))
	os.WriteFile(filepath.Join(pd, "fdinfo", "9"), []byte("pos:\t0\nflags:\t0100001\nmnt_id:\t1\n"), 0o644)
	os.WriteFile(filepath.Join(pd, "fdinfo", "7"), []byte("pos:\t0\nflags:\t0100000\n"), 0o644)
	e := &event.Event{Path: prog, Process: event.Process{PID: 4242}}
	e.SetErrno(-int32(unix.ETXTBSY))
	diagnoseFixture(t, procRoot, true, e, &record{})
	wantCause(t, e, event.CauseTextBusy, false, prog, "by the caller itself (pid 4242, fd 9)")
}

func TestDiagnoseArgumentsMeasured(t *testing.T) {
	procRoot, _ := userspaceLab(t)
	os.WriteFile(filepath.Join(procRoot, "4242", "limits"),
		[]byte("Limit                     Soft Limit           Hard Limit           Units\nMax stack size            8388608              unlimited            bytes\n"), 0o644)
	e := &event.Event{Path: "/bin/tool", Process: event.Process{PID: 4242}}
	e.SetErrno(-int32(unix.E2BIG))
	r := &record{}
	r.h.ArgBytes, r.h.ArgStrings, r.h.ArgLongest = 3<<20, 1000, 4000
	diagnoseFixture(t, procRoot, true, e, r)
	wantCause(t, e, event.CauseArgumentListTooLong, false, "/bin/tool", "1000 strings of 3145728 bytes", "limit of 2097152", "8388608-byte stack limit")
}

func TestDiagnoseNoexecMountName(t *testing.T) {
	// The mount point comes from the caller's mount table, unescaped.
	procRoot, _ := userspaceLab(t)
	mi := "22 1 0:21 / / rw - ext4 /dev/vda rw\n" +
		"40 22 0:40 / /srv/my\\040dir rw,nosuid,noexec - tmpfs tmpfs rw\n"
	os.WriteFile(filepath.Join(procRoot, "4242", "mountinfo"), []byte(mi), 0o644)
	loc := location{procDir: filepath.Join(procRoot, "4242"), cwd: "/"}
	if got := noexecMount(loc, "/srv/my dir/bin/x"); got != "/srv/my dir" {
		t.Errorf("noexec mount %q, want %q", got, "/srv/my dir")
	}
	if got := noexecMount(loc, "/srv/mydir2/x"); got != "" {
		t.Errorf("noexec mount %q for a path outside it", got)
	}
}

func TestDirsFrom(t *testing.T) {
	for _, c := range []struct {
		start, last string
		want        string
	}{
		{"/", "/srv/a", "/ /srv /srv/a"},
		{"/", "/", "/"},
		{"/home/u", "/home/u/bin", "/home/u /home/u/bin"},
		{"/home/u", "/etc", ""},
	} {
		if got := strings.Join(dirsFrom(c.start, c.last), " "); got != c.want {
			t.Errorf("dirsFrom(%q, %q) = %q, want %q", c.start, c.last, got, c.want)
		}
	}
}

// BenchmarkDiagnoseNotFound: what a storm of plain ENOENT costs the
// diagnosis in a kernel mode (the nearest existing directory is looked
// up) and in tracepoint mode (a stat of the program as well).
func BenchmarkDiagnoseNotFound(b *testing.B) {
	for _, kernel := range []bool{true, false} {
		b.Run(map[bool]string{true: "kernel", false: "tracepoint"}[kernel], func(b *testing.B) {
			procRoot, dir := b.TempDir(), b.TempDir()
			pd := filepath.Join(procRoot, "4242")
			os.MkdirAll(pd, 0o755)
			os.Symlink("/", filepath.Join(pd, "root"))
			os.Symlink(dir, filepath.Join(pd, "cwd"))
			cfg := DefaultConfig()
			cfg.ProcRoot = procRoot
			d := newDiagnoser(newEnricher(cfg), kernel, true)
			r := &record{}
			for b.Loop() {
				e := &event.Event{Path: filepath.Join(dir, "missing"), Process: event.Process{PID: 4242}}
				e.SetErrno(-int32(unix.ENOENT))
				d.diagnose(e, r)
			}
		})
	}
}
