// SPDX-License-Identifier: Apache-2.0

package diagnose

import (
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/execfaild/execfaild/probe/event"
)

var amd64 = ArchOf("amd64")

// elfHead is the first 20 bytes of an ELF header: class, byte order, type
// and machine.
func elfHead(class, data byte, typ, machine uint16) []byte {
	b := []byte{0x7f, 'E', 'L', 'F', class, data, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if data == 2 {
		return append(b, byte(typ>>8), byte(typ), byte(machine>>8), byte(machine))
	}
	return append(b, byte(typ), byte(typ>>8), byte(machine), byte(machine>>8))
}

func TestDiagnose(t *testing.T) {
	root := Creds{Known: true, DACOverride: true, DACSearch: true}
	user := Creds{Known: true, UID: 1000, GID: 1000, Groups: []uint32{27}}
	reg := func(mode uint32) File {
		return File{Path: "/srv/app/run", Stat: true, Mode: unix.S_IFREG | mode}
	}
	for _, c := range []struct {
		name     string
		ev       Evidence
		cause    string
		inferred bool
		says     []string
	}{
		{"plain ENOENT, kernel", Evidence{Errno: unix.ENOENT, KernelHooks: true, Program: File{Path: "/opt/x/bin/tool"}, NearestParent: "/opt"},
			event.CauseNotFound, false, []string{"/opt/x/bin/tool does not exist", "nearest existing directory is /opt"}},
		{"plain ENOENT, userspace", Evidence{Errno: unix.ENOENT, Program: File{Path: "/opt/tool", Stat: true, Missing: true}, NearestParent: "/opt"},
			event.CauseNotFound, true, []string{"/opt/tool does not exist"}},
		{"ENOENT, file exists now, no interpreter seen", Evidence{Errno: unix.ENOENT, Program: File{Path: "/opt/tool", Stat: true}},
			event.CauseNotFound, true, []string{"/opt/tool, or an interpreter it names, does not exist"}},
		{"script interpreter, kernel", Evidence{Errno: unix.ENOENT, KernelHooks: true, Opened: true, InterpTried: true, Loaders: 1,
			Interp: "/usr/bin/python4", InterpKernel: true, Program: File{Path: "/srv/run.py", Head: []byte("#!/usr/bin/python4\n"), HeadKernel: true}},
			event.CauseInterpreterMissing, false, []string{"/usr/bin/python4", "/srv/run.py"}},
		{"script interpreter, userspace", Evidence{Errno: unix.ENOENT, Interp: "/usr/bin/python4",
			Program: File{Path: "/srv/run.py", Stat: true, Head: []byte("#!/usr/bin/python4\n")}, Interpreter: &File{Path: "/usr/bin/python4", Stat: true, Missing: true}},
			event.CauseInterpreterMissing, true, []string{"/usr/bin/python4", "/srv/run.py"}},
		{"CRLF", Evidence{Errno: unix.ENOENT, KernelHooks: true, Opened: true, InterpTried: true, Loaders: 1,
			Interp: "/bin/bash\r", InterpKernel: true, Program: File{Path: "/srv/deploy.sh", Head: []byte("#!/bin/bash\r\n"), HeadKernel: true}},
			event.CauseInterpreterCRLF, false, []string{"/srv/deploy.sh", `"/bin/bash\r"`, "CRLF"}},
		{"musl loader, kernel", Evidence{Errno: unix.ENOENT, KernelHooks: true, Opened: true, InterpTried: true, Loaders: 1,
			Interp: "/lib/ld-musl-x86_64.so.1", InterpKernel: true, Program: File{Path: "/usr/local/bin/app", Head: elfHead(2, 1, 3, 62), HeadKernel: true}},
			event.CauseELFInterpreterMissing, false, []string{"/usr/local/bin/app", "/lib/ld-musl-x86_64.so.1", "musl"}},
		{"nested: the script's interpreter needs a missing loader", Evidence{Errno: unix.ENOENT, KernelHooks: true, Opened: true, InterpTried: true, Loaders: 2,
			Interp: "/opt/bin/tool", InterpKernel: true, Program: File{Path: "/srv/s", Head: []byte("#!/opt/bin/tool\n"), HeadKernel: true},
			Interpreter: &File{Path: "/opt/bin/tool", Stat: true, Head: elfHead(2, 1, 2, 62), Interp: "/lib/ld-musl-x86_64.so.1", InterpMissing: true}},
			event.CauseELFInterpreterMissing, true, []string{"/srv/s", "/opt/bin/tool", "/lib/ld-musl-x86_64.so.1"}},
		{"aarch64 on x86_64", Evidence{Errno: unix.ENOEXEC, Program: File{Path: "/bin/arm", Head: elfHead(2, 1, 2, 183), HeadKernel: true}},
			event.CauseWrongArchitecture, false, []string{"/bin/arm", "aarch64 (64-bit)", "x86-64 (64-bit)", "binfmt_misc"}},
		{"big-endian ppc, userspace", Evidence{Errno: unix.ENOEXEC, Program: File{Path: "/bin/p", Head: elfHead(2, 2, 2, 21)}},
			event.CauseWrongArchitecture, true, []string{"ppc64 (64-bit, big-endian)"}},
		{"i386 refused", Evidence{Errno: unix.ENOEXEC, Program: File{Path: "/bin/old", Head: elfHead(1, 1, 2, 3), HeadKernel: true}},
			event.CauseWrongArchitecture, false, []string{"/bin/old", "i386 (32-bit)"}},
		{"object file", Evidence{Errno: unix.ENOEXEC, Program: File{Path: "/tmp/a.o", Head: elfHead(2, 1, 1, 62), HeadKernel: true}},
			event.CauseNotAProgram, false, []string{"/tmp/a.o", "relocatable object"}},
		{"runnable ELF refused", Evidence{Errno: unix.ENOEXEC, Program: File{Path: "/bin/broken", Head: elfHead(2, 1, 2, 62), HeadKernel: true}},
			event.CauseUnknown, false, []string{"/bin/broken", "refused the rest of its headers"}},
		{"text without #!", Evidence{Errno: unix.ENOEXEC, Program: File{Path: "/srv/job", Head: []byte("echo hi\nexit 0\n"), HeadKernel: true}},
			event.CauseNotAProgram, false, []string{"/srv/job", `"echo hi"`, "#!/bin/sh"}},
		{"HTML page", Evidence{Errno: unix.ENOEXEC, Program: File{Path: "/usr/local/bin/kubectl", Head: []byte("<!DOCTYPE html>\n<html>"), HeadKernel: true}},
			event.CauseNotAProgram, false, []string{"/usr/local/bin/kubectl is an HTML page"}},
		{"empty file", Evidence{Errno: unix.ENOEXEC, Program: File{Path: "/bin/e", Head: []byte{}, HeadKernel: true}},
			event.CauseNotAProgram, false, []string{"/bin/e is empty"}},
		{"binary garbage", Evidence{Errno: unix.ENOEXEC, Program: File{Path: "/bin/g", Head: []byte{0, 1, 2, 3}, HeadKernel: true}},
			event.CauseNotAProgram, false, []string{"/bin/g", "00 01 02 03"}},
		{"script whose interpreter is for another machine", Evidence{Errno: unix.ENOEXEC, Interp: "/opt/arm/sh", InterpKernel: true,
			Program: File{Path: "/srv/s", Head: []byte("#!/opt/arm/sh\n"), HeadKernel: true}, Interpreter: &File{Path: "/opt/arm/sh", Head: elfHead(2, 1, 2, 183)}},
			event.CauseWrongArchitecture, true, []string{"the interpreter /opt/arm/sh of the script /srv/s", "aarch64"}},
		{"ENOEXEC unreadable", Evidence{Errno: unix.ENOEXEC, Program: File{Path: "/bin/x"}},
			event.CauseUnknown, true, []string{"/bin/x", "could not be read"}},
		{"no x bit for anyone", Evidence{Errno: unix.EACCES, KernelHooks: true, Caller: root, Program: reg(0o644)},
			event.CauseNotExecutable, true, []string{"/srv/app/run", "mode 0644", "chmod +x"}},
		{"x for owner only", Evidence{Errno: unix.EACCES, Caller: user, Program: reg(0o744)},
			event.CauseNotExecutable, true, []string{"mode 0744", "uid 1000"}},
		{"x through a supplementary group", Evidence{Errno: unix.EACCES, Caller: user, Program: func() File { f := reg(0o750); f.GID = 27; return f }()},
			event.CauseSecurityPolicy, true, []string{"passes the permission and mount checks"}},
		{"noexec mount", Evidence{Errno: unix.EACCES, Caller: root, Program: func() File { f := reg(0o755); f.Noexec, f.NoexecMount = true, "/tmp"; return f }()},
			event.CauseNoexecMount, true, []string{"/srv/app/run is on /tmp, which is mounted noexec"}},
		{"noexec before the x bit", Evidence{Errno: unix.EACCES, Caller: root, Program: func() File { f := reg(0o644); f.Noexec = true; return f }()},
			event.CauseNoexecMount, true, []string{"mounted noexec"}},
		{"unsearchable directory", Evidence{Errno: unix.EACCES, Caller: user, Program: File{Path: "/srv/private/run"},
			Unsearchable: &Dir{Path: "/srv/private", Mode: unix.S_IFDIR | 0o700}},
			event.CauseDirectoryNotSearchable, true, []string{"uid 1000 may not search /srv/private", "mode 0700", "/srv/private/run"}},
		{"directory", Evidence{Errno: unix.EACCES, Caller: root, Program: File{Path: "/srv", Stat: true, Mode: unix.S_IFDIR | 0o755}},
			event.CauseIsADirectory, true, []string{"/srv is a directory"}},
		{"fifo", Evidence{Errno: unix.EACCES, Caller: root, Program: File{Path: "/run/p", Stat: true, Mode: unix.S_IFIFO | 0o755}},
			event.CauseNotExecutable, true, []string{"/run/p is a named pipe"}},
		{"EACCES after open: LSM, kernel", Evidence{Errno: unix.EACCES, KernelHooks: true, Opened: true, LSMs: []string{"lockdown", "capability", "apparmor"}, Program: reg(0o755)},
			event.CauseSecurityPolicy, false, []string{"/srv/app/run", "credentials check", "active: apparmor"}},
		{"EACCES, checks pass now", Evidence{Errno: unix.EACCES, Caller: root, Program: reg(0o755), LSMs: []string{"landlock"}},
			event.CauseSecurityPolicy, true, []string{"/srv/app/run passes", "landlock"}},
		{"EACCES on the interpreter", Evidence{Errno: unix.EACCES, Caller: root, KernelHooks: true, Opened: true, InterpTried: true, Program: reg(0o755),
			Interpreter: &File{Path: "/opt/sh", Stat: true, Mode: unix.S_IFREG | 0o644}},
			event.CauseNotExecutable, true, []string{"the interpreter /opt/sh of /srv/app/run", "mode 0644"}},
		{"EACCES on a noexec interpreter, the program opened", Evidence{Errno: unix.EACCES, Caller: root, KernelHooks: true, Opened: true, InterpTried: true,
			Program: File{Path: "/srv/s"}, Interpreter: &File{Path: "/mnt/usb/sh", Stat: true, Mode: unix.S_IFREG | 0o755, Noexec: true, NoexecMount: "/mnt/usb"}},
			event.CauseNoexecMount, true, []string{"the interpreter /mnt/usb/sh of /srv/s is on /mnt/usb"}},
		{"EACCES, nothing inspectable", Evidence{Errno: unix.EACCES, Program: File{Path: "/x"}},
			event.CauseUnknown, true, []string{"/x", "noexec", "execute permission"}},
		{"EPERM under seccomp", Evidence{Errno: unix.EPERM, Seccomp: true, Program: File{Path: "/bin/sh"}},
			event.CauseSecurityPolicy, true, []string{"/bin/sh", "seccomp"}},
		{"EPERM, nothing known", Evidence{Errno: unix.EPERM, Program: File{Path: "/bin/sh"}},
			event.CauseUnknown, false, []string{"/bin/sh", "operation not permitted (EPERM)"}},
		{"text busy, writer known", Evidence{Errno: unix.ETXTBSY, Program: File{Path: "/srv/app"}, Writer: "pid 42 (cp)"},
			event.CauseTextBusy, false, []string{"/srv/app is open for writing by pid 42 (cp)"}},
		{"E2BIG, captured only", Evidence{Errno: unix.E2BIG, Program: File{Path: "/bin/x"}, ArgBytes: 4200, ArgBytesAtLeast: true, ArgLimit: ArgLimit(8 << 20), StackLimit: 8 << 20},
			event.CauseArgumentListTooLong, false, []string{"/bin/x", "at least 4200 bytes", "131072", "2097152", "8388608"}},
		{"E2BIG, one string too long", Evidence{Errno: unix.E2BIG, Program: File{Path: "/bin/x"}, ArgMeasured: true, ArgBytes: 131200, ArgStrings: 3, ArgLongest: 131074, ArgLimit: ArgLimit(8 << 20)},
			event.CauseArgumentListTooLong, false, []string{"/bin/x", "has 131074 bytes", "limit of 131072 for one string", "all 3 strings: 131200 bytes"}},
		{"E2BIG, all together too long", Evidence{Errno: unix.E2BIG, Program: File{Path: "/bin/x"}, ArgMeasured: true, ArgBytes: 3 << 20, ArgStrings: 40000, ArgLongest: 100, ArgLimit: ArgLimit(8 << 20), StackLimit: 8 << 20},
			event.CauseArgumentListTooLong, false, []string{"40000 strings of 3145728 bytes", "320000 bytes of pointers", "limit of 2097152", "8388608-byte stack limit"}},
		{"symlink loop", Evidence{Errno: unix.ELOOP, KernelHooks: true, Program: File{Path: "/a"}, Loop: []string{"/a", "/b", "/a"}},
			event.CauseSymlinkLoop, false, []string{"/a -> /b -> /a"}},
		{"symlink loop, userspace", Evidence{Errno: unix.ELOOP, Program: File{Path: "/a"}, Loop: []string{"/a", "/b", "/a"}},
			event.CauseSymlinkLoop, true, []string{"/a -> /b -> /a"}},
		{"interpreters too deep", Evidence{Errno: unix.ELOOP, KernelHooks: true, Loaders: 6, Program: File{Path: "/s"}},
			event.CauseUnknown, false, []string{"/s", "nest deeper"}},
		{"not a directory", Evidence{Errno: unix.ENOTDIR, Program: File{Path: "/etc/passwd/x"}, NotDir: "/etc/passwd"},
			event.CauseNotADirectory, false, []string{"/etc/passwd is not a directory", "/etc/passwd/x"}},
		{"EISDIR", Evidence{Errno: unix.EISDIR, Program: File{Path: "/srv"}}, event.CauseIsADirectory, false, []string{"/srv is a directory"}},
		{"EFAULT", Evidence{Errno: unix.EFAULT, Program: File{Path: ""}}, event.CauseUnknown, false, []string{"bad address (EFAULT)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.ev.Arch.Native == (Machine{}) {
				c.ev.Arch = amd64
			}
			r := Diagnose(&c.ev)
			if r.Cause != c.cause || r.Inferred != c.inferred {
				t.Errorf("cause %q inferred %v, want %q inferred %v (text %q)", r.Cause, r.Inferred, c.cause, c.inferred, r.Text)
			}
			for _, s := range c.says {
				if !strings.Contains(r.Text, s) {
					t.Errorf("text %q does not say %q", r.Text, s)
				}
			}
			if strings.Contains(r.Text, "\r") || strings.Contains(r.Text, "\n") {
				t.Errorf("text %q holds a raw control character", r.Text)
			}
		})
	}
}

func TestArgLimit(t *testing.T) {
	for _, c := range []struct{ stack, want uint64 }{
		{8 << 20, 2 << 20},
		{0, 6 << 20},
		{64 << 20, 6 << 20},
		{256 << 10, 128 << 10},
	} {
		if got := ArgLimit(c.stack); got != c.want {
			t.Errorf("ArgLimit(%d) = %d, want %d", c.stack, got, c.want)
		}
	}
}

func TestEveryCauseIsKnown(t *testing.T) {
	// Every code Diagnose can return is one the schema lists.
	known := map[string]bool{}
	for _, c := range event.Causes {
		known[c] = true
	}
	for _, e := range []unix.Errno{unix.ENOENT, unix.ENOEXEC, unix.EACCES, unix.EPERM, unix.ETXTBSY, unix.E2BIG, unix.ELOOP, unix.ENOTDIR, unix.EISDIR, unix.EFAULT, unix.ENOMEM} {
		r := Diagnose(&Evidence{Errno: e, Arch: ArchOf(runtime.GOARCH)})
		if !known[r.Cause] || r.Text == "" {
			t.Errorf("%v: cause %q text %q", e, r.Cause, r.Text)
		}
	}
}
