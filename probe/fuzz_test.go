// SPDX-License-Identifier: Apache-2.0

package probe

// Fuzz targets for what an unprivileged user hands the daemon to parse:
// ring buffer records (their strings are the caller's path, argv and
// environment), the first bytes of any file it execs, and /proc files
// whose contents the caller chooses in part (comm, mount points, cgroup
// names). Each target checks a property of the result, not only that
// nothing panics.

import (
	"bytes"
	"encoding/binary"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/execfaild/execfaild/probe/event"
	"github.com/execfaild/execfaild/probe/internal/provoke"
)

// encodeRaw is rawBuilder.bytes for a fuzz seed (no *testing.T there).
func encodeRaw(b *rawBuilder) []byte {
	if b.h.DataLen == 0 {
		b.h.DataLen = uint32(b.data.Len())
	}
	out := make([]byte, headerSize)
	if _, err := binary.Encode(out, binary.NativeEndian, &b.h); err != nil {
		panic(err)
	}
	return append(out, b.data.Bytes()...)
}

// FuzzDecodeRecord: any bytes either fail to decode or give strings that
// lie within the record's announced and received data, and an event can
// be built from whatever decoded.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRaw(crlfScript()))
	short := crlfScript()
	short.h.DataLen = uint32(short.data.Len()) + 100 // announces more than it carries
	f.Add(encodeRaw(short))
	lying := crlfScript()
	lying.h.Argc = 7 // argv holds three strings
	f.Add(encodeRaw(lying))
	wrapped := crlfScript()
	wrapped.h.StdinPathLen = 0xffff
	f.Add(encodeRaw(wrapped))
	head := &rawBuilder{}
	head.h.Kind, head.h.Flags = kindFailure, flagHasHead|flagHasBinary|flagHasCwd|flagHasExe
	head.data.WriteString("\x7fELF\x02\x01\x01")
	head.h.HeadLen = 7
	head.h.CwdPathLen = uint16(head.strs("", "tmp"))
	head.h.CwdNcomp = 2
	f.Add(encodeRaw(head))
	f.Add(make([]byte, headerSize))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		if r.h.Kind != kindFailure {
			return
		}
		// Every byte taken, NULs included, fits in data_len, which fits
		// in what was received.
		n := len(r.head)
		one := func(s string, present bool) {
			if present {
				n += len(s) + 1
			}
		}
		one(r.path, r.hasPath)
		one(r.interp, r.h.InterpLen > 0)
		for _, l := range [][]string{r.binComps, r.stdinComps, r.cwdComps, r.exeComps, r.args, r.env} {
			for _, s := range l {
				if strings.IndexByte(s, 0) >= 0 {
					t.Fatalf("decoded string %q holds a NUL", s)
				}
				n += len(s) + 1
			}
		}
		if n > int(r.h.DataLen) || int(r.h.DataLen) > len(b)-headerSize {
			t.Fatalf("decoded %d bytes of strings, data_len %d, %d bytes after the header", n, r.h.DataLen, len(b)-headerSize)
		}
		if len(r.args) != int(r.h.Argc) || len(r.env) != int(r.h.Envc) {
			t.Fatalf("%d args and %d env strings, header says %d and %d", len(r.args), len(r.env), r.h.Argc, r.h.Envc)
		}
		data := b[headerSize : headerSize+int(r.h.DataLen)]
		for _, s := range append([]string{r.path, r.interp}, r.args...) {
			if !bytes.Contains(data, []byte(s)) {
				t.Fatalf("decoded %q is not in the record's data", s)
			}
		}
		e := r.toEvent(func(ns uint64) time.Time { return time.Unix(0, int64(ns)) }, true)
		if e.Path != r.path || len(e.Arguments) != len(r.args) {
			t.Fatalf("event path %q / %d args from record %q / %d", e.Path, len(e.Arguments), r.path, len(r.args))
		}
		if len(e.Process.Comm) > len(r.h.Comm) {
			t.Fatalf("comm %q longer than the header's array", e.Process.Comm)
		}
	})
}

