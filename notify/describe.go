// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/execfaild/execfaild/probe/event"
)

// Description is what a failure's human text says, taken from the event in
// one place so that journal, syslog, Slack and Alertmanager say the same
// things; each sink joins the parts with its own escaping and layout.
// Strings are as the probe reported them: escaping is the joiner's job,
// since only it knows the format the text goes to.
type Description struct {
	// Test: the synthetic failure of execfaild test-sinks; every headline
	// begins with TestMark.
	Test    bool
	Subject Subject
	Caller  Caller
	Who     Who
	Error   Error
	Cause   Cause

	// The values behind Details, for the sinks that word them.
	Interpreter        Interpreter
	Tried              []string
	ArgumentsTruncated bool
	Repeats            *Repeats

	// Details are the parts that follow the error, in order. A sink words
	// the kinds it knows its own way and every other one from its Words,
	// so a new part reaches every sink by being added in Describe alone.
	Details []Detail
}

// Subject is what failed to run.
type Subject struct {
	// Program is the resolved path; empty (not "") only with Several.
	Program string
	// Command is the name a PATH search looked for, set only when the
	// failure was a PATH search (Tried is not empty). It is taken from
	// the path even when Several, where it is "." for an empty path.
	Command string
	// Several: the failures of a digest ran different programs.
	Several bool
}

// Caller is who ran it.
type Caller struct {
	// Kernel: the kernel started it (usermode helper), not a process.
	Kernel bool
	// Comm is empty when the failures of a digest did not share one.
	Comm string
	// PID is 0 when one process did not make all the failures.
	PID uint32
}

// Who is the identity the caller ran as and where.
type Who struct {
	UID       uint32
	Unit      string
	Container string
}

// Error is why it failed.
type Error struct {
	Name  string // "ENOENT"; empty if the probe had no name for it
	Text  string // "no such file or directory"
	Errno int    // positive
	// Several: the failures of a digest failed differently; Name and
	// Errno are then empty and zero.
	Several bool
}

// Cause is the diagnosis of why the exec failed.
type Cause struct {
	// Code is one of event.Causes; empty when the failure has none (a
	// digest of failures with different causes, an older event).
	Code string
	// Text is the sentence naming the offending path or value and the
	// fix, as the probe wrote it (a Value: it holds paths the failing
	// process controls). It may be empty with a Code: a digest whose
	// failures shared the cause but not the sentence.
	Text string
	// Inferred: the evidence was gathered in userspace after the fact.
	Inferred bool
}

// Interpreter is the program the script's #! line names.
type Interpreter struct {
	Path    string // empty when there is none
	Missing bool   // the failure was ENOENT: the interpreter does not exist
}

// Repeats is how often the failure happened, for a digest or an
// aggregate of more than one.
type Repeats struct {
	Count uint64 // at least 1
	// More: a digest of repeats after a first notification.
	More bool
	// First and Last are nil when unknown.
	First, Last *time.Time
	// PIDs are some of the callers; fewer than Count means more exist.
	PIDs []uint32
}

// DetailKind names a part after the error.
type DetailKind int

const (
	DetailInterpreter DetailKind = iota + 1
	DetailPathSearch
	DetailArgumentsTruncated
	DetailRepeats
	// DetailCause is the diagnosis; it comes first, right after the
	// error it explains.
	DetailCause
)

// Detail is one part after the error: its kind and its wording for a sink
// that has none of its own.
type Detail struct {
	Kind  DetailKind
	Words []Word
}

// Word is a piece of a Detail's wording. A Value came from the failing
// process (a path, a directory) and must go through the sink's escaping;
// other words are fixed prose or numbers this daemon wrote.
type Word struct {
	Text  string
	Value bool
}

func prose(s string) Word { return Word{Text: s} }
func value(s string) Word { return Word{Text: s, Value: true} }

// TestMark begins every headline of a test-sinks failure, in every sink.
const TestMark = "TEST (execfaild test-sinks, not a real failure): "

