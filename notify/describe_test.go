// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/execfaild/execfaild/probe/event"
)

func TestDescribe(t *testing.T) {
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	later := now.Add(3 * time.Hour)
	single := func(mod func(e *event.Event)) *event.Event {
		e := event.Event{
			Path: "/srv/app/run.sh", Error: "ENOENT", ErrorText: "no such file or directory", ReturnValue: -2,
			Syscall: event.SyscallExecve,
			Process: event.Process{PID: 42, UID: 1000, Comm: "cron", Unit: "cron.service"},
		}
		if mod != nil {
			mod(&e)
		}
		return &e
	}
	tests := []struct {
		name string
		ev   *event.Event
		want Description
		// words is each detail's default wording, values in [brackets].
		words []string
	}{{
		name: "single failure",
		ev:   single(nil),
		want: Description{
			Subject: Subject{Program: "/srv/app/run.sh"},
			Caller:  Caller{Comm: "cron", PID: 42},
			Who:     Who{UID: 1000, Unit: "cron.service"},
			Error:   Error{Name: "ENOENT", Text: "no such file or directory", Errno: 2},
		},
	}, {
		name: "script whose interpreter is missing, in a container",
		ev: single(func(e *event.Event) {
			e.InterpreterPath = "/bin/bash\r"
			e.Process.Unit, e.Process.ContainerID = "", "c0ffee"
			e.ArgumentsTruncated = true
		}),
		want: Description{
			Subject:            Subject{Program: "/srv/app/run.sh"},
			Caller:             Caller{Comm: "cron", PID: 42},
			Who:                Who{UID: 1000, Container: "c0ffee"},
			Error:              Error{Name: "ENOENT", Text: "no such file or directory", Errno: 2},
			Interpreter:        Interpreter{Path: "/bin/bash\r", Missing: true},
			ArgumentsTruncated: true,
		},
		words: []string{"interpreter [/bin/bash\r] not found", "arguments truncated"},
	}, {
		name: "diagnosed: the sentence first, marked when inferred",
		ev: single(func(e *event.Event) {
			e.Cause, e.CauseText, e.CauseInferred = event.CauseNotFound, "/srv/app/run.sh does not exist; /srv/app does", true
			e.InterpreterPath = "/bin/sh"
		}),
		want: Description{
			Subject:     Subject{Program: "/srv/app/run.sh"},
			Caller:      Caller{Comm: "cron", PID: 42},
			Who:         Who{UID: 1000, Unit: "cron.service"},
			Error:       Error{Name: "ENOENT", Text: "no such file or directory", Errno: 2},
			Cause:       Cause{Code: "not-found", Text: "/srv/app/run.sh does not exist; /srv/app does", Inferred: true},
			Interpreter: Interpreter{Path: "/bin/sh", Missing: true},
		},
		words: []string{"[/srv/app/run.sh does not exist; /srv/app does] (inferred)", "interpreter [/bin/sh] not found"},
	}, {
		name: "digest that kept the cause but not one sentence",
		ev: single(func(e *event.Event) {
			e.Cause, e.Digest, e.Count = event.CauseNotExecutable, true, 2
		}),
		want: Description{
			Subject: Subject{Program: "/srv/app/run.sh"},
			Caller:  Caller{Comm: "cron", PID: 42},
			Who:     Who{UID: 1000, Unit: "cron.service"},
			Error:   Error{Name: "ENOENT", Text: "no such file or directory", Errno: 2},
			Cause:   Cause{Code: "not-executable"},
			Repeats: &Repeats{Count: 2, More: true},
		},
		words: []string{"cause not-executable", "2 more times"},
	}, {
		name: "PATH search, one failure per directory",
		ev: single(func(e *event.Event) {
			e.Path, e.Tried, e.Count = "/bin/deploy", []string{"/usr/bin", "/bin"}, 2
		}),
		want: Description{
			Subject: Subject{Program: "/bin/deploy", Command: "deploy"},
			Caller:  Caller{Comm: "cron", PID: 42},
			Who:     Who{UID: 1000, Unit: "cron.service"},
			Error:   Error{Name: "ENOENT", Text: "no such file or directory", Errno: 2},
			Tried:   []string{"/usr/bin", "/bin"},
			Repeats: &Repeats{Count: 2},
		},
		words: []string{"searched PATH [/usr/bin], [/bin]", "2 times"},
	}, {
		name: "started by the kernel",
		ev:   single(func(e *event.Event) { e.Syscall, e.KernelInvoked, e.Process.Comm = event.SyscallKernel, true, "" }),
		want: Description{
			Subject: Subject{Program: "/srv/app/run.sh"},
			Caller:  Caller{Kernel: true, PID: 42},
			Who:     Who{UID: 1000, Unit: "cron.service"},
			Error:   Error{Name: "ENOENT", Text: "no such file or directory", Errno: 2},
		},
	}, {
		name: "digest whose failures shared neither program, caller nor error",
		ev: &event.Event{
			Digest: true, Count: 5, FirstSeen: &now, LastSeen: &later, PIDs: []uint32{7, 8},
			Process: event.Process{UID: 0},
		},
		want: Description{
			Subject: Subject{Several: true},
			Error:   Error{Several: true},
			Repeats: &Repeats{Count: 5, More: true, First: &now, Last: &later, PIDs: []uint32{7, 8}},
		},
		words: []string{"5 more times between 2026-11-30 10:00:00 UTC and 2026-11-30 13:00:00 UTC (pids 7, 8, …)"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Describe(tc.ev)
			var words []string
			for _, dt := range got.Details {
				words = append(words, dt.Join(func(s string) string { return "[" + s + "]" }))
			}
			got.Details = nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Describe:\n got %+v\nwant %+v", got, tc.want)
			}
			if !reflect.DeepEqual(words, tc.words) {
				t.Errorf("detail words:\n got %q\nwant %q", words, tc.words)
			}
		})
	}
}

