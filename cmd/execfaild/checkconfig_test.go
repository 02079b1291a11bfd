// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/execfaild/execfaild/probe/event"
)

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	const hook = "https://hooks.slack.com/services/T1/B2/verysecretpart"
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte("[dedup]\nwindow = \"2m\"\n\n[[sink.slack]]\nname = \"ops\"\nurl = \""+hook+"\"\n"), 0o600)
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[dedup]\nwindow = \"2m\"\n\n[[sink.slack]]\nurl = \""+hook+"\"\nchanel = \"#ops\"\n"), 0o600)
	both := filepath.Join(dir, "both.toml")
	os.WriteFile(both, []byte("[[sink.slack]]\nurl = \""+hook+"\"\nurl_file = \"/etc/hook\"\n"), 0o600)

	var out, errb bytes.Buffer
	if code := run([]string{"check-config", good}, &out, &errb); code != 0 {
		t.Fatalf("good config: exit %d: %s", code, errb.String())
	}
	// A webhook URL shows where it goes, not its token.
	for _, want := range []string{`window = "2m0s"`, `name = "ops"`, `url = "https://hooks.slack.com/<redacted>"`, `rate = "1/s"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("effective config lacks %s:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String()+errb.String(), "verysecretpart") {
		t.Errorf("secret printed:\n%s", out.String())
	}

	for _, tc := range []struct{ file, want string }{
		{bad, bad + ":6: sink.slack[0].chanel: unknown key"},
		{both, both + ":2: sink.slack[0].url: set either url or url_file, not both"},
	} {
		out.Reset()
		errb.Reset()
		if code := run([]string{"check-config", tc.file}, &out, &errb); code != 1 {
			t.Errorf("%s: exit %d, want 1", tc.file, code)
		}
		if !strings.Contains(errb.String(), tc.want) {
			t.Errorf("stderr %q does not contain %q", errb.String(), tc.want)
		}
		if strings.Contains(out.String()+errb.String(), "verysecretpart") {
			t.Errorf("secret printed in error")
		}
	}
}

// TestCheckConfigSaysJournalLeftOut: a file whose only sink is Slack no
// longer reports to the journal; check-config says so in one line, and
// says nothing once the journal is a sink beside it.
func TestCheckConfigSaysJournalLeftOut(t *testing.T) {
	dir := t.TempDir()
	slackOnly := filepath.Join(dir, "slack.toml")
	os.WriteFile(slackOnly, []byte("[[sink.slack]]\nurl = \"https://hooks.slack.com/services/T1/B2/secret\"\n"), 0o600)
	both := filepath.Join(dir, "both.toml")
	os.WriteFile(both, []byte("[[sink.journal]]\n\n[[sink.slack]]\nurl = \"https://hooks.slack.com/services/T1/B2/secret\"\n"), 0o600)
	var out, errb bytes.Buffer
	if code := run([]string{"check-config", slackOnly}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	want := "note: " + slackOnly + " has no [[sink.journal]]: failures go to its slack sinks only, not to journalctl -u execfaild\n"
	if errb.String() != want {
		t.Errorf("stderr %q, want %q", errb.String(), want)
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"check-config", both}, &out, &errb); code != 0 || errb.Len() != 0 {
		t.Errorf("journal and slack: exit %d, stderr %q; want 0 and nothing", code, errb.String())
	}
}

func TestTestSinks(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "events.jsonl")
	cfg := filepath.Join(dir, "c.toml")
	os.WriteFile(cfg, []byte(`
[[sink.file]]
name = "good"
path = "`+target+`"
[[sink.file]]
name = "bad"
path = "`+dir+`"
`), 0o600)
	var out, errb bytes.Buffer
	code := run([]string{"test-sinks", cfg}, &out, &errb)
	if code != 1 {
		t.Errorf("exit %d, want 1 (one sink fails)", code)
	}
	if !strings.Contains(out.String(), "ok   file/good\n") || !strings.Contains(out.String(), "FAIL file/bad: ") {
		t.Errorf("output:\n%s", out.String())
	}
	b, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	var ev event.Event
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Error != "ENOENT" || ev.Binary == nil || ev.Binary.Path != "/srv/app/deploy.sh" {
		t.Errorf("synthetic event: %+v", ev)
	}
	// It says it is a test: no reader takes it for a real failure.
	if !ev.Test || !strings.Contains(string(b), `"test":true`) {
		t.Errorf("synthetic event not marked as a test: %s", b)
	}
}

// TestCheckConfigEffectiveValues: a setting left out shows the value the
// sink will use, not the zero that stands for it, and the file is named
// the way run names it.
func TestCheckConfigEffectiveValues(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.toml")
	os.WriteFile(cfg, []byte(`
[[sink.slack]]
url_file = "`+filepath.Join(dir, "hook")+`"
[[sink.webhook]]
url = "http://127.0.0.1:1/hook"
[[sink.alertmanager]]
url = "http://127.0.0.1:1"
[[sink.syslog]]
name = "tcp"
network = "tcp"
address = "127.0.0.1:514"
[[sink.syslog]]
name = "local"
`), 0o600)
	os.WriteFile(filepath.Join(dir, "hook"), []byte("https://hooks.slack.com/services/T1/B2/xyzsecret\n"), 0o600)

	var out, errb bytes.Buffer
	if code := run([]string{"check-config", "--config", cfg}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	got := out.String()
	if strings.Contains(got, `"0s"`) || strings.Contains(got, "max_message_bytes = 0") ||
		strings.Contains(got, `format = ""`) || strings.Contains(got, `framing = ""`) || strings.Contains(got, `address = ""`) {
		t.Errorf("a zero standing for a default is printed:\n%s", got)
	}
	if n := strings.Count(got, `    timeout = "10s"`); n != 5 {
		t.Errorf("%d sinks show timeout = \"10s\", want 5 (three HTTP sinks, two syslog):\n%s", n, got)
	}
	for _, want := range []string{
		"format = \"rfc5424\"\n    facility", "max_message_bytes = 8000", `framing = "octet-counting"`,
		`address = "/dev/log"`, "format = \"rfc3164\"", "max_message_bytes = 1024",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("effective config lacks %s:\n%s", want, got)
		}
	}

	out.Reset()
	errb.Reset()
	if code := run([]string{"check-config", "--config", cfg, cfg}, &out, &errb); code != 2 {
		t.Errorf("--config and an argument: exit %d, want 2", code)
	}
}

// A file whose memory bound exceeds the unit's MemoryMax= is refused by
// check-config as the daemon's start and reload refuse it; within the
// limit the bound is printed.
func TestCheckConfigMemoryBound(t *testing.T) {
	dir := t.TempDir()
	huge := filepath.Join(dir, "huge.toml")
	os.WriteFile(huge, []byte("[probe]\nring_buffer_bytes = 1073741824\n\n[[sink.stdout]]\nname = \"out\"\n"), 0o600)
	t.Setenv("EXECFAILD_MEMORY_MAX", "536870912")
	var out, errb bytes.Buffer
	if code := run([]string{"check-config", huge}, &out, &errb); code != 1 {
		t.Errorf("1 GiB ring buffer under MemoryMax=512M: exit %d, want 1", code)
	}
	if want := huge + ": the configuration may need up to "; !strings.Contains(errb.String(), want) || !strings.Contains(errb.String(), "probe.ring_buffer_bytes 1 GiB") {
		t.Errorf("stderr %q does not name the file and probe.ring_buffer_bytes", errb.String())
	}
	out.Reset()
	errb.Reset()
	t.Setenv("EXECFAILD_MEMORY_MAX", "4294967296")
	if code := run([]string{"check-config", huge}, &out, &errb); code != 0 {
		t.Fatalf("under a 4 GiB limit: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "# memory bound 1.") || !strings.Contains(out.String(), "(the unit's MemoryMax= is 4 GiB)") {
		t.Errorf("bound not printed:\n%s", out.String()[:200])
	}
}

// TestCheckConfigShowsDefaultedHost: the effective configuration names the
// host every sink will carry even when the file does not set one.
func TestCheckConfigShowsDefaultedHost(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(file, []byte("[[sink.stdout]]\n"), 0o600)
	var out, errb bytes.Buffer
	if code := run([]string{"check-config", file}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if want := "host = " + strconv.Quote(event.LocalHost()) + "\n"; !strings.Contains(out.String(), want) {
		t.Errorf("effective configuration lacks %q:\n%s", want, out.String())
	}
}
