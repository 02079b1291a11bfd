// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/execfaild/execfaild/probe/event"
)

func fixtureEnricher(t *testing.T, procRoot string, mutate func(*Config)) *enricher {
	t.Helper()
	cfg := DefaultConfig()
	cfg.ProcRoot = procRoot
	if mutate != nil {
		mutate(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	return newEnricher(cfg)
}

func TestEnrichFromProcFixture(t *testing.T) {
	en := fixtureEnricher(t, "testdata/proc", nil)
	e := &event.Event{
		Path:        "./deploy.sh",
		Process:     event.Process{PID: 4242, PPID: 4200},
		Environment: []string{"PATH=/bin", "TOKEN=s3cret", "HOME=/root", "garbage-without-equals"},
	}
	e.SetErrno(-2)
	en.enrich(e, false)
	checks := []struct{ name, got, want string }{
		{"exe", e.Process.Exe, "/usr/bin/deployer"},
		{"cwd", e.Process.Cwd, "/srv/app"},
		{"cgroup", e.Process.Cgroup, "/system.slice/deployer.service"},
		{"unit", e.Process.Unit, "deployer.service"},
		{"container_id", e.Process.ContainerID, ""},
		{"parent.comm", e.Parent.Comm, "systemd"},
		{"parent.exe", e.Parent.Exe, "/usr/lib/systemd/systemd"},
		{"environment", strings.Join(e.Environment, "|"), "PATH=/bin|TOKEN=<redacted>|HOME=/root|<redacted>"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
		}
	}
	if e.Parent.PID != 4200 {
		t.Errorf("parent.pid %d", e.Parent.PID)
	}
	if !e.EnvironmentRedacted {
		t.Error("environment_redacted not set")
	}
	if e.Binary != nil {
		t.Errorf("binary %+v resolved although the kernel hooks were asked to", e.Binary)
	}
}

func TestEnrichGoneProcess(t *testing.T) {
	en := fixtureEnricher(t, "testdata/proc", nil)
	e := &event.Event{Path: "/x", Process: event.Process{PID: 999999, PPID: 999998}}
	e.SetErrno(-2)
	en.enrich(e, true)
	if e.Process.Exe != "" || e.Process.Cwd != "" || e.Process.Cgroup != "" || e.Binary != nil {
		t.Errorf("invented fields for a process that is gone: %+v binary %+v", e.Process, e.Binary)
	}
	if e.Parent == nil || e.Parent.PID != 999998 || e.Parent.Comm != "" {
		t.Errorf("parent %+v, want only the pid", e.Parent)
	}
}

func TestEnvironmentPolicies(t *testing.T) {
	env := []string{"PATH=/bin", "AWS_SECRET_ACCESS_KEY=abc", "LANG=C"}
	cases := []struct {
		mode, keep string
		want       string
		redacted   bool
	}{
		{"redact", "PATH,LANG", "PATH=/bin|AWS_SECRET_ACCESS_KEY=<redacted>|LANG=C", true},
		{"redact", "", "PATH=<redacted>|AWS_SECRET_ACCESS_KEY=<redacted>|LANG=<redacted>", true},
		{"full", "", "PATH=/bin|AWS_SECRET_ACCESS_KEY=abc|LANG=C", false},
		{"none", "", "", false},
	}
	for _, c := range cases {
		en := fixtureEnricher(t, "testdata/proc", func(cfg *Config) {
			cfg.Environment = c.mode
			cfg.KeepEnv = nil
			if c.keep != "" {
				cfg.KeepEnv = strings.Split(c.keep, ",")
			}
		})
		e := &event.Event{Environment: append([]string(nil), env...), EnvironmentTruncated: true}
		en.redactEnv(e)
		if got := strings.Join(e.Environment, "|"); got != c.want {
			t.Errorf("%s keep %q: %q, want %q", c.mode, c.keep, got, c.want)
		}
		if e.EnvironmentRedacted != c.redacted {
			t.Errorf("%s: redacted %v, want %v", c.mode, e.EnvironmentRedacted, c.redacted)
		}
		if c.mode == "none" && e.EnvironmentTruncated {
			t.Errorf("none: truncation marked for an environment not captured")
		}
	}
}

func TestReadCgroup(t *testing.T) {
	got, err := readCgroup("testdata/proc/5000/cgroup")
	if err != nil || got != "/docker/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" {
		t.Errorf("v1 named hierarchy: %q %v", got, err)
	}
	if _, err := readCgroup("testdata/proc/1/cgroup"); err == nil {
		t.Error("missing file: no error")
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "cgroup")
	os.WriteFile(f, []byte("3:cpu:/x\n"), 0o644)
	if _, err := readCgroup(f); err == nil || !strings.Contains(err.Error(), "no unified or systemd hierarchy") {
		t.Errorf("no usable hierarchy: %v", err)
	}
}

func TestContainerAndUnit(t *testing.T) {
	id := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	const user = "/user.slice/user-1000.slice/user@1000.service"
	cases := []struct{ cg, id, unit, userUnit string }{
		{"/system.slice/docker-" + id + ".scope", id, "docker-" + id + ".scope", ""},
		{"/system.slice/containerd.service/kubepods-burstable-pod1.slice:cri-containerd:" + id, "", "containerd.service", ""},
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-" + id + ".scope", id, "cri-containerd-" + id + ".scope", ""},
		{"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod2.slice/crio-" + id + ".scope", id, "crio-" + id + ".scope", ""},
		{"/machine.slice/libpod-" + id + ".scope/container", id, "libpod-" + id + ".scope", ""},
		{"/kubepods/burstable/pod6f1c/" + id, id, "", ""},
		{"/kubepods/pod6f1c/" + id, id, "", ""},
		{"/docker/" + id, id, "", ""},
		{"/crio-" + id + ".scope", id, "crio-" + id + ".scope", ""},
		// systemd inside a container: the runtime's scope is the unit.
		{"/system.slice/docker-" + id + ".scope/system.slice/cron.service", id, "docker-" + id + ".scope", ""},
		{"/system.slice/system-getty.slice/getty@tty1.service", "", "getty@tty1.service", ""},
		{"/system.slice/cron.service", "", "cron.service", ""},
		{"/init.scope", "", "init.scope", ""},
		{user + "/app.slice/foo.service", "", "user@1000.service", "foo.service"},
		{user + "/init.scope", "", "user@1000.service", "init.scope"},
		{"/user.slice/user-1000.slice/session-3.scope", "", "session-3.scope", ""},
		{"/user.slice", "", "", ""},
		{"/", "", "", ""},
		{"", "", "", ""},
		// 63 hex digits is not an id, and upper case is not what runtimes write.
		{"/docker/" + id[:63], "", "", ""},
		{"/docker/" + strings.ToUpper(id), "", "", ""},
		{"/system.slice/docker-" + id[:63] + ".scope", "", "docker-" + id[:63] + ".scope", ""},
	}
	for _, c := range cases {
		if got := containerIDFromCgroup(c.cg); got != c.id {
			t.Errorf("container id of %q: %q, want %q", c.cg, got, c.id)
		}
		unit, userUnit := cgroupUnits(c.cg)
		if unit != c.unit || userUnit != c.userUnit {
			t.Errorf("units of %q: %q, user %q; want %q, user %q", c.cg, unit, userUnit, c.unit, c.userUnit)
		}
	}
}

// The spoofed cgroup as enrich reads it from /proc/<pid>/cgroup: the event
// names the user manager, not the unit the user chose, and no container.
func TestEnrichSpoofedUserUnit(t *testing.T) {
	id := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	procRoot := t.TempDir()
	if err := os.MkdirAll(filepath.Join(procRoot, "77"), 0o755); err != nil {
		t.Fatal(err)
	}
	cg := "0::/user.slice/user-1000.slice/user@1000.service/app.slice/docker-" + id + ".scope\n"
	if err := os.WriteFile(filepath.Join(procRoot, "77", "cgroup"), []byte(cg), 0o644); err != nil {
		t.Fatal(err)
	}
	e := &event.Event{Path: "/x", Process: event.Process{PID: 77}}
	e.SetErrno(-2)
	fixtureEnricher(t, procRoot, nil).enrich(e, false)
	if e.Process.Unit != "user@1000.service" || e.Process.ContainerID != "" {
		t.Errorf("unit %q, container %q; want user@1000.service and none", e.Process.Unit, e.Process.ContainerID)
	}
	if want := "docker-" + id + ".scope"; e.Process.UserUnit != want {
		t.Errorf("user_unit %q, want %q", e.Process.UserUnit, want)
	}
}

// A user names their own units and cgroups: none of it may pass for a
// system unit or a container. Each case is what one command creates.
func TestUnitAndContainerNotSpoofable(t *testing.T) {
	id := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	const user = "/user.slice/user-1000.slice/user@1000.service"
	cases := []struct{ how, cg, unit, userUnit string }{
		{"systemd-run --user --unit=cron", user + "/app.slice/cron.service", "user@1000.service", "cron.service"},
		{"systemd-run --user --scope --unit=docker-<id>", user + "/app.slice/docker-" + id + ".scope", "user@1000.service", "docker-" + id + ".scope"},
		{"systemd-run --user --unit=sshd, nested slice", user + "/app.slice/app-x.slice/sshd.service", "user@1000.service", "sshd.service"},
		{"a user unit named like the system manager", user + "/app.slice/user@0.service", "user@1000.service", "user@0.service"},
		{"mkdir <id> in a delegated user unit", user + "/app.slice/foo.service/" + id, "user@1000.service", "foo.service"},
		{"mkdir docker/<id> in a delegated user unit", user + "/app.slice/foo.service/docker/" + id, "user@1000.service", "foo.service"},
		{"kubepods layout in a delegated user unit", user + "/app.slice/foo.service/kubepods/burstable/pod1/" + id, "user@1000.service", "foo.service"},
		{"a cgroup named like a unit in a delegated user unit", user + "/app.slice/foo.service/cron.service", "user@1000.service", "foo.service"},
		{"mkdir <id> directly under the user manager", user + "/" + id, "user@1000.service", ""},
		{"podman --cgroup-manager=systemd, rootless", user + "/user.slice/libpod-" + id + ".scope/container", "user@1000.service", "libpod-" + id + ".scope"},
		{"a delegated system service naming its own cgroups", "/system.slice/builder.service/docker-" + id + ".scope", "builder.service", ""},
		{"a delegated system service, cgroupfs names", "/system.slice/builder.service/docker/" + id, "builder.service", ""},
	}
	for _, c := range cases {
		unit, userUnit := cgroupUnits(c.cg)
		if unit != c.unit || userUnit != c.userUnit {
			t.Errorf("%s: units %q, user %q; want %q, user %q", c.how, unit, userUnit, c.unit, c.userUnit)
		}
		if got := containerIDFromCgroup(c.cg); got != "" {
			t.Errorf("%s: container id %q from %q", c.how, got, c.cg)
		}
	}
}

func TestParseShebang(t *testing.T) {
	cases := []struct {
		in   string
		want string
		ok   bool
	}{
		{"#!/bin/sh\n", "/bin/sh", true},
		{"#!/bin/bash\r\necho\r\n", "/bin/bash\r", true},
		{"#! \t/usr/bin/env python3\n", "/usr/bin/env", true},
		{"#!/bin/sh", "/bin/sh", true},
		{"#!\n", "", false},
		{"#!   \n", "", false},
		{"echo hi\n", "", false},
		{"\x7fELF", "", false},
		{"", "", false},
	}
	for _, c := range cases {
		got, ok := parseShebang([]byte(c.in))
		if got != c.want || ok != c.ok {
			t.Errorf("%q: %q %v, want %q %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// userspaceLab is a procfs fixture whose cwd link points at a real
// directory, so tracepoint-mode resolution stats real files.
func userspaceLab(t *testing.T) (procRoot, dir string) {
	t.Helper()
	procRoot, dir = t.TempDir(), t.TempDir()
	pd := filepath.Join(procRoot, "4242")
	os.MkdirAll(filepath.Join(pd, "fd"), 0o755)
	os.Symlink(dir, filepath.Join(pd, "cwd"))
	os.Symlink(dir, filepath.Join(pd, "fd", "7"))
	os.Symlink("/", filepath.Join(pd, "root"))
	return procRoot, dir
}

func TestUserspaceBinaryAndInterpreter(t *testing.T) {
	procRoot, dir := userspaceLab(t)
	script := filepath.Join(dir, "deploy.sh")
	if err := os.WriteFile(script, []byte("#!/bin/bash\r\necho hi\r\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(script, &st); err != nil {
		t.Fatal(err)
	}
	en := fixtureEnricher(t, procRoot, nil)

	for _, c := range []struct {
		name  string
		path  string
		dirfd *int32
	}{
		{"cwd-relative", "./deploy.sh", nil},
		{"dirfd-relative", "deploy.sh", ptr(int32(7))},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := &event.Event{Path: c.path, Dirfd: c.dirfd, Process: event.Process{PID: 4242, EUID: 0}}
			e.SetErrno(-2)
			en.enrich(e, true)
			if e.Binary == nil {
				t.Fatal("binary not resolved")
			}
			b := e.Binary
			if b.Path != script || b.InodeNumber != st.Ino || b.DeviceID != st.Dev || b.InodeMode != st.Mode || b.Source != event.SourceUserspace {
				t.Errorf("binary %+v, want path %s ino %d dev %d mode %o from userspace", b, script, st.Ino, st.Dev, st.Mode)
			}
			if want := uint64(st.Ctim.Sec)*1e9 + uint64(st.Ctim.Nsec); b.Ctime != want {
				t.Errorf("ctime %d, want %d", b.Ctime, want)
			}
			if e.InterpreterPath != "/bin/bash\r" || e.InterpreterSource != event.SourceUserspace {
				t.Errorf("interpreter %q from %q", e.InterpreterPath, e.InterpreterSource)
			}
			if e.Stage != event.StageLoader {
				t.Errorf("stage %q, want loader for a missing interpreter", e.Stage)
			}
		})
	}
}

func TestUserspaceNoInterpreterWhenLoaderCannotRun(t *testing.T) {
	procRoot, dir := userspaceLab(t)
	// Not executable: exec refuses it at open, so its #! line says nothing.
	p := filepath.Join(dir, "notes.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Executable only by its owner, and the caller is someone else.
	q := filepath.Join(dir, "owner-only.sh")
	if err := os.WriteFile(q, []byte("#!/bin/sh\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	en := fixtureEnricher(t, procRoot, nil)
	for _, c := range []struct {
		path string
		euid uint32
	}{{"notes.sh", 0}, {"owner-only.sh", 4321}} {
		e := &event.Event{Path: c.path, Process: event.Process{PID: 4242, EUID: c.euid, GID: 4321}}
		e.SetErrno(-13)
		en.enrich(e, true)
		if e.Binary == nil {
			t.Errorf("%s: binary not resolved", c.path)
		}
		if e.InterpreterPath != "" || e.Stage != event.StageUnknown {
			t.Errorf("%s: interpreter %q stage %q, want neither", c.path, e.InterpreterPath, e.Stage)
		}
	}
}

func TestUserspaceMissingFile(t *testing.T) {
	procRoot, _ := userspaceLab(t)
	en := fixtureEnricher(t, procRoot, nil)
	e := &event.Event{Path: "does-not-exist", Process: event.Process{PID: 4242}}
	e.SetErrno(-2)
	en.enrich(e, true)
	if e.Binary != nil || e.InterpreterPath != "" || e.Stage != event.StageUnknown {
		t.Errorf("binary %+v interpreter %q stage %q for a missing file", e.Binary, e.InterpreterPath, e.Stage)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		mutate func(*Config)
		key    string
	}{
		{func(c *Config) { c.Mode = "ebpf" }, "probe.mode"},
		{func(c *Config) { c.MaxArgs = 0 }, "probe.max_args"},
		{func(c *Config) { c.MaxArgs = maxArgsCap + 1 }, "probe.max_args"},
		{func(c *Config) { c.MaxEnv = -1 }, "probe.max_env"},
		{func(c *Config) { c.MaxArgLen = maxArgLenCap + 1 }, "probe.max_arg_len"},
		{func(c *Config) { c.Environment = "secret" }, "probe.environment"},
		{func(c *Config) { c.RingBufferBytes = 3 << 20 }, "probe.ring_buffer_bytes"},
		{func(c *Config) { c.Transport = "bpf" }, "probe.transport"},
	}
	for _, c := range cases {
		cfg := DefaultConfig()
		c.mutate(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), c.key+":") {
			t.Errorf("error %v, want one naming %s", err, c.key)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("defaults rejected: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

// writeELF writes the smallest ELF the loader code looks at: a header and
// one PT_INTERP program header naming interp.
func writeELF(t *testing.T, file, interp string) {
	t.Helper()
	str := append([]byte(interp), 0)
	hdr := elf.Header64{
		Type: uint16(elf.ET_EXEC), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Phoff: 64, Ehsize: 64, Phentsize: 56, Phnum: 1,
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	hdr.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	prog := elf.Prog64{Type: uint32(elf.PT_INTERP), Flags: uint32(elf.PF_R), Off: 64 + 56,
		Filesz: uint64(len(str)), Memsz: uint64(len(str)), Align: 1}
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, &hdr)
	binary.Write(&b, binary.LittleEndian, &prog)
	b.Write(str)
	if err := os.WriteFile(file, b.Bytes(), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestReadInterpreterELF(t *testing.T) {
	dir := t.TempDir()
	musl := filepath.Join(dir, "musl-prog")
	writeELF(t, musl, "/lib/ld-musl-x86_64.so.1")
	if got, ok := readInterpreter(musl); !ok || got != "/lib/ld-musl-x86_64.so.1" {
		t.Errorf("PT_INTERP %q %v", got, ok)
	}
	// A #! line wins over anything after it; garbage names nothing.
	script := filepath.Join(dir, "script")
	os.WriteFile(script, []byte("#!/bin/sh\n\x7fELF"), 0o755)
	if got, ok := readInterpreter(script); !ok || got != "/bin/sh" {
		t.Errorf("script: %q %v", got, ok)
	}
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, []byte("\x7fELF\x02\x01garbage"), 0o755)
	if got, ok := readInterpreter(junk); ok {
		t.Errorf("truncated ELF: interpreter %q", got)
	}
}

func TestUserspaceMissingELFLoader(t *testing.T) {
	procRoot, dir := userspaceLab(t)
	writeELF(t, filepath.Join(dir, "musl-prog"), "/nonexistent/ld-musl.so.1")
	en := fixtureEnricher(t, procRoot, nil)
	e := &event.Event{Path: "./musl-prog", Process: event.Process{PID: 4242}}
	e.SetErrno(-2)
	en.enrich(e, true)
	if e.InterpreterPath != "/nonexistent/ld-musl.so.1" || e.Stage != event.StageLoader {
		t.Errorf("interpreter %q stage %q, want the missing loader at the loader stage", e.InterpreterPath, e.Stage)
	}
}

// TestProcRootDefault: without a ProcRoot the enricher reads the host's
// procfs, whether the config is the default or built field by field.
func TestProcRootDefault(t *testing.T) {
	for _, cfg := range []Config{DefaultConfig(), {}} {
		if got := newEnricher(cfg).procRoot; got != "/proc" {
			t.Errorf("procRoot = %q, want /proc", got)
		}
	}
}
