package main

import (
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
