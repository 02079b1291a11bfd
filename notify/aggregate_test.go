// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"reflect"
	"testing"
	"time"

	"github.com/execfaild/execfaild/probe/event"
)

// TestMergeClearsWhatIsNotShared merges two failures that differ in one
// descriptive field and checks that exactly that field, and the fields
// that only mean something with it, are cleared; everything else is kept.
func TestMergeClearsWhatIsNotShared(t *testing.T) {
	dirfd, flags, mode, login := int32(3), uint32(0x1000), uint32(0o20620), uint32(7)
	for _, tc := range []struct {
		name   string
		differ func(e *event.Event)
		clear  func(e *event.Event)
	}{
		{"nothing", func(e *event.Event) {}, func(e *event.Event) {}},
		{"error", func(e *event.Event) { e.SetErrno(-13) },
			func(e *event.Event) { e.ReturnValue, e.Error, e.ErrorText = 0, "", "" }},
		{"syscall", func(e *event.Event) { e.Syscall = event.SyscallExecveat }, func(e *event.Event) { e.Syscall = "" }},
		{"stage", func(e *event.Event) { e.Stage = "other" }, func(e *event.Event) { e.Stage = "" }},
		{"path", func(e *event.Event) { e.Path = "./other" }, func(e *event.Event) { e.Path, e.PathSource = "", "" }},
		{"path with its source", func(e *event.Event) { e.Path, e.PathSource, e.PathTruncated = "./long", event.SourceCaller, true },
			func(e *event.Event) { e.Path, e.PathSource, e.PathTruncated = "", "", false }},
		{"path truncated in one", func(e *event.Event) { e.PathTruncated = true }, func(e *event.Event) { e.PathTruncated = true }},
		{"abi", func(e *event.Event) { e.ABI = "" }, func(e *event.Event) { e.ABI = "" }},
		{"binary", func(e *event.Event) { b := *e.Binary; b.InodeNumber++; e.Binary = &b }, func(e *event.Event) { e.Binary = nil }},
		{"binary unknown", func(e *event.Event) { e.Binary = nil }, func(e *event.Event) { e.Binary = nil }},
		{"interpreter", func(e *event.Event) { e.InterpreterPath = "/bin/sh" },
			func(e *event.Event) { e.InterpreterPath, e.InterpreterSource = "", "" }},
		{"arguments", func(e *event.Event) { e.Arguments = []string{"x"}; e.ArgumentsRedacted = true },
			func(e *event.Event) { e.Arguments, e.ArgumentsTruncated, e.ArgumentsRedacted = nil, false, false }},
		{"arguments redacted in one", func(e *event.Event) { e.ArgumentsRedacted = true },
			func(e *event.Event) { e.ArgumentsRedacted = true }},
		{"environment", func(e *event.Event) { e.Environment = []string{"A=b"} },
			func(e *event.Event) { e.Environment, e.EnvironmentTruncated, e.EnvironmentRedacted = nil, false, false }},
		{"tried", func(e *event.Event) { e.Tried = []string{"/bin"} }, func(e *event.Event) { e.Tried = nil }},
		{"dirfd", func(e *event.Event) { d := dirfd + 1; e.Dirfd = &d }, func(e *event.Event) { e.Dirfd = nil }},
		{"flags", func(e *event.Event) { e.Flags = nil }, func(e *event.Event) { e.Flags = nil }},
		{"stdin path", func(e *event.Event) { e.StdinPath = "/dev/null" },
			func(e *event.Event) { e.StdinType, e.StdinMode, e.StdinPath = "", nil, "" }},
		{"stdin type", func(e *event.Event) { e.StdinType = "fifo" },
			func(e *event.Event) { e.StdinType, e.StdinMode, e.StdinPath = "", nil, "" }},
		{"parent", func(e *event.Event) { e.Parent = &event.Parent{PID: 1} }, func(e *event.Event) { e.Parent = nil }},
		{"ppid", func(e *event.Event) { e.Process.PPID++ }, func(e *event.Event) { e.Process.PPID = 0 }},
		{"comm", func(e *event.Event) { e.Process.Comm = "x" }, func(e *event.Event) { e.Process.Comm = "" }},
		{"exe", func(e *event.Event) { e.Process.Exe = "/x" }, func(e *event.Event) { e.Process.Exe = "" }},
		{"cwd", func(e *event.Event) { e.Process.Cwd = "/x" }, func(e *event.Event) { e.Process.Cwd = "" }},
		{"cgroup id", func(e *event.Event) { e.Process.CgroupID++ },
			func(e *event.Event) { e.Process.Cgroup, e.Process.CgroupID = "", 0 }},
		{"user unit", func(e *event.Event) { e.Process.UserUnit = "x.service" },
			func(e *event.Event) { e.Process.Unit, e.Process.UserUnit = "", "" }},
		{"container", func(e *event.Event) { e.Process.ContainerID = "c" }, func(e *event.Event) { e.Process.ContainerID = "" }},
		{"loginuid", func(e *event.Event) { l := login + 1; e.Process.LoginUID = &l }, func(e *event.Event) { e.Process.LoginUID = nil }},
		{"uid kept", func(e *event.Event) { e.Process.UID++ }, func(e *event.Event) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := event.Synthetic(t0, "h")
			base.Dirfd, base.Flags = &dirfd, &flags
			base.StdinMode, base.Process.LoginUID = &mode, &login
			base.Tried = []string{"/usr/bin"}
			base.Process.ContainerID = "0123"
			base.ABI, base.PathSource = event.ABIIA32, event.SourceKernel
			dst, src := base, base
			src.Process.PID, src.Process.TID, src.Time = 4243, 4243, t0.Add(time.Minute)
			tc.differ(&src)
			asDigest(&dst).merge(&src, 8)

			first, last := t0, t0.Add(time.Minute)
			want := base
			want.Process.PID, want.Process.TID = 0, 0 // two processes took part
			tc.clear(&want)
			want.Count, want.Digest, want.Time = 2, true, last
			want.FirstSeen, want.LastSeen = &first, &last
			want.PIDs = []uint32{4242, 4243}
			if !reflect.DeepEqual(dst, want) {
				t.Errorf("merged\n%+v\nwant\n%+v", dst, want)
			}
		})
	}
}