// FuzzDecodeRoundTrip lays out a record the way the BPF program does from
// fuzzed strings and checks that decoding gives them back.
func FuzzDecodeRoundTrip(f *testing.F) {
	f.Add("./deploy.sh", "/bin/bash\r", "./deploy.sh\x00\x00--x=\x1b[31m", "PATH=/bin\x00TOKEN=s3cret", "deploy.sh\x00app\x00srv")
	f.Add("", "", "", "", "")
	f.Add("/usr/bin/ünïcode\xff", "#!", "a\x00b\x00c\x00d", "=", "\x00")
	f.Fuzz(func(t *testing.T, path, interp, argv, envp, comps string) {
		// A string the kernel copies ends at its first NUL.
		path, _, _ = strings.Cut(path, "\x00")
		interp, _, _ = strings.Cut(interp, "\x00")
		args, env, bin := strings.Split(argv, "\x00"), strings.Split(envp, "\x00"), strings.Split(comps, "\x00")
		if argv == "" {
			args = nil
		}
		if envp == "" {
			env = nil
		}
		if comps == "" {
			bin = nil
		}
		b := &rawBuilder{}
		b.h.Kind, b.h.Flags = kindFailure, flagHasBinary|flagHasInterp
		if len(path)+1 > 0xffff || len(interp)+1 > 0xffff || len(comps)+1 > 0xffff || len(args) > 0xffff || len(env) > 0xffff {
			return
		}
		b.h.PathLen = uint16(b.strs(path))
		if interp != "" {
			b.h.InterpLen = uint16(b.strs(interp))
		}
		b.h.BinPathLen, b.h.BinNcomp = uint16(b.strs(bin...)), uint16(len(bin))
		b.h.ArgsLen, b.h.Argc = uint32(b.strs(args...)), uint16(len(args))
		b.h.EnvLen, b.h.Envc = uint32(b.strs(env...)), uint16(len(env))
		r, err := decodeRecord(encodeRaw(b))
		if err != nil {
			t.Fatalf("a well-formed record failed: %v", err)
		}
		if r.path != path || !r.hasPath || r.interp != interp {
			t.Fatalf("path %q interp %q, want %q %q", r.path, r.interp, path, interp)
		}
		for _, c := range []struct {
			name      string
			got, want []string
		}{{"argv", r.args, args}, {"envp", r.env, env}, {"binary path", r.binComps, bin}} {
			if strings.Join(c.got, "\x00") != strings.Join(c.want, "\x00") || len(c.got) != len(c.want) {
				t.Fatalf("%s %q, want %q", c.name, c.got, c.want)
			}
		}
	})
}

// FuzzParseShebang: a #! line gives an interpreter only when it is a
// non-empty word of the line's first 256 bytes, as the kernel reads it.
func FuzzParseShebang(f *testing.F) {
	for _, s := range []string{
		"#!/bin/sh\n", "#!/bin/bash\r\n", "#! /usr/bin/env python3 -u\n", "#!\n", "#!   \t\n",
		"#!/bin/sh\x00evil\n", "#!" + strings.Repeat("a", 300), "#!" + strings.Repeat("a", 250) + "\n",
		"\x7fELF", "", "#", "#!/x y\tz",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 256 {
			b = b[:256] // readShebang reads this much
		}
		interp, ok := parseShebang(b)
		if !ok {
			if interp != "" {
				t.Fatalf("no interpreter, yet %q", interp)
			}
			return
		}
		if !bytes.HasPrefix(b, []byte("#!")) || interp == "" || len(interp) > 254 {
			t.Fatalf("interpreter %q from %q", interp, b)
		}
		if strings.ContainsAny(interp, " \t\n\x00") {
			t.Fatalf("interpreter %q holds a separator", interp)
		}
		line, _, _ := bytes.Cut(b[2:], []byte("\n"))
		if !bytes.Contains(line, []byte(interp)) {
			t.Fatalf("interpreter %q is not on the #! line %q", interp, line)
		}
	})
}

