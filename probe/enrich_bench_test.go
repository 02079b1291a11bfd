package probe

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkDecodeEnrich is what userspace spends on one failure record in
// tracepoint mode: decode, /proc and cgroupfs enrichment of a live caller
// (this process, its parent, its cgroup) and the userspace lookup of the
// binary it named (a script without exec permission: EACCES, stat and #!
// read). Profile with
//
//	go test -run - -bench DecodeEnrich -benchmem -cpuprofile cpu.out ./probe
func BenchmarkDecodeEnrich(b *testing.B) {
	dir := b.TempDir()
	script := filepath.Join(dir, "job.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexit 0\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	cg, _ := readCgroup("/proc/self/cgroup")
	var st unix.Stat_t
	var cgID uint64
	if unix.Stat(filepath.Join("/sys/fs/cgroup", cg), &st) == nil {
		cgID = st.Ino
	}
	rb := &rawBuilder{}
	rb.h = execfaildEfHeader{
		Kind: kindFailure, Syscall: syscallExecve, Flags: flagHasCwd | flagHasExe,
		Ret: -13, Dirfd: unix.AT_FDCWD,
		Pid: uint32(os.Getpid()), Tid: uint32(unix.Gettid()), Ppid: uint32(os.Getppid()),
		Uid: 1000, Gid: 1000, Euid: 1000, BootNs: uint64(time.Second), CgroupId: cgID,
		Comm: comm("worker"),
	}
	rb.h.PathLen = uint16(rb.strs(script))
	rb.h.CwdPathLen = uint16(rb.strs("tmp"))
	rb.h.CwdNcomp = 1
	rb.h.ExePathLen = uint16(rb.strs("worker", "bin", "usr"))
	rb.h.ExeNcomp = 3
	rb.h.ArgsLen = uint32(rb.strs(script, "--flag"))
	rb.h.Argc = 2
	rb.h.EnvLen = uint32(rb.strs("PATH=/usr/bin", "HOME=/root"))
	rb.h.Envc = 2
	rb.h.DataLen = uint32(rb.data.Len())
	raw := make([]byte, headerSize)
	if _, err := binary.Encode(raw, binary.NativeEndian, &rb.h); err != nil {
		b.Fatal(err)
	}
	raw = append(raw, rb.data.Bytes()...)

	cfg := DefaultConfig()
	en := newEnricher(cfg)
	wall := func(ns uint64) time.Time { return time.Unix(0, int64(ns)) }
	b.ReportAllocs()
	for b.Loop() {
		r, err := decodeRecord(raw)
		if err != nil {
			b.Fatal(err)
		}
		e := r.toEvent(wall, false)
		en.enrichWith(e, true, r.callerRoot())
		if e.Binary == nil || e.Parent == nil || e.Parent.Exe == "" {
			b.Fatalf("enrichment incomplete: binary %v parent %+v", e.Binary, e.Parent)
		}
	}
}
