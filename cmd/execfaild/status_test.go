// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/execfaild/execfaild/cmd/execfaild/internal/daemon"
	"github.com/execfaild/execfaild/notify"
)

// TestStatusNamesEachSink: execfaild status shows what STATUS= was made
// from, with each sink by name and its state, not only sums.
func TestStatusNamesEachSink(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.Local)
	write := statusWriter(dir, slog.New(slog.DiscardHandler))
	write(daemon.Snapshot{Time: at, Mode: "fentry", Status: "mode fentry; …", LastReload: "last reload rejected, previous configuration in use",
		Loss: daemon.Loss{LostFailures: 7},
		Stats: notify.Stats{Detected: 40, Filtered: 3, Sinks: []notify.SinkStats{
			{Kind: "journal", Name: "journal", Delivered: 30},
			{Kind: "slack", Name: "ops", Delivered: 5, Failed: 2, SpoolEntries: 4, Failing: "credentials rejected"},
			{Kind: "webhook", Name: "siem", Delivered: 1, Failed: 1, Queued: 2, Failing: notify.FailingRetrying},
			{Kind: "alertmanager", Name: "cluster", Delivered: 6, Replicas: []notify.ReplicaStats{
				{Name: "1", Delivered: 6},
				{Name: "2", SpoolEntries: 5},
			}},
		}},
	})
	var out bytes.Buffer
	s, err := readSnapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := printStatus(&out, s, at.Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	want := `mode fentry, as of 2026-12-07 10:00:00 (3s ago)
failed execs: 40 seen, 3 filtered
lost: 7 failures, 0 markers, 0 undecodable, 0 undrained
last reload rejected, previous configuration in use

SINK                  STATE                          SENT  FAILED  SPOOLED  QUEUED
journal/journal       ok                             30    0       0        0
slack/ops             failing: credentials rejected  5     2       4        0
webhook/siem          retrying                       1     1       0        2
alertmanager/cluster  ok                             6     0       0        0
  replica 1           ok                             6     0       0        
  replica 2           spooled 5                      0     0       5        
`
	if out.String() != want {
		t.Errorf("status:\n%s\nwant:\n%s", out.String(), want)
	}

	var stdout, stderr bytes.Buffer
	if code := run([]string{"status", "--dir", dir, "--json"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), `"failing": "credentials rejected"`) {
		t.Errorf("status --json: exit %d, %s%s", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"status", "--dir", t.TempDir()}, &stdout, &stderr); code != exitUnavailable || !strings.Contains(stderr.String(), "is the service running?") {
		t.Errorf("no daemon: exit %d, %q", code, stderr.String())
	}
}