// Describe takes ev apart into the parts every sink's text is made of.
func Describe(ev *event.Event) Description {
	p := &ev.Process
	d := Description{
		Test: ev.Test,
		Caller: Caller{
			Kernel: ev.KernelInvoked || ev.Syscall == event.SyscallKernel,
			Comm:   p.Comm,
		},
		Who:                Who{UID: p.UID, Unit: p.Unit, Container: p.ContainerID},
		Tried:              ev.Tried,
		ArgumentsTruncated: ev.ArgumentsTruncated,
	}
	if PathShared(ev) {
		d.Subject.Program = ev.ResolvedPath()
	} else {
		d.Subject.Several = true
	}
	if len(ev.Tried) > 0 {
		d.Subject.Command = path.Base(ev.Path)
	}
	if PIDShared(ev) {
		d.Caller.PID = p.PID
	}
	d.Error = Error{Name: ev.Error, Text: ev.ErrorText, Errno: int(-ev.ReturnValue), Several: !ErrnoShared(ev)}
	d.describeCause(ev)

	if ev.InterpreterPath != "" {
		d.Interpreter = Interpreter{Path: ev.InterpreterPath, Missing: ev.Error == "ENOENT"}
		w := []Word{prose("interpreter "), value(ev.InterpreterPath)}
		if d.Interpreter.Missing {
			w = append(w, prose(" not found"))
		}
		d.add(DetailInterpreter, w...)
	}
	if len(ev.Tried) > 0 {
		w := []Word{prose("searched PATH ")}
		for i, dir := range ev.Tried {
			if i > 0 {
				w = append(w, prose(", "))
			}
			w = append(w, value(dir))
		}
		d.add(DetailPathSearch, w...)
	}
	if ev.ArgumentsTruncated {
		d.add(DetailArgumentsTruncated, prose("arguments truncated"))
	}
	if ev.Digest || ev.Count > 1 {
		d.Repeats = &Repeats{Count: max(ev.Count, 1), More: ev.Digest, First: ev.FirstSeen, Last: ev.LastSeen, PIDs: ev.PIDs}
		d.add(DetailRepeats, prose(d.Repeats.words()))
	}
	return d
}

// describeCause sets Cause and its detail: the sentence, or the code
// alone when a digest kept the cause but not one sentence.
func (d *Description) describeCause(ev *event.Event) {
	if ev.Cause == "" {
		return
	}
	d.Cause = Cause{Code: ev.Cause, Text: ev.CauseText, Inferred: ev.CauseInferred}
	w := []Word{prose("cause " + ev.Cause)}
	if ev.CauseText != "" {
		w = []Word{value(ev.CauseText)}
	}
	if ev.CauseInferred {
		w = append(w, prose(" (inferred)"))
	}
	d.add(DetailCause, w...)
}

func (d *Description) add(k DetailKind, w ...Word) {
	d.Details = append(d.Details, Detail{Kind: k, Words: w})
}

// words is the default wording of r: "37 more times between 2026-11-30
// 10:00:00 UTC and 2026-11-30 13:00:00 UTC (pids 1, 2, …)".
func (r *Repeats) words() string {
	var b strings.Builder
	b.WriteString(Times(r.Count, r.More))
	if r.First != nil && r.Last != nil {
		const layout = "2006-01-02 15:04:05 MST"
		b.WriteString(" between " + r.First.Format(layout) + " and " + r.Last.Format(layout))
	}
	if len(r.PIDs) > 0 {
		b.WriteString(" (pids " + r.PIDList(", ") + ")")
	}
	return b.String()
}

// PIDList joins the PIDs with sep, ending in sep + "…" when they are not
// all of the callers; "" when none are known.
func (r *Repeats) PIDList(sep string) string {
	if len(r.PIDs) == 0 {
		return ""
	}
	ps := make([]string, len(r.PIDs), len(r.PIDs)+1)
	for i, pid := range r.PIDs {
		ps[i] = strconv.FormatUint(uint64(pid), 10)
	}
	if uint64(len(r.PIDs)) < r.Count {
		ps = append(ps, "…")
	}
	return strings.Join(ps, sep)
}

// Join renders a Detail's words, passing each Value through value; a sink
// uses it for the kinds it has no wording of its own for.
func (dt Detail) Join(value func(string) string) string {
	var b strings.Builder
	for _, w := range dt.Words {
		if w.Value {
			b.WriteString(value(w.Text))
		} else {
			b.WriteString(w.Text)
		}
	}
	return b.String()
}
