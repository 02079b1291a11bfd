// SPDX-License-Identifier: Apache-2.0

package journal

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/probe/event"
)

// Field is one event field flattened for a key=value destination. Name is
// the lower-case form (the syslog PARAM-NAME); the journal field is
// "EXECFAIL_" + upper-case Name.
//
// Value holds the exact bytes the probe reported (control characters and
// invalid UTF-8 included) unless Quoted is set: then it is already a
// printable, unambiguous rendering (shell quoting) that a destination
// must not escape again.
type Field struct {
	Name   string
	Value  string
	Quoted bool
}

// Fields flattens ev in a fixed order. Absent values (nil pointers, empty
// strings, a missing parent) produce no field rather than a zero that could
// be mistaken for a real uid 0 or fd 0.
func Fields(ev *event.Event) []Field {
	var fs []Field
	add := func(name, value string) { fs = append(fs, Field{Name: name, Value: value}) }
	addStr := func(name, value string) {
		if value != "" {
			add(name, value)
		}
	}
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	octal := func(v uint32) string { return "0" + strconv.FormatUint(uint64(v), 8) }

	// First, where a reader and a filter look first: not a real failure.
	if ev.Test {
		add("test", "true")
	}
	if !ev.Time.IsZero() {
		add("time", ev.Time.Format(time.RFC3339Nano))
	}
	addStr("host", ev.Host)
	// The fleet's labels, right after the host they describe and before
	// the long values a size bound cuts first.
	for _, name := range slices.Sorted(maps.Keys(ev.Labels)) {
		add(notify.LabelField+name, ev.Labels[name])
	}
	if notify.ErrnoShared(ev) {
		add("return_value", strconv.Itoa(int(ev.ReturnValue)))
	}
	addStr("error", ev.Error)
	addStr("error_text", ev.ErrorText)
	addStr("cause", ev.Cause)
	addStr("cause_text", ev.CauseText)
	if ev.CauseInferred {
		add("cause_inferred", "true")
	}
	addStr("syscall", ev.Syscall)
	if ev.Dirfd != nil {
		add("dirfd", strconv.Itoa(int(*ev.Dirfd)))
	}
	if ev.Flags != nil {
		add("flags", "0x"+strconv.FormatUint(uint64(*ev.Flags), 16))
	}
	addStr("stage", ev.Stage)
	if notify.PathShared(ev) {
		add("path", ev.Path)
	}
	if rp := ev.ResolvedPath(); rp != ev.Path {
		addStr("resolved_path", rp)
	}
	if b := ev.Binary; b != nil {
		addStr("binary_path", b.Path)
		add("binary_device_id", u(b.DeviceID))
		add("binary_inode_number", u(b.InodeNumber))
		add("binary_ctime", u(b.Ctime))
		add("binary_inode_mode", octal(b.InodeMode))
		addStr("binary_source", b.Source)
	}
	addStr("interpreter_path", ev.InterpreterPath)
	addStr("interpreter_source", ev.InterpreterSource)
	addStr("stdin_type", ev.StdinType)
	if ev.StdinMode != nil {
		add("stdin_mode", octal(*ev.StdinMode))
	}
	addStr("stdin_path", ev.StdinPath)
	add("kernel_invoked", strconv.FormatBool(ev.KernelInvoked))

	fs = append(fs, Field{Name: "argv", Value: notify.Log.ShellJoin(ev.Arguments), Quoted: true})
	add("argc", strconv.Itoa(len(ev.Arguments)))
	if ev.ArgumentsTruncated {
		add("arguments_truncated", "true")
	}
	if ev.ArgumentsRedacted {
		add("arguments_redacted", "true")
	}
	if len(ev.Environment) > 0 {
		fs = append(fs, Field{Name: "environment", Value: notify.Log.ShellJoin(ev.Environment), Quoted: true})
		add("envc", strconv.Itoa(len(ev.Environment)))
	}
	if ev.EnvironmentTruncated {
		add("environment_truncated", "true")
	}
	if ev.EnvironmentRedacted {
		add("environment_redacted", "true")
	}

	p := &ev.Process
	if notify.PIDShared(ev) {
		add("pid", u(uint64(p.PID)))
		add("tid", u(uint64(p.TID)))
	}
	if p.PPID != 0 {
		add("ppid", u(uint64(p.PPID)))
	}
	add("uid", u(uint64(p.UID)))
	add("gid", u(uint64(p.GID)))
	add("euid", u(uint64(p.EUID)))
	if p.LoginUID != nil {
		add("loginuid", u(uint64(*p.LoginUID)))
	}
	addStr("comm", p.Comm)
	addStr("exe", p.Exe)
	addStr("cwd", p.Cwd)
	if p.CgroupID != 0 {
		add("cgroup_id", u(p.CgroupID))
	}
	addStr("cgroup", p.Cgroup)
	addStr("unit", p.Unit)
	addStr("container_id", p.ContainerID)
	if pp := ev.Parent; pp != nil {
		add("parent_pid", u(uint64(pp.PID)))
		addStr("parent_comm", pp.Comm)
		addStr("parent_exe", pp.Exe)
	}

	if ev.Digest {
		add("digest", "true")
	}
	if ev.Count > 0 {
		add("count", u(ev.Count))
	}
	if ev.FirstSeen != nil {
		add("first_seen", ev.FirstSeen.Format(time.RFC3339Nano))
	}
	if ev.LastSeen != nil {
		add("last_seen", ev.LastSeen.Format(time.RFC3339Nano))
	}
	if len(ev.PIDs) > 0 {
		pids := make([]string, len(ev.PIDs))
		for i, pid := range ev.PIDs {
			pids[i] = u(uint64(pid))
		}
		add("pids", strings.Join(pids, " "))
	}
	if len(ev.Tried) > 0 {
		fs = append(fs, Field{Name: "path_search_tried", Value: notify.Log.ShellJoin(ev.Tried), Quoted: true})
	}
	return fs
}