// FuzzReadInterpreter: what a file names as its interpreter (#! line or
// ELF PT_INTERP) is bytes of the file, bounded, whatever the file holds.
func FuzzReadInterpreter(f *testing.F) {
	f.Add(provoke.MissingLoaderProgram("/lib/ld-musl-x86_64.so.1"))
	f.Add(provoke.MissingLoaderProgram(""))
	f.Add(provoke.ForeignProgram())
	f.Add([]byte("#!/bin/sh\n"))
	elf := provoke.MissingLoaderProgram("/lib64/ld-linux-x86-64.so.2")
	hugeInterp := bytes.Clone(elf)
	binary.LittleEndian.PutUint64(hugeInterp[64+32:], 1<<40) // p_filesz
	f.Add(hugeInterp)
	farInterp := bytes.Clone(elf)
	binary.LittleEndian.PutUint64(farInterp[64+8:], 1<<62) // p_offset
	f.Add(farInterp)
	manyPhdrs := bytes.Clone(elf)
	binary.LittleEndian.PutUint16(manyPhdrs[56:], 0xffff) // e_phnum
	f.Add(manyPhdrs)
	f.Add(elf[:70])

	file := filepath.Join(f.TempDir(), "program")
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Fatal(err)
		}
		interp, ok := readInterpreter(file)
		if !ok {
			return
		}
		if interp == "" && !bytes.HasPrefix(b, []byte("\x7fELF")) {
			t.Fatalf("empty interpreter from %q", b)
		}
		if len(interp) > 4096 {
			t.Fatalf("interpreter of %d bytes", len(interp))
		}
		if !bytes.Contains(b, []byte(interp)) {
			t.Fatalf("interpreter %q is not in the file", interp)
		}
	})
}

