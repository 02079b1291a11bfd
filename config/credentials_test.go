// SPDX-License-Identifier: Apache-2.0

package config

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/execfaild/execfaild/internal/poll"
	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/notify/slack/slacktest"
	"github.com/execfaild/execfaild/notify/webhook/webhooktest"
	"github.com/execfaild/execfaild/probe/event"
)

// TestRejectedCredentialsKeepNotificationsUntilReload: a receiver that
// answers 401 to the configured token. Every notification is kept in the
// spool, the sink shows as failing in the stats and STATUS= line and the
// log, and the reload with the right token delivers the backlog.
func TestRejectedCredentialsKeepNotificationsUntilReload(t *testing.T) {
	const right, wrong = "right-token-7f3a", "wrong-token-c21d"
	rcv, err := webhooktest.Start(webhooktest.Options{BearerToken: right})
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	spool := t.TempDir()
	parse := func(token string) notify.Config {
		t.Helper()
		c, err := Parse("execfaild.toml", fmt.Appendf(nil, `
[spool]
dir = %q
retry_initial = "20ms"
retry_max = "1h"

[[sink.webhook]]
name = "ops"
url = %q
bearer_token = %q
rate_limit = { rate = "off" }
dedup = { window = "1h" }
`, spool, rcv.URL(), token))
		if err != nil {
			t.Fatal(err)
		}
		return c.Notify()
	}
	var logs poll.Buffer
	p, err := notify.New(parse(wrong), notify.Env{Host: "web-1", Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	for i := range 3 {
		ev := event.Synthetic(time.Now(), "web-1")
		ev.Binary.Path = fmt.Sprintf("/srv/app/job%d", i)
		p.Handle(&ev)
	}
	poll.Until(t, "three delivery outcomes", func() bool {
		s := p.Stats().Sinks[0]
		return s.Spooled+s.Failed == 3
	})
	st := p.Stats()
	s := st.Sinks[0]
	if s.Failed != 0 || s.Spooled != 3 || s.SpoolEntries != 3 || s.Delivered != 0 {
		t.Errorf("failed %d, spooled %d, spool entries %d, delivered %d; want 0, 3, 3, 0", s.Failed, s.Spooled, s.SpoolEntries, s.Delivered)
	}
	if s.Failing != "credentials rejected" {
		t.Errorf("Failing = %q, want \"credentials rejected\"", s.Failing)
	}
	if want := "webhook/ops: 0 sent, 3 spooled, failing: credentials rejected"; !strings.Contains(st.String(), want) {
		t.Errorf("STATUS= line %q lacks %q", st.String(), want)
	}
	if !strings.Contains(logs.String(), "sink credentials rejected") || !strings.Contains(logs.String(), "401 Unauthorized") {
		t.Errorf("log does not say the credentials were rejected:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), wrong) || strings.Contains(st.String(), wrong) {
		t.Errorf("the token reached the log or the status line")
	}
	if len(rcv.Events()) != 0 {
		t.Fatalf("receiver accepted %d events with the wrong token", len(rcv.Events()))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Reload(ctx, parse(right)); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the backlog delivered", func() bool { return len(rcv.Events()) == 3 })
	poll.Until(t, "the spool emptied", func() bool { return p.Stats().Sinks[0].SpoolEntries == 0 })
	s = p.Stats().Sinks[0]
	if s.Failing != "" || s.Failed != 0 || s.Delivered != 3 {
		t.Errorf("after the fix: failing %q, failed %d, delivered %d; want \"\", 0, 3", s.Failing, s.Failed, s.Delivered)
	}
	var got []string
	for _, ev := range rcv.Events() {
		got = append(got, ev.Binary.Path)
	}
	if strings.Join(got, " ") != "/srv/app/job0 /srv/app/job1 /srv/app/job2" {
		t.Errorf("delivered %v, want the three in order", got)
	}
}

// writeSpool leaves n entries in a sink's spool directory, as an outage
// of a previous run would.
func writeSpool(t *testing.T, dir string, n int, path func(int) string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		ev := event.Synthetic(time.Now(), "web-1")
		ev.Binary.Path = path(i)
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d.json", i+1)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFreshFailureGoesAheadOfSpoolReplay: a spool of 200 entries replays
// at Slack's pace of one a second; a failure that happens meanwhile is
// among the first messages Slack gets, not the 201st, minutes later.
func TestFreshFailureGoesAheadOfSpoolReplay(t *testing.T) {
	srv := slacktest.New()
	defer srv.Close()
	spool := t.TempDir()
	writeSpool(t, filepath.Join(spool, "slack-ops"), 200, func(i int) string { return fmt.Sprintf("/srv/old/job%d", i) })
	c, err := Parse("execfaild.toml", fmt.Appendf(nil, `
[spool]
dir = %q

[[sink.slack]]
name = "ops"
url = %q
`, spool, srv.WebhookURL()))
	if err != nil {
		t.Fatal(err)
	}
	p, err := notify.New(c.Notify(), notify.Env{Host: "web-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	ev := event.Synthetic(time.Now(), "web-1")
	ev.Binary.Path = "/srv/fresh/job"
	p.Handle(&ev)

	poll.Until(t, "three messages", func() bool { return len(srv.Accepted()) >= 3 })
	var first []string
	fresh := -1
	for i, b := range srv.Accepted()[:3] {
		switch {
		case bytes.Contains(b, []byte("/srv/fresh/job")):
			fresh = i
			first = append(first, "fresh")
		case bytes.Contains(b, []byte("/srv/old/job")):
			first = append(first, "spooled")
		default:
			first = append(first, "unknown")
		}
	}
	if fresh < 0 {
		t.Errorf("the first three messages are %v: the fresh failure waits behind the replay", first)
	}
}

// TestOrphanedSpoolReportedAtStart: entries of a sink that was renamed
// are named at start, with their count, instead of lying there unseen.
func TestOrphanedSpoolReportedAtStart(t *testing.T) {
	spool := t.TempDir()
	writeSpool(t, filepath.Join(spool, "webhook-old"), 4, func(i int) string { return fmt.Sprintf("/srv/job%d", i) })
	writeSpool(t, filepath.Join(spool, "webhook-ops"), 0, nil)
	c, err := Parse("execfaild.toml", fmt.Appendf(nil, `
[spool]
dir = %q

[[sink.webhook]]
name = "ops"
url = "http://127.0.0.1:1/hook"
`, spool))
	if err != nil {
		t.Fatal(err)
	}
	var logs poll.Buffer
	p, err := notify.New(c.Notify(), notify.Env{Host: "web-1", Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	var warned int
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec struct {
			Msg     string `json:"msg"`
			Dir     string `json:"dir"`
			Entries int    `json:"entries"`
			Name    string `json:"name"`
		}
		if json.Unmarshal([]byte(line), &rec) != nil || !strings.Contains(rec.Msg, "no longer configured") {
			continue
		}
		warned++
		if rec.Dir != filepath.Join(spool, "webhook-old") || rec.Entries != 4 || rec.Name != "old" {
			t.Errorf("warning names %s with %d entries (sink %q), want %s with 4 (old)", rec.Dir, rec.Entries, rec.Name, filepath.Join(spool, "webhook-old"))
		}
	}
	if warned != 1 {
		t.Errorf("%d warnings about spools no sink owns, want 1:\n%s", warned, logs.String())
	}
}
