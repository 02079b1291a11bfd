// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/execfaild/execfaild/probe/event"
)

// rawBuilder assembles a ring buffer record the way bpf/execfaild.bpf.c
// lays it out, so decoding is tested against the layout, not against itself.
type rawBuilder struct {
	h    execfaildEfHeader
	data bytes.Buffer
}

func (b *rawBuilder) strs(ss ...string) (n int) {
	for _, s := range ss {
		b.data.WriteString(s)
		b.data.WriteByte(0)
		n += len(s) + 1
	}
	return n
}

func (b *rawBuilder) bytes(t *testing.T) []byte {
	t.Helper()
	if b.h.DataLen == 0 {
		b.h.DataLen = uint32(b.data.Len())
	}
	out := make([]byte, headerSize)
	if _, err := binary.Encode(out, binary.NativeEndian, &b.h); err != nil {
		t.Fatalf("encode header: %v", err)
	}
	return append(out, b.data.Bytes()...)
}

func comm(s string) (c [16]int8) {
	for i := 0; i < len(s) && i < 15; i++ {
		c[i] = int8(s[i])
	}
	return c
}

// crlfScript is the record the kernel hooks produce for ./deploy.sh whose
// "#!/bin/bash\r" interpreter is missing, run with stdin on a pty.
func crlfScript() *rawBuilder {
	b := &rawBuilder{}
	b.h = execfaildEfHeader{
		Kind: kindFailure, Syscall: syscallExecveat, Hooks: hookOpen | hookCreds | hookLoader | hookInterp,
		Flags: flagHasBinary | flagHasInterp | flagHasStdin | flagHasLoginUID | flagEnvTrunc,
		Ret:   -2, Dirfd: 3, AtFlags: unix.AT_SYMLINK_NOFOLLOW,
		Pid: 4242, Tid: 4243, Ppid: 4200, Uid: 1000, Gid: 1001, Euid: 0, Loginuid: 1000,
		BootNs: 5 * uint64(time.Second), CgroupId: 5123,
		BinIno: 131074, BinCtimeNs: 1700000000123456789, BinDev: 8<<20 | 1, BinMode: 0o100755,
		StdinIno: 3, StdinDev: 0<<20 | 25, StdinMode: 0o20620,
		Comm: comm("deployer"),
	}
	b.h.PathLen = uint16(b.strs("./deploy.sh"))
	b.h.InterpLen = uint16(b.strs("/bin/bash\r"))
	b.h.BinPathLen = uint16(b.strs("deploy.sh", "app", "srv"))
	b.h.BinNcomp = 3
	b.h.StdinPathLen = uint16(b.strs("0", "pts", "dev"))
	b.h.StdinNcomp = 3
	b.h.ArgsLen = uint32(b.strs("./deploy.sh", "", "--x=\x1b[31m"))
	b.h.Argc = 3
	b.h.EnvLen = uint32(b.strs("PATH=/bin", "TOKEN=s3cret"))
	b.h.Envc = 2
	return b
}

