// SPDX-License-Identifier: Apache-2.0

package config

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/notify/slack/slacktest"
	"github.com/execfaild/execfaild/notify/webhook/webhooktest"
	"github.com/execfaild/execfaild/probe/event"
)

// TestSecretsInArgumentsNeverReachChat: the configuration file, the real
// pipeline and the Slack and webhook sinks. A failed command whose argv
// holds a password, a bearer token and URL credentials reaches neither
// with the secret, and says that something was redacted; the journal, where
// the operator asked for it, keeps the original.
func TestSecretsInArgumentsNeverReachChat(t *testing.T) {
	secrets := []string{"S3cretPw", "tok-abc123", "url-pa55", "qs-tok3n"}
	slackSrv := slacktest.New()
	defer slackSrv.Close()
	hook, err := webhooktest.Start(webhooktest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer hook.Close()
	sock := filepath.Join(t.TempDir(), "journal.socket")
	journal, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer journal.Close()

	file := filepath.Join(t.TempDir(), "execfaild.toml")
	c, err := Parse(file, []byte(fmt.Sprintf(`
[spool]
dir = %q

[[sink.slack]]
url = %q
rate_limit = { rate = "off" }

[[sink.webhook]]
url = %q
rate_limit = { rate = "off" }

[[sink.journal]]
socket = %q
keep_arguments = true
`, t.TempDir(), slackSrv.WebhookURL(), hook.URL(), sock)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := notify.New(c.Notify(), notify.Env{Host: "web-1"})
	if err != nil {
		t.Fatal(err)
	}
	ev := event.Synthetic(time.Now(), "web-1")
	ev.Arguments = []string{"mysql", "-pS3cretPw", "-h", "db"}
	p.Handle(&ev)
	ev2 := event.Synthetic(time.Now(), "web-1")
	ev2.Binary.Path, ev2.Path = "/usr/bin/curl", "/usr/bin/curl"
	ev2.Arguments = []string{"curl", "-H", "Authorization: Bearer tok-abc123", "https://deploy:url-pa55@h.example/x?access_token=qs-tok3n"}
	p.Handle(&ev2)
	want := [][]string{
		{"mysql", "-p<redacted>", "-h", "db"},
		{"curl", "-H", "Authorization: Bearer <redacted>", "https://deploy:<redacted>@h.example/x?access_token=<redacted>"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}

	if got := slackSrv.Accepted(); len(got) != 2 {
		t.Fatalf("slack got %d messages, want 2", len(got))
	}
	for _, body := range slackSrv.Accepted() {
		for _, s := range secrets {
			if strings.Contains(string(body), s) {
				t.Errorf("slack message holds %q: %s", s, body)
			}
		}
		if !strings.Contains(string(body), "redacted") {
			t.Errorf("slack message does not say that arguments were redacted: %s", body)
		}
	}
	evs := hook.Events()
	if len(evs) != 2 {
		t.Fatalf("webhook got %d events, want 2", len(evs))
	}
	for i, r := range hook.Requests() {
		for _, s := range secrets {
			if strings.Contains(string(r.Body), s) {
				t.Errorf("webhook request %d holds %q", i, s)
			}
		}
	}
	for i, e := range evs {
		if !slices.Equal(e.Arguments, want[i]) || !e.ArgumentsRedacted {
			t.Errorf("webhook event %d: arguments %q redacted=%v, want %q redacted=true", i, e.Arguments, e.ArgumentsRedacted, want[i])
		}
	}

	journal.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1<<16)
	var entries []string
	for range 2 {
		n, err := journal.Read(buf)
		if err != nil {
			t.Fatalf("journal entry: %v", err)
		}
		entries = append(entries, string(buf[:n]))
	}
	all := strings.Join(entries, "\n")
	for _, s := range secrets {
		if !strings.Contains(all, s) {
			t.Errorf("journal, told to keep arguments, lacks %q", s)
		}
	}
	if strings.Contains(all, "EXECFAIL_ARGUMENTS_REDACTED") {
		t.Errorf("journal entries with original arguments claim redaction")
	}
}
