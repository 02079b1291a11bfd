// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"encoding/json"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/execfaild/execfaild/probe"
	"github.com/execfaild/execfaild/probe/event"
)

func TestWatchLineShowsControlCharacters(t *testing.T) {
	e := event.Synthetic(time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC), "h")
	e.Arguments = []string{"./deploy.sh", "a b", "\x1b[31m"}
	e.ArgumentsTruncated = true
	got := formatLine(&e)
	for _, want := range []string{
		"03:04:05.006", "4242", `"deployer"`, "ENOENT", `"./deploy.sh"`,
		`-> "/srv/app/deploy.sh"`, `interpreter "/bin/bash\r"`, "stage=loader",
		`args "./deploy.sh" "a b" "\x1b[31m" …`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("line %q lacks %q", got, want)
		}
	}
	if strings.ContainsAny(got, "\r\x1b\n") {
		t.Errorf("raw control character in %q", got)
	}
}

func TestWatchLineKernelInvoked(t *testing.T) {
	e := event.Event{Path: "/sbin/modprobe", KernelInvoked: true, Arguments: []string{}}
	e.SetErrno(-2)
	got := formatLine(&e)
	if !strings.Contains(got, `"/sbin/modprobe" (kernel)`) || strings.Contains(got, "->") {
		t.Errorf("line %q", got)
	}
}

func TestWatchSummaryNamesEachLoss(t *testing.T) {
	if got := watchSummary(probe.Stats{Failures: 9, Successes: 3}); got != "" {
		t.Errorf("summary without loss = %q, want none", got)
	}
	got := watchSummary(probe.Stats{Failures: 9, LostFailures: 4, LostMarkers: 3, Undecodable: 2, Undrained: 1})
	want := "execfaild watch: 9 failures; lost 4 failures, 3 markers, 2 undecodable, 1 undrained"
	if got != want {
		t.Errorf("summary = %q, want %q", got, want)
	}
	if got := watchSummary(probe.Stats{LostMarkers: 1}); got == "" {
		t.Error("a lost marker alone printed no summary")
	}
}

func TestWatchLineFoldedRepeats(t *testing.T) {
	first := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	e := event.Synthetic(first.Add(5*time.Second), "h")
	e.Count, e.FirstSeen, e.LastSeen = 99999, &first, &e.Time
	e.Arguments = nil
	got := formatLine(&e)
	if !strings.Contains(got, "×99999 since 03:04:00.000") || strings.Contains(got, "args") {
		t.Errorf("line %q, want the count and first time, no argument list", got)
	}
}

// records replays failures and successes, then reports the probe closed.
type records []probe.Record

func (r *records) Read() (probe.Record, error) {
	if len(*r) == 0 {
		return probe.Record{}, probe.ErrClosed
	}
	rec := (*r)[0]
	*r = (*r)[1:]
	return rec, nil
}

// pyenvSession is what one `python3` through pyenv shims and one missing
// command look like to the probe: execvp's ENOENT in every $PATH directory
// before python3 is found (a success marker ends its search), three for a
// command found nowhere, and a failure of its own in between.
func pyenvSession(t0 time.Time) records {
	fail := func(tid uint32, p string, errno int32) probe.Record {
		e := event.Event{Time: t0, Path: p, Syscall: event.SyscallExecve, Stage: event.StagePreOpen,
			Arguments: []string{path.Base(p)},
			Process:   event.Process{PID: tid, TID: tid, UID: 1000, Comm: "bash"}}
		e.SetErrno(errno)
		if errno == -2 {
			e.Cause, e.CauseText = event.CauseNotFound, p+" does not exist"
		}
		return probe.Record{Failure: &e}
	}
	var recs records
	for _, d := range []string{
		"/home/u/.pyenv/plugins/pyenv-virtualenv/shims", "/home/u/.local/bin", "/home/u/bin", "/home/u/.cargo/bin",
		"/home/u/go/bin", "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin",
	} {
		recs = append(recs, fail(100, d+"/python3", -2))
	}
	recs = append(recs, probe.Record{Success: &event.Success{Time: t0, PID: 100, TID: 100, Name: "python3"}})
	for _, d := range []string{"/usr/local/bin", "/usr/bin", "/bin"} {
		recs = append(recs, fail(200, d+"/deploy-tool", -2))
	}
	recs = append(recs, fail(300, "/srv/x", -13))
	return recs
}

