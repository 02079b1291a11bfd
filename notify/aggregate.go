// SPDX-License-Identifier: Apache-2.0

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

// A digest is one notification standing for several failures: their
// count, time range and pids (up to a limit), with one description of what
// they have in common. It is an event (the form sinks and the spool take);
// its methods do the counting, so the pipeline's code is about decisions.
type digest event.Event

// asDigest treats ev as a digest of what it already stands for; merging
// into it widens it in place.
func asDigest(ev *event.Event) *digest { return (*digest)(ev) }

// startDigest begins a digest that describes failures as desc does and
// counts ev's failures: desc is copied, ev only counted.
func startDigest(desc, ev *event.Event, maxPIDs int) *digest {
	d := digest(*desc)
	first, last := firstSeen(ev), lastSeen(ev)
	d.Digest, d.Count = true, count(ev)
	d.FirstSeen, d.LastSeen = &first, &last
	d.PIDs = addPIDs(nil, ev, maxPIDs)
	return &d
}

// event is the digest as the notification that goes out.
func (d *digest) event() *event.Event { return (*event.Event)(d) }

// add counts ev's failures in d without changing what d describes: the
// count adds up, the time range widens (the digest's time is its latest
// failure's) and ev's pids join the list, up to maxPIDs.
func (d *digest) add(ev *event.Event, maxPIDs int) {
	first, last := firstSeen(d.event()), lastSeen(d.event())
	if t := firstSeen(ev); t.Before(first) {
		first = t
	}
	if t := lastSeen(ev); t.After(last) {
		last = t
	}
	d.Count = count(d.event()) + count(ev)
	d.FirstSeen, d.LastSeen, d.Time = &first, &last, last
	d.PIDs = addPIDs(d.PIDs, ev, maxPIDs)
}

// merge folds src into d so d stands for both: counted as add counts, and
// every descriptive field on which the two disagree is cleared, because a
// combined notification must not claim that all its failures share a path,
// user or errno when they did not.
func (d *digest) merge(src *event.Event, maxPIDs int) {
	// d may be a single failure until now: its pid list starts from itself.
	d.PIDs = addPIDs(nil, d.event(), maxPIDs)
	d.add(src, maxPIDs)
	d.Digest = true
	d.keepShared(src)
}

// keepShared clears the failure's descriptive fields that src does not
// share. Fields that only mean something together are cleared together.
func (d *digest) keepShared(src *event.Event) {
	clearUnlessSame(&d.Syscall, src.Syscall)
	clearUnlessSame(&d.Stage, src.Stage)
	clearUnlessSame(&d.ABI, src.ABI)
	if d.Path != src.Path || d.PathSource != src.PathSource {
		d.Path, d.PathSource, d.PathTruncated = "", "", false
	} else {
		d.PathTruncated = d.PathTruncated || src.PathTruncated
	}
	clearUnlessSamePtr(&d.Binary, src.Binary)
	clearUnlessSamePtr(&d.Dirfd, src.Dirfd)
	clearUnlessSamePtr(&d.Flags, src.Flags)
	clearUnlessSamePtr(&d.Parent, src.Parent)
	if d.Error != src.Error {
		d.ReturnValue, d.Error, d.ErrorText = 0, "", ""
	}
	d.keepSharedCause(src)
	if d.InterpreterPath != src.InterpreterPath {
		d.InterpreterPath, d.InterpreterSource = "", ""
	}
	if !slices.Equal(d.Arguments, src.Arguments) {
		d.Arguments, d.ArgumentsTruncated, d.ArgumentsRedacted = nil, false, false
	} else {
		d.ArgumentsRedacted = d.ArgumentsRedacted || src.ArgumentsRedacted
	}
	if !slices.Equal(d.Environment, src.Environment) {
		d.Environment, d.EnvironmentTruncated, d.EnvironmentRedacted = nil, false, false
	}
	if !slices.Equal(d.Tried, src.Tried) {
		d.Tried = nil
	}
	if d.StdinType != src.StdinType || d.StdinPath != src.StdinPath {
		d.StdinType, d.StdinMode, d.StdinPath = "", nil, ""
	}
	keepSharedProcess(&d.Process, &src.Process)
}

// keepSharedCause keeps the diagnosis only as far as src shares it: the
// code when both have it, the sentence only when it is the same (it names
// one failure's path). Inferred evidence behind either makes both
// inferred.
func (d *digest) keepSharedCause(src *event.Event) {
	if d.Cause != src.Cause {
		d.Cause, d.CauseText, d.CauseInferred = "", "", false
		return
	}
	clearUnlessSame(&d.CauseText, src.CauseText)
	d.CauseInferred = d.CauseInferred || src.CauseInferred
}

// keepSharedProcess clears the fields of p that src does not share. uid, gid
// and euid have no absent form in the schema; a combined notification
// keeps the first one's, and only dedup keys that include them guarantee
// they are shared.
func keepSharedProcess(p, src *event.Process) {
	if p.PID != src.PID || p.TID != src.TID {
		// The pids list says which processes took part.
		p.PID, p.TID = 0, 0
	}
	clearUnlessSame(&p.PPID, src.PPID)
	clearUnlessSame(&p.Comm, src.Comm)
	clearUnlessSame(&p.Exe, src.Exe)
	clearUnlessSame(&p.Cwd, src.Cwd)
	clearUnlessSame(&p.ContainerID, src.ContainerID)
	clearUnlessSamePtr(&p.LoginUID, src.LoginUID)
	if p.Cgroup != src.Cgroup || p.CgroupID != src.CgroupID {
		p.Cgroup, p.CgroupID = "", 0
	}
	if p.Unit != src.Unit || p.UserUnit != src.UserUnit {
		p.Unit, p.UserUnit = "", ""
	}
}

// clearUnlessSame leaves *dst as it is when it equals src, else zeroes it.
func clearUnlessSame[T comparable](dst *T, src T) {
	if *dst != src {
		var zero T
		*dst = zero
	}
}

// clearUnlessSamePtr keeps *dst only when both are known and equal.
func clearUnlessSamePtr[T comparable](dst **T, src *T) {
	if *dst == nil || src == nil || **dst != *src {
		*dst = nil
	}
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
		case "cause":
			b.WriteString(ev.Cause)
		}
		b.WriteByte(0)
	}
	return b.String()
}
