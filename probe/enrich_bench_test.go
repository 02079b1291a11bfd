// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkDecodeEnrich is what userspace spends on one failure record in
// tracepoint mode: decode, /proc and cgroupfs enrichment of a live caller
// (this process, its parent, its cgroup) and the userspace lookup of the
// binary it named. Two workloads: a script without exec permission
// (EACCES: stat and #! read), and a storm of distinct missing paths
// (ENOENT, each path new: nothing about the file can be cached). Profile
// with
//
//	go test -run - -bench DecodeEnrich -benchmem -cpuprofile cpu.out ./probe
func BenchmarkDecodeEnrich(b *testing.B) {
	dir := b.TempDir()
	script := filepath.Join(dir, "job.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexit 0\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Run("eacces", func(b *testing.B) {
		raw := benchRecord(b, -13, script)
		benchDecodeEnrich(b, func(int) []byte { return raw }, true)
	})
	b.Run("unique-enoent", func(b *testing.B) {
		// Records are built before the clock starts; the benchmark cycles
		// through enough of them that every path is new to any cache.
		recs := make([][]byte, 1<<14)
		for i := range recs {
			recs[i] = benchRecord(b, -2, filepath.Join(dir, "missing-"+strconv.Itoa(i)))
		}
		benchDecodeEnrich(b, func(i int) []byte { return recs[i%len(recs)] }, false)
	})
}

func benchDecodeEnrich(b *testing.B, raw func(int) []byte, wantBinary bool) {
	en := newEnricher(DefaultConfig())
	wall := func(ns uint64) time.Time { return time.Unix(0, int64(ns)) }
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r, err := decodeRecord(raw(i))
		i++
		if err != nil {
			b.Fatal(err)
		}
		e := r.toEvent(wall, false)
		en.enrichWith(e, true, r.caller())
		if (e.Binary != nil) != wantBinary || e.Parent == nil || e.Parent.Exe == "" {
			b.Fatalf("enrichment: binary %v (want one: %v) parent %+v", e.Binary, wantBinary, e.Parent)
		}
	}
}

// benchRecord is the record the tracepoint hook sends when this thread
// fails to exec path with ret.
func benchRecord(b *testing.B, ret int32, path string) []byte {
	b.Helper()
	cg, _ := readCgroup("/proc/self/cgroup")
	var st unix.Stat_t
	var cgID uint64
	if unix.Stat(filepath.Join("/sys/fs/cgroup", cg), &st) == nil {
		cgID = st.Ino
	}
	var root unix.Stat_t
	if err := unix.Stat("/", &root); err != nil {
		b.Fatal(err)
	}
	var mnt unix.Stat_t
	if err := unix.Stat("/proc/self/ns/mnt", &mnt); err != nil {
		b.Fatal(err)
	}
	rb := &rawBuilder{}
	rb.h = execfaildEfHeader{
		Kind: kindFailure, Syscall: syscallExecve, Flags: flagHasCwd | flagHasExe,
		Ret: ret, Dirfd: unix.AT_FDCWD,
		Pid: uint32(os.Getpid()), Tid: uint32(unix.Gettid()), Ppid: uint32(os.Getppid()),
		Uid: 1000, Gid: 1000, Euid: 1000, BootNs: uint64(time.Second), CgroupId: cgID,
		Comm:    comm("worker"),
		MntNs:   uint32(mnt.Ino),
		RootDev: uint32(unix.Major(root.Dev))<<20 | uint32(unix.Minor(root.Dev)),
		RootIno: root.Ino,
	}
	rb.h.PathLen = uint16(rb.strs(path))
	rb.h.CwdPathLen = uint16(rb.strs("tmp"))
	rb.h.CwdNcomp = 1
	rb.h.ExePathLen = uint16(rb.strs("worker", "bin", "usr"))
	rb.h.ExeNcomp = 3
	rb.h.ArgsLen = uint32(rb.strs(path, "--flag"))
	rb.h.Argc = 2
	rb.h.EnvLen = uint32(rb.strs("PATH=/usr/bin", "HOME=/root"))
	rb.h.Envc = 2
	rb.h.DataLen = uint32(rb.data.Len())
	raw := make([]byte, headerSize)
	if _, err := binary.Encode(raw, binary.NativeEndian, &rb.h); err != nil {
		b.Fatal(err)
	}
	return append(raw, rb.data.Bytes()...)
}
