package notify

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/execfaild/execfaild/probe/event"
)

// count is how many failures ev stands for.
func count(ev *event.Event) uint64 {
	if ev.Count == 0 {
		return 1
	}
	return ev.Count
}

func firstSeen(ev *event.Event) time.Time {
	if ev.FirstSeen != nil {
		return *ev.FirstSeen
	}
	return ev.Time
}

func lastSeen(ev *event.Event) time.Time {
	if ev.LastSeen != nil {
		return *ev.LastSeen
	}
	return ev.Time
}

// addPIDs appends the pids of src not yet in dst, up to max.
func addPIDs(dst []uint32, src *event.Event, max int) []uint32 {
	add := func(pid uint32) {
		if len(dst) < max && !slices.Contains(dst, pid) {
			dst = append(dst, pid)
		}
	}
	if len(src.PIDs) > 0 {
		for _, p := range src.PIDs {
			add(p)
		}
	} else {
		add(src.Process.PID)
	}
	return dst
}

// merge folds src into dst so dst stands for both: counts add up, the time
// range widens, and every descriptive field on which the two disagree is
// cleared, because a combined notification must not claim that all its
// failures share a path, user or errno when they did not.
func merge(dst, src *event.Event, maxPIDs int) {
	n := count(dst) + count(src)
	first, last := firstSeen(dst), lastSeen(dst)
	if f := firstSeen(src); f.Before(first) {
		first = f
	}
	if l := lastSeen(src); l.After(last) {
		last = l
	}
	dst.PIDs = addPIDs(addPIDs(nil, dst, maxPIDs), src, maxPIDs)
	dst.Count = n
	dst.Digest = true
	dst.FirstSeen, dst.LastSeen = &first, &last
	dst.Time = last

	if dst.Error != src.Error {
		dst.ReturnValue, dst.Error, dst.ErrorText = 0, "", ""
	}
	if dst.Syscall != src.Syscall {
		dst.Syscall = ""
	}
	if dst.Stage != src.Stage {
		dst.Stage = ""
	}
	if dst.Path != src.Path {
		dst.Path = ""
	}
	if dst.Binary == nil || src.Binary == nil || *dst.Binary != *src.Binary {
		dst.Binary = nil
	}
	if dst.InterpreterPath != src.InterpreterPath {
		dst.InterpreterPath, dst.InterpreterSource = "", ""
	}
	if !slices.Equal(dst.Arguments, src.Arguments) {
		dst.Arguments, dst.ArgumentsTruncated, dst.ArgumentsRedacted = nil, false, false
	} else {
		dst.ArgumentsRedacted = dst.ArgumentsRedacted || src.ArgumentsRedacted
	}
	if !slices.Equal(dst.Environment, src.Environment) {
		dst.Environment, dst.EnvironmentTruncated, dst.EnvironmentRedacted = nil, false, false
	}
	if !slices.Equal(dst.Tried, src.Tried) {
		dst.Tried = nil
	}
	if dst.Dirfd == nil || src.Dirfd == nil || *dst.Dirfd != *src.Dirfd {
		dst.Dirfd = nil
	}
	if dst.Flags == nil || src.Flags == nil || *dst.Flags != *src.Flags {
		dst.Flags = nil
	}
	if dst.StdinType != src.StdinType || dst.StdinPath != src.StdinPath {
		dst.StdinType, dst.StdinMode, dst.StdinPath = "", nil, ""
	}
	if dst.Parent == nil || src.Parent == nil || *dst.Parent != *src.Parent {
		dst.Parent = nil
	}
	dp, sp := &dst.Process, &src.Process
	if dp.PID != sp.PID || dp.TID != sp.TID {
		// The pids list says which processes took part.
		dp.PID, dp.TID = 0, 0
	}
	if dp.PPID != sp.PPID {
		dp.PPID = 0
	}
	if dp.Comm != sp.Comm {
		dp.Comm = ""
	}
	if dp.Exe != sp.Exe {
		dp.Exe = ""
	}
	if dp.Cwd != sp.Cwd {
		dp.Cwd = ""
	}
	if dp.Cgroup != sp.Cgroup || dp.CgroupID != sp.CgroupID {
		dp.Cgroup, dp.CgroupID = "", 0
	}
	if dp.Unit != sp.Unit || dp.UserUnit != sp.UserUnit {
		dp.Unit, dp.UserUnit = "", ""
	}
	if dp.ContainerID != sp.ContainerID {
		dp.ContainerID = ""
	}
	if dp.LoginUID == nil || sp.LoginUID == nil || *dp.LoginUID != *sp.LoginUID {
		dp.LoginUID = nil
	}
	// uid, gid and euid have no absent form in the schema; a combined
	// notification keeps the first one's, and only dedup keys that include
	// them guarantee they are shared.
}

// dedupKey builds the identity of ev under the given field names.
func dedupKey(ev *event.Event, keys []string) string {
	var b strings.Builder
	for _, k := range keys {
		switch k {
		case "uid":
			b.WriteString(strconv.FormatUint(uint64(ev.Process.UID), 10))
		case "euid":
			b.WriteString(strconv.FormatUint(uint64(ev.Process.EUID), 10))
		case "gid":
			b.WriteString(strconv.FormatUint(uint64(ev.Process.GID), 10))
		case "error":
			b.WriteString(ev.Error)
		case "binary":
			b.WriteString(ev.ResolvedPath())
		case "path":
			b.WriteString(ev.Path)
		case "interpreter":
			b.WriteString(ev.InterpreterPath)
		case "comm":
			b.WriteString(ev.Process.Comm)
		case "exe":
			b.WriteString(ev.Process.Exe)
		case "unit":
			b.WriteString(ev.Process.Unit)
		case "cgroup":
			b.WriteString(ev.Process.Cgroup)
		case "container":
			b.WriteString(ev.Process.ContainerID)
		case "syscall":
			b.WriteString(ev.Syscall)
		case "stage":
			b.WriteString(ev.Stage)
		case "parent_comm":
			if ev.Parent != nil {
				b.WriteString(ev.Parent.Comm)
			}
		case "kernel_invoked":
			b.WriteString(strconv.FormatBool(ev.KernelInvoked))
		case "host":
			b.WriteString(ev.Host)
		}
		b.WriteByte(0)
	}
	return b.String()
}