// The details come in the order the sentence says them, each once, so a
// sink that walks them puts a new part where Describe put it.
func TestDescribeDetailOrder(t *testing.T) {
	ev := event.Event{
		Path: "/bin/x", Error: "ENOENT", ReturnValue: -2, InterpreterPath: "/bin/sh",
		Tried: []string{"/bin"}, ArgumentsTruncated: true, Digest: true, Count: 3,
		Cause: event.CauseNotFoundInPath, CauseText: "x: not found",
	}
	var got []DetailKind
	for _, dt := range Describe(&ev).Details {
		got = append(got, dt.Kind)
	}
	want := []DetailKind{DetailCause, DetailInterpreter, DetailPathSearch, DetailArgumentsTruncated, DetailRepeats}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("detail kinds = %v, want %v", got, want)
	}
}

func TestRepeatsPIDList(t *testing.T) {
	for _, tc := range []struct {
		r    Repeats
		want string
	}{
		{Repeats{Count: 2, PIDs: []uint32{1, 2}}, "1, 2"},
		{Repeats{Count: 3, PIDs: []uint32{1, 2}}, "1, 2, …"},
		{Repeats{Count: 1}, ""},
	} {
		if got := tc.r.PIDList(", "); got != tc.want {
			t.Errorf("PIDList(%+v) = %q, want %q", tc.r, got, tc.want)
		}
	}
}

// Only what came from the process goes through the sink's escaping: the
// daemon's own prose must not be quoted, and no value may slip past.
func TestDetailJoinEscapesOnlyValues(t *testing.T) {
	ev := event.Event{Path: "/x", Error: "EACCES", ReturnValue: -13, Tried: []string{"/a b", "/c\nd"}}
	d := Describe(&ev)
	got := d.Details[0].Join(func(s string) string { return strings.ToUpper(Log.Visible(s)) })
	if want := `searched PATH /A B, /C\ND`; got != want {
		t.Errorf("Join = %q, want %q", got, want)
	}
}