// By default watch folds PATH searches as the daemon does: nothing for the
// search that found python3, one line for the one that found nothing, with
// its diagnosis.
func TestWatchFoldsPathSearches(t *testing.T) {
	recs := pyenvSession(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	var out strings.Builder
	// The hold is long so that only the records end a search, whatever
	// the scheduler does.
	if err := watchRecords(&recs, newPrinter(&out, false), watchFold{hold: time.Hour}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want the header, the EACCES and the search that found nothing:\n%s", len(lines), out.String())
	}
	if !strings.Contains(lines[1], "EACCES") || !strings.Contains(lines[1], `"/srv/x"`) {
		t.Errorf("line 1 = %q, want the EACCES", lines[1])
	}
	for _, want := range []string{"ENOENT", `"/bin/deploy-tool"`, "cause=not-found-in-path",
		"deploy-tool: not found in any of the 3 $PATH directories (/usr/local/bin, /usr/bin, /bin)"} {
		if !strings.Contains(lines[2], want) {
			t.Errorf("line 2 = %q, lacks %q", lines[2], want)
		}
	}
	if strings.Contains(out.String(), "python3") {
		t.Errorf("the search that found python3 was printed:\n%s", out.String())
	}
}

// --raw prints every failed syscall, as before folding: 14 lines, the ten
// of the search that found python3 among them.
func TestWatchRawPrintsEverySyscall(t *testing.T) {
	recs := pyenvSession(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	var out strings.Builder
	if err := watchRecords(&recs, newPrinter(&out, false), watchFold{raw: true, hold: time.Hour}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 1+14 || strings.Count(out.String(), `/python3"`) != 10 || strings.Contains(out.String(), "not-found-in-path") {
		t.Errorf("raw output, want a header and 14 failures, none folded:\n%s", out.String())
	}
}

// JSON output folds too: one event for the search that found nothing,
// with the directories tried and its diagnosis.
func TestWatchJSONFolds(t *testing.T) {
	recs := pyenvSession(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	var out strings.Builder
	if err := watchRecords(&recs, newPrinter(&out, true), watchFold{hold: time.Hour}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d events, want 2:\n%s", len(lines), out.String())
	}
	var e event.Event
	if err := json.Unmarshal([]byte(lines[1]), &e); err != nil {
		t.Fatal(err)
	}
	if e.Cause != event.CauseNotFoundInPath || e.Count != 3 || len(e.Tried) != 3 || e.Path != "/bin/deploy-tool" {
		t.Errorf("folded event: cause %q count %d tried %v path %q", e.Cause, e.Count, e.Tried, e.Path)
	}
}

// The line names the cause and ends with the sentence, escaped.
func TestWatchLineShowsCause(t *testing.T) {
	e := event.Synthetic(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "h")
	e.CauseInferred = true
	got := formatLine(&e)
	want := ` stage=loader cause=interpreter-crlf args "./deploy.sh" "--target=<prod> & \"all\"" "]\\x" — the script /srv/app/deploy.sh has Windows (CRLF) line endings, so its interpreter "/bin/bash\r" does not exist; convert it with dos2unix /srv/app/deploy.sh (inferred)`
	if !strings.HasSuffix(got, want) {
		t.Errorf("line\n%s\nwant it to end\n%s", got, want)
	}
}

// A sentence whose diagnosis quoted its values itself keeps its single
// backslashes; what is still raw is spelled out.
func TestWatchLineSentenceQuotedByDiagnosis(t *testing.T) {
	e := event.Synthetic(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "h")
	e.CauseText = `the interpreter "/bin/bash\r" does not exist` + "\n"
	if got, want := formatLine(&e), ` — the interpreter "/bin/bash\r" does not exist\n`; !strings.HasSuffix(got, want) {
		t.Errorf("line\n%s\nwant it to end\n%s", got, want)
	}
}

// TestWatchUsageNamesEveryMode: watch -h lists every mode the probe takes,
// legacy included.
func TestWatchUsageNamesEveryMode(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"watch", "-h"}, &out, &errb); code != 0 {
		t.Fatalf("watch -h: exit %d", code)
	}
	for _, m := range probe.Modes {
		if !strings.Contains(errb.String(), m) {
			t.Errorf("watch -h does not name mode %q:\n%s", m, errb.String())
		}
	}
}