// caller is "comm[pid]", or what of it the failures of a digest shared.
func caller(c notify.Caller) string {
	comm := quoteIfNeeded(c.Comm)
	if c.Comm == "" {
		comm = "several commands"
	}
	if c.PID == 0 {
		return comm
	}
	return fmt.Sprintf("%s[%d]", comm, c.PID)
}

// Message is the one readable sentence describing ev, for MESSAGE and the
// syslog MSG. Every string the failing process controls goes through
// Visible, so a crafted argv or path cannot forge a line break, a terminal
// escape or a bidi override in a log viewer.
func Message(ev *event.Event) string { return sentence(notify.Describe(ev)) }

func sentence(d notify.Description) string {
	var b strings.Builder
	if d.Test {
		b.WriteString(notify.TestMark)
	}
	b.WriteString("exec of ")
	switch {
	case d.Subject.Command != "":
		// A PATH search: the command name says more than the last
		// directory's candidate, and the directories follow below.
		b.WriteString(quoteIfNeeded(d.Subject.Command))
	case d.Subject.Several:
		b.WriteString("several programs")
	default:
		b.WriteString(quoteIfNeeded(d.Subject.Program))
	}
	if d.Caller.Kernel {
		b.WriteString(" started by the kernel")
		if d.Caller.Comm != "" {
			fmt.Fprintf(&b, " in %s", caller(d.Caller))
		}
	} else {
		fmt.Fprintf(&b, " by %s", caller(d.Caller))
	}
	b.WriteString(" (uid ")
	b.WriteString(strconv.FormatUint(uint64(d.Who.UID), 10))
	switch {
	case d.Who.Unit != "":
		b.WriteString(", ")
		b.WriteString(notify.Log.Visible(d.Who.Unit))
	case d.Who.Container != "":
		b.WriteString(", container ")
		b.WriteString(notify.Log.Visible(d.Who.Container))
	}
	b.WriteString(") failed: ")
	if d.Error.Several {
		b.WriteString("several errors")
	}
	b.WriteString(d.Error.Name)
	if d.Error.Text != "" {
		fmt.Fprintf(&b, " (%s)", d.Error.Text)
	}
	for _, dt := range d.Details {
		if dt.Kind == notify.DetailCause && d.Cause.Text != "" {
			// The sentence explains the error, so it follows it.
			b.WriteString(": ")
			b.WriteString(dt.Join(notify.Sentence))
			continue
		}
		if s := detail(&d, dt); s != "" {
			b.WriteString("; ")
			b.WriteString(s)
		}
	}
	return b.String()
}

// detail words one part after the error for the sentence, "" to leave it
// out.
func detail(d *notify.Description, dt notify.Detail) string {
	switch dt.Kind {
	case notify.DetailInterpreter:
		// Always quoted: the stray \r of a CRLF #! line must show.
		s := "interpreter " + quote(d.Interpreter.Path)
		if d.Interpreter.Missing {
			s += " not found"
		}
		return s
	case notify.DetailRepeats:
		return repeats(d)
	}
	return dt.Join(quoteIfNeeded)
}

// repeats is "37 more times between 2026-11-30 10:00:00 and 13:00:00 UTC
// (pids 4242, …)".
func repeats(d *notify.Description) string {
	r := d.Repeats
	// A PATH search counts one failure per directory; that is what
	// "searched" already said, so only a larger count is news.
	if !r.More && r.Count <= uint64(len(d.Tried)) {
		return ""
	}
	s := notify.Times(r.Count, r.More)
	if r.First != nil && r.Last != nil {
		first, last := *r.First, *r.Last
		// The date is said once when both ends fall on the same day.
		lastLayout := "2006-01-02 15:04:05 MST"
		if first.Format("20060102 MST") == last.Format("20060102 MST") {
			lastLayout = "15:04:05 MST"
		}
		s += fmt.Sprintf(" between %s and %s", first.Format("2006-01-02 15:04:05"), last.Format(lastLayout))
	}
	if len(r.PIDs) > 0 {
		s += " (pids " + r.PIDList(", ") + ")"
	}
	return s
}

// quote wraps s in double quotes after Visible, escaping the quote itself.
func quote(s string) string {
	return `"` + strings.ReplaceAll(notify.Log.Visible(s), `"`, `\"`) + `"`
}

// quoteIfNeeded leaves plain words alone so the sentence reads naturally
// and quotes anything with spaces, quotes or escapes, so where a path ends
// is never in doubt.
func quoteIfNeeded(s string) string {
	if s != "" && notify.Log.Plain(s) && !strings.ContainsAny(s, ` "`) {
		return s
	}
	return quote(s)
}