// kernelMangle escapes a mount point the way the kernel writes it into
// mountinfo (seq_path's " \t\n\\" as three octal digits).
func kernelMangle(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n', '\\':
			b.WriteByte('\\')
			b.WriteByte('0' + c>>6)
			b.WriteByte('0' + c>>3&7)
			b.WriteByte('0' + c&7)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// FuzzUnescapeMount: a mount point the kernel escaped reads back as
// itself, and nothing unescapes to more bytes than it had.
func FuzzUnescapeMount(f *testing.F) {
	for _, s := range []string{"/mnt/my disk", `/a\b`, "/t\tab\nnl", `\040`, `\`, `\0`, `\04`, `\777`, `\400x`, "/ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := unescapeMount(kernelMangle(s)); got != s {
			t.Fatalf("mangled %q reads back as %q", s, got)
		}
		if got := unescapeMount(s); len(got) > len(s) {
			t.Fatalf("%q unescaped to the longer %q", s, got)
		}
	})
}

// FuzzNoexecMount: the noexec mount found for a file is a noexec mount
// point of the table, and the file is on it.
func FuzzNoexecMount(f *testing.F) {
	f.Add([]byte("22 1 0:21 / /tmp rw,nosuid,nodev,noexec shared:5 - tmpfs tmpfs rw\n"+
		`30 22 0:30 / /tmp/my\040dir rw,noexec - tmpfs t rw`+"\n"), "/tmp/my dir/x")
	f.Add([]byte("1 0 8:1 / / rw - ext4 /dev/sda1 rw\n23 1 0:22 / /dev/shm rw,noexec - tmpfs t rw\n"), "/dev/shm/p")
	f.Add([]byte("x\n\n1 2 3 4 \\ noexec\n"), "\\/x")
	f.Add([]byte("1 2 3 4 / noexec\n"), "relative")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, table []byte, file string) {
		if err := os.WriteFile(filepath.Join(dir, "mountinfo"), table, 0o600); err != nil {
			t.Fatal(err)
		}
		loc := location{cwd: "/home/u", procDir: dir}
		mp := noexecMount(loc, file)
		if mp == "" {
			return
		}
		abs := file
		if !path.IsAbs(abs) {
			abs = path.Join(loc.cwd, file)
		}
		if abs != mp && !strings.HasPrefix(abs, strings.TrimSuffix(mp, "/")+"/") {
			t.Fatalf("%q is not under the mount point %q", file, mp)
		}
		found := false
		for _, line := range strings.Split(string(table), "\n") {
			fs := strings.Fields(line)
			if len(fs) >= 6 && strings.Contains(","+fs[5]+",", ",noexec,") && unescapeMount(fs[4]) == mp {
				found = true
			}
		}
		if !found {
			t.Fatalf("%q is no noexec mount point of the table", mp)
		}
	})
}

// FuzzReadCreds: every id read from a status file is a number the file
// holds (or the event's own id when the file says nothing usable).
func FuzzReadCreds(f *testing.F) {
	f.Add([]byte("Name:\tbash\nUid:\t1000\t1000\t1000\t1000\nGid:\t100\t100\t100\t100\nGroups:\t4 24 27 \nCapEff:\t0000000000000000\nSeccomp:\t2\n"))
	f.Add([]byte("Name:\tUid:\t0\t0\t0\t0\nUid:\t1\t2\t3\nGroups:\t-1 99999999999 x\nCapEff:\tffffffffffffffff\n"))
	f.Add([]byte("Name:\t" + strings.Repeat("x", 70000) + "\nUid:\t5\t5\t5\t5\n"))
	f.Add([]byte{})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, status []byte) {
		if err := os.WriteFile(filepath.Join(dir, "status"), status, 0o600); err != nil {
			t.Fatal(err)
		}
		e := &event.Event{Process: event.Process{EUID: 4242, GID: 4343}}
		c, seccomp := readCreds(dir, e)
		if !c.Known {
			t.Fatal("a readable status file is not Known")
		}
		numbers := map[uint32]bool{0: true, 4242: true, 4343: true}
		for _, w := range strings.FieldsFunc(string(status), func(r rune) bool { return r < '0' || r > '9' }) {
			numbers[parseID(w)] = true
		}
		for _, id := range append([]uint32{c.UID, c.GID}, c.Groups...) {
			if !numbers[id] {
				t.Fatalf("id %d is in no number of %q", id, status)
			}
		}
		if seccomp && !bytes.Contains(status, []byte("Seccomp:")) {
			t.Fatal("seccomp filter mode without a Seccomp line")
		}
	})
}

// FuzzReadCgroup: the cgroup path is a line's path field, and the units
// and container id read from it are its own components.
func FuzzReadCgroup(f *testing.F) {
	f.Add([]byte("0::/system.slice/cron.service\n"))
	f.Add([]byte("12:pids:/\n1:name=systemd:/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope\n"))
	f.Add([]byte("0::/system.slice/docker-" + strings.Repeat("ab", 32) + ".scope\n"))
	f.Add([]byte("0::/kubepods/burstable/pod1234/" + strings.Repeat("0f", 32) + "\n"))
	f.Add([]byte("0::/docker/" + strings.Repeat("e", 64) + "/x:y\n"))
	f.Add([]byte("::\n0:\n:x"))
	dir := f.TempDir()
	file := filepath.Join(dir, "cgroup")
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Fatal(err)
		}
		cg, err := readCgroup(file)
		if err != nil {
			return
		}
		if strings.Contains(cg, "\n") || !bytes.Contains(b, []byte(cg)) {
			t.Fatalf("cgroup %q is not a line's field of %q", cg, b)
		}
		parts := strings.Split(cg, "/")
		part := func(s string) bool {
			for _, p := range parts {
				if p == s {
					return true
				}
			}
			return false
		}
		system, user := cgroupUnits(cg)
		for _, u := range []string{system, user} {
			if u != "" && !part(u) {
				t.Fatalf("unit %q is no component of %q", u, cg)
			}
		}
		if user != "" && !userManager.MatchString(system) {
			t.Fatalf("user unit %q outside a user manager (%q)", user, system)
		}
		if id := containerIDFromCgroup(cg); id != "" && (!hex64.MatchString(id) || !strings.Contains(cg, id)) {
			t.Fatalf("container id %q from %q", id, cg)
		}
	})
}

// FuzzReadProcStat: comm is what stands between the first '(' and the
// last ')', and the start time is field 22 as a whole number.
func FuzzReadProcStat(f *testing.F) {
	f.Add([]byte("4242 (bash) S 1 4242 4242 34816 4242 4194560 1 2 3 4 5 6 7 8 20 0 1 0 123456 1 2\n"))
	f.Add([]byte("7 (a) b (c) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 99 x\n"))
	f.Add([]byte("1 (x)"))
	f.Add([]byte(")("))
	dir := f.TempDir()
	file := filepath.Join(dir, "stat")
	buf := make([]byte, 512)
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Fatal(err)
		}
		comm, _, ok := readProcStat(file, buf)
		if !ok {
			return
		}
		if len(b) > len(buf) {
			b = b[:len(buf)]
		}
		open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || end < open || comm != string(b[open+1:end]) {
			t.Fatalf("comm %q from %q", comm, b)
		}
	})
}