func TestDecodeFailure(t *testing.T) {
	raw := crlfScript().bytes(t)
	r, err := decodeRecord(raw)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	e := r.toEvent(func(ns uint64) time.Time { return base.Add(time.Duration(ns)) }, true)

	if got, want := e.Time, base.Add(5*time.Second); !got.Equal(want) {
		t.Errorf("time %v, want %v", got, want)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"return_value", e.ReturnValue, int32(-2)},
		{"error", e.Error, "ENOENT"},
		{"syscall", e.Syscall, event.SyscallExecveat},
		{"dirfd", *e.Dirfd, int32(3)},
		{"flags", *e.Flags, uint32(unix.AT_SYMLINK_NOFOLLOW)},
		{"stage", e.Stage, event.StageLoader},
		{"path", e.Path, "./deploy.sh"},
		{"binary.path", e.Binary.Path, "/srv/app/deploy.sh"},
		{"binary.device_id", e.Binary.DeviceID, uint64(2049)}, // 8:1 as stat(2) reports it
		{"binary.inode_number", e.Binary.InodeNumber, uint64(131074)},
		{"binary.ctime", e.Binary.Ctime, uint64(1700000000123456789)},
		{"binary.inode_mode", e.Binary.InodeMode, uint32(0o100755)},
		{"binary.source", e.Binary.Source, event.SourceKernel},
		{"interpreter_path", e.InterpreterPath, "/bin/bash\r"},
		{"interpreter_source", e.InterpreterSource, event.SourceKernel},
		{"stdin_type", e.StdinType, "chr"},
		{"stdin_mode", *e.StdinMode, uint32(0o20620)},
		{"stdin_path", e.StdinPath, "/dev/pts/0"},
		{"kernel_invoked", e.KernelInvoked, false},
		{"arguments", strings.Join(e.Arguments, "|"), "./deploy.sh||--x=\x1b[31m"},
		{"arguments_truncated", e.ArgumentsTruncated, false},
		{"environment", strings.Join(e.Environment, "|"), "PATH=/bin|TOKEN=s3cret"},
		{"environment_truncated", e.EnvironmentTruncated, true},
		{"pid", e.Process.PID, uint32(4242)},
		{"tid", e.Process.TID, uint32(4243)},
		{"ppid", e.Process.PPID, uint32(4200)},
		{"uid", e.Process.UID, uint32(1000)},
		{"gid", e.Process.GID, uint32(1001)},
		{"euid", e.Process.EUID, uint32(0)},
		{"loginuid", *e.Process.LoginUID, uint32(1000)},
		{"comm", e.Process.Comm, "deployer"},
		{"cgroup_id", e.Process.CgroupID, uint64(5123)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

// The header is copied from the record as bytes: that is only the
// field-by-field decoding when the struct has no padding Go added on its
// own, and every field lands where the C layout puts it.
func TestDecodeHeaderFieldByField(t *testing.T) {
	if n := binary.Size(execfaildEfHeader{}); n != headerSize {
		t.Fatalf("header: %d bytes field by field, %d in memory", n, headerSize)
	}
	var h execfaildEfHeader
	v := reflect.ValueOf(&h).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if !f.CanSet() {
			continue
		}
		switch f.Kind() {
		case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			f.SetUint(uint64(0x0102030405060708*(i+1)) >> (64 - 8*f.Type().Size()))
		case reflect.Int32:
			f.SetInt(-int64(i + 1))
		case reflect.Array:
			for j := range f.Len() {
				f.Index(j).SetInt(int64(i + j))
			}
		}
	}
	h.Kind = kindSuccess
	raw := make([]byte, headerSize)
	if _, err := binary.Encode(raw, binary.NativeEndian, &h); err != nil {
		t.Fatal(err)
	}
	r, err := decodeRecord(raw)
	if err != nil {
		t.Fatal(err)
	}
	if r.h != h {
		t.Errorf("decoded %+v\nencoded %+v", r.h, h)
	}
}

func TestDecodeAbsentFields(t *testing.T) {
	b := &rawBuilder{}
	b.h = execfaildEfHeader{Kind: kindFailure, Syscall: syscallKernel, Ret: -2, Loginuid: 0xffffffff,
		Flags: flagHasLoginUID | flagStdinClosed}
	b.h.PathLen = uint16(b.strs("/sbin/modprobe"))
	r := mustDecode(t, b)
	e := r.toEvent(func(ns uint64) time.Time { return time.Unix(0, int64(ns)) }, false)
	if e.Binary != nil {
		t.Errorf("binary %+v, want absent", e.Binary)
	}
	if e.Dirfd != nil || e.Flags != nil {
		t.Errorf("dirfd/flags set for a kernel exec: %v %v", e.Dirfd, e.Flags)
	}
	if e.Process.LoginUID != nil {
		t.Errorf("loginuid %d, want absent for 4294967295", *e.Process.LoginUID)
	}
	if e.StdinType != "closed" || e.StdinMode != nil {
		t.Errorf("stdin %q %v, want closed without mode", e.StdinType, e.StdinMode)
	}
	if !e.KernelInvoked || e.Syscall != event.SyscallKernel {
		t.Errorf("kernel_invoked %v syscall %q", e.KernelInvoked, e.Syscall)
	}
	if e.Arguments == nil || len(e.Arguments) != 0 {
		t.Errorf("arguments %#v, want an empty list", e.Arguments)
	}
	if e.Stage != event.StageUnknown {
		t.Errorf("stage %q without hooks or open hook, want unknown", e.Stage)
	}
}

func TestDecodeSuccess(t *testing.T) {
	b := &rawBuilder{}
	b.h = execfaildEfHeader{Kind: kindSuccess, Pid: 7, Tid: 8}
	r := mustDecode(t, b)
	if r.h.Kind != kindSuccess || r.h.Pid != 7 || r.h.Tid != 8 {
		t.Errorf("got %+v", r.h)
	}
}

func mustDecode(t *testing.T, b *rawBuilder) record {
	t.Helper()
	r, err := decodeRecord(b.bytes(t))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return r
}

func TestDecodeMalformed(t *testing.T) {
	cases := []struct {
		name string
		raw  func(t *testing.T) []byte
		want string
	}{
		{"short", func(t *testing.T) []byte { return make([]byte, headerSize-1) }, "shorter than its header"},
		{"kind", func(t *testing.T) []byte {
			b := crlfScript()
			b.h.Kind = 9
			return b.bytes(t)
		}, "unknown record kind 9"},
		{"data_len", func(t *testing.T) []byte {
			b := crlfScript()
			b.h.DataLen = uint32(b.data.Len() + 1)
			return b.bytes(t)
		}, "exceeds"},
		{"section overrun", func(t *testing.T) []byte {
			b := crlfScript()
			b.h.EnvLen += 10
			return b.bytes(t)
		}, "decode envp"},
		{"count", func(t *testing.T) []byte {
			b := crlfScript()
			b.h.Argc = 2
			return b.bytes(t)
		}, "3 strings, header says 2"},
		{"unterminated", func(t *testing.T) []byte {
			b := &rawBuilder{}
			b.h = execfaildEfHeader{Kind: kindFailure, PathLen: 3}
			b.data.WriteString("abc")
			return b.bytes(t)
		}, "not NUL-terminated"},
		{"two paths", func(t *testing.T) []byte {
			b := &rawBuilder{}
			b.h = execfaildEfHeader{Kind: kindFailure}
			b.h.PathLen = uint16(b.strs("a", "b"))
			return b.bytes(t)
		}, "where one was expected"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := decodeRecord(c.raw(t))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
	if _, err := decodeRecord(nil); !errors.Is(err, errShort) {
		t.Errorf("nil record: %v", err)
	}
}

func TestDevFromKernel(t *testing.T) {
	cases := []struct {
		major, minor uint32
		want         uint64 // st_dev as glibc's makedev encodes it
	}{
		{8, 1, 2049},
		{259, 3, 66307},
		{0, 300, 1048620},
		{254, 0, 65024},
	}
	for _, c := range cases {
		if got := devFromKernel(c.major<<20 | c.minor); got != c.want {
			t.Errorf("%d:%d: got %d, want %d", c.major, c.minor, got, c.want)
		}
	}
}

func TestStdinNaming(t *testing.T) {
	cases := []struct {
		name     string
		comps    []string
		trunc    bool
		mode     uint32
		ino      uint64
		wantType string
		wantPath string
	}{
		{"tty", []string{"0", "pts", "dev"}, false, 0o20620, 3, "chr", "/dev/pts/0"},
		{"pipe", []string{""}, false, 0o10600, 54217, "fifo", "pipe:[54217]"},
		{"named fifo", []string{"fifo", "tmp"}, false, 0o10644, 9, "fifo", "/tmp/fifo"},
		{"unix socket", []string{"UNIX-STREAM"}, false, 0o140777, 57692, "sock", "socket:[57692]"},
		{"eventfd", []string{"[eventfd]"}, false, 0o600, 12, "anon", "anon_inode:[eventfd]"},
		{"file", []string{"in.txt", "tmp"}, false, 0o100644, 5, "reg", "/tmp/in.txt"},
		{"dir", []string{"etc"}, false, 0o40755, 5, "dir", "/etc"},
		{"deep", []string{"c", "b"}, true, 0o100644, 5, "reg", "…/b/c"},
		{"block", []string{"sda", "dev"}, false, 0o60660, 5, "blk", "/dev/sda"},
	}
	for _, c := range cases {
		if got := FileTypeName(c.mode); got != c.wantType {
			t.Errorf("%s: type %q, want %q", c.name, got, c.wantType)
		}
		if got := stdinPath(c.comps, c.trunc, c.mode, c.ino); got != c.wantPath {
			t.Errorf("%s: path %q, want %q", c.name, got, c.wantPath)
		}
	}
}

func TestStageFromHooks(t *testing.T) {
	cases := []struct {
		hooks    uint16
		openHook bool
		want     string
	}{
		{0, true, event.StagePreOpen},
		{0, false, event.StageUnknown},
		{hookOpen, true, event.StageOpen},
		{hookOpen | hookCreds, true, event.StageCreds},
		{hookCreds, false, event.StageCreds},
		{hookOpen | hookCreds | hookLoader, true, event.StageLoader},
		{hookOpen | hookCreds | hookInterp, true, event.StageLoader},
	}
	for _, c := range cases {
		if got := stageFromHooks(c.hooks, c.openHook); got != c.want {
			t.Errorf("hooks %#x open hook %v: %q, want %q", c.hooks, c.openHook, got, c.want)
		}
	}
}

// TestFileTypeNameUnknown: type bits that name no file type keep their
// octal value in the name.
func TestFileTypeNameUnknown(t *testing.T) {
	if got, want := FileTypeName(0o030600), "unknown(030000)"; got != want {
		t.Errorf("FileTypeName(0o030600) = %q, want %q", got, want)
	}
}

// TestDecodeHead: the program's first bytes sit between the interpreter
// and the binary path as raw bytes, NULs included; a record for an empty
// file carries the flag with no bytes.
func TestDecodeHead(t *testing.T) {
	head := []byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 183, 0}
	for _, c := range []struct {
		name string
		head []byte
	}{{"elf header", head}, {"empty file", []byte{}}} {
		t.Run(c.name, func(t *testing.T) {
			b := &rawBuilder{}
			b.h = execfaildEfHeader{Kind: kindFailure, Ret: -8, Flags: flagHasHead | flagHasInterp | flagHasBinary, Loaders: 1}
			b.h.PathLen = uint16(b.strs("/srv/prog"))
			b.h.InterpLen = uint16(b.strs("/lib/ld.so"))
			b.data.Write(c.head)
			b.h.HeadLen = uint16(len(c.head))
			b.h.BinPathLen = uint16(b.strs("prog", "srv"))
			b.h.BinNcomp = 2
			r, err := decodeRecord(b.bytes(t))
			if err != nil {
				t.Fatal(err)
			}
			if r.head == nil || !bytes.Equal(r.head, c.head) {
				t.Errorf("head %v (nil %v), want %v", r.head, r.head == nil, c.head)
			}
			if r.interp != "/lib/ld.so" || strings.Join(r.binComps, "/") != "prog/srv" {
				t.Errorf("interp %q binary %q: the head was not skipped as raw bytes", r.interp, r.binComps)
			}
		})
	}
	// Without the flag there is no head, even when bytes were announced.
	b := &rawBuilder{}
	b.h = execfaildEfHeader{Kind: kindFailure, Ret: -8}
	b.h.PathLen = uint16(b.strs("/srv/prog"))
	r, err := decodeRecord(b.bytes(t))
	if err != nil || r.head != nil {
		t.Errorf("head %v err %v without the flag", r.head, err)
	}
}
