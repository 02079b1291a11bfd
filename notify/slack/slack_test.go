// SPDX-License-Identifier: Apache-2.0

package slack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/notify/internal/sinktest"
	"github.com/execfaild/execfaild/notify/slack"
	"github.com/execfaild/execfaild/notify/slack/slacktest"
	"github.com/execfaild/execfaild/probe/event"
)

// The fixed clock of every golden file.
var t0 = sinktest.T0

func newSink(t *testing.T, cfg *slack.Config, log *slog.Logger) *slack.Sink {
	return sinktest.Build[*slack.Sink](t, cfg, "ops", log)
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, got, "", "  "); err != nil {
		t.Fatalf("payload is not JSON: %v", err)
	}
	sinktest.Golden(t, filepath.Join("testdata", name+".golden"), pretty.Bytes())
}

func TestGolden(t *testing.T) {
	s := newSink(t, &slack.Config{URL: "https://hooks.slack.example/services/T/B/golden"}, nil)
	for name, ev := range map[string]*event.Event{"synthetic": sinktest.Synthetic(), "digest": sinktest.Digest()} {
		body, err := s.Payload(ev)
		if err != nil {
			t.Fatal(err)
		}
		if p := slacktest.Check(body); p != nil {
			t.Errorf("%s: stand-in rejects the golden payload: %v", name, p)
		}
		golden(t, name, body)
	}
}

// reader returns the text a person sees in the message: every text
// object, unescaped, in order.
func reader(t *testing.T, body []byte) string {
	t.Helper()
	var m slack.Message
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, b := range m.Blocks {
		if b.Text != nil {
			parts = append(parts, b.Text.Text)
		}
		for _, f := range append(b.Fields, b.Elements...) {
			parts = append(parts, f.Text)
		}
	}
	return slacktest.Unescape(strings.Join(parts, "\n"))
}

func TestDeliversReadableMessage(t *testing.T) {
	srv := slacktest.New()
	defer srv.Close()
	s := newSink(t, &slack.Config{URL: notify.Secret(srv.WebhookURL()), Channel: "#ops", Username: "execfaild", IconEmoji: ":warning:"}, nil)
	for _, ev := range []*event.Event{sinktest.Synthetic(), sinktest.Digest()} {
		if err := s.Send(context.Background(), ev); err != nil {
			t.Fatalf("Send: %v (stand-in saw %+v)", err, srv.Requests())
		}
	}
	got := srv.Accepted()
	if len(got) != 2 {
		t.Fatalf("stand-in accepted %d messages, want 2: %+v", len(got), srv.Requests())
	}
	var m slack.Message
	json.Unmarshal(got[0], &m)
	if m.Channel != "#ops" || m.Username != "execfaild" || m.IconEmoji != ":warning:" {
		t.Errorf("overrides not sent: %+v", m)
	}
	if !strings.Contains(m.Text, "/srv/app/deploy.sh failed on web-1: ENOENT (no such file or directory)") {
		t.Errorf("fallback text = %q", m.Text)
	}
	// The diagnosis is the first block after the header, as plain text,
	// and the notification line ends with it.
	sentence := `the script /srv/app/deploy.sh has Windows (CRLF) line endings, so its interpreter "/bin/bash\r" does not exist; convert it with dos2unix /srv/app/deploy.sh`
	if len(m.Blocks) < 2 || m.Blocks[1].Type != "section" || m.Blocks[1].Text == nil ||
		m.Blocks[1].Text.Type != "plain_text" || m.Blocks[1].Text.Text != sentence {
		t.Errorf("second block = %+v, want a plain_text section %q", m.Blocks[1], sentence)
	}
	if !strings.HasSuffix(m.Text, "(no such file or directory): "+sentence) {
		t.Errorf("fallback text = %q, want it to end with the sentence", m.Text)
	}
	single := reader(t, got[0])
	for _, want := range []string{
		"Exec failed on web-1: deploy.sh (ENOENT)",
		"*`/srv/app/deploy.sh`* could not be executed: *ENOENT* (no such file or directory)",
		"called as `./deploy.sh`",
		"interpreter `/bin/bash\\r`", // the \r shown, not swallowed
		"does not exist — the script has Windows (CRLF) line endings",
		"uid 1000 (login uid 1000)",
		"`deployer` pid 4242",
		"parent `systemd` pid 4200",
		"`deployer.service`",
		"*Working directory*\n`/srv/app`",
		`./deploy.sh '--target=<prod> & "all"' ']\x'`,
		"execve · stage loader · 2026-03-01 10:02:03 UTC",
	} {
		if !strings.Contains(single, want) {
			t.Errorf("message lacks %q:\n%s", want, single)
		}
	}
	dg := reader(t, got[1])
	for _, want := range []string{
		"Exec failed 37 more times on web-1: deploy.sh (ENOENT)",
		"*37 more times* between 10:02 UTC and 10:12 UTC, pids 4242, 4250, 4251, 4307, …",
	} {
		if !strings.Contains(dg, want) {
			t.Errorf("digest lacks %q:\n%s", want, dg)
		}
	}
}

func TestHostileInputStaysInert(t *testing.T) {
	srv := slacktest.New()
	defer srv.Close()
	s := newSink(t, &slack.Config{URL: notify.Secret(srv.WebhookURL())}, nil)
	ev := sinktest.Synthetic()
	ev.Arguments = []string{
		"<!channel>", "<@U024BE7LH>", "<https://evil.example|click me>", "@here #general https://evil.example",
		"&lt;already escaped&gt;", "\x1b[31mred\x1b[0m", "abc\u202eevil", "```break out```", "`tick`", "bad\xffutf8",
		strings.Repeat("A&<", 40000),
	}
	ev.Process.Comm = "*bold*<!here>"
	ev.Process.Cwd = "/tmp/" + strings.Repeat("d&", 3000)
	ev.Binary.Path = "/srv/<!everyone>/" + strings.Repeat("x", 400) + "\r\n.sh"
	ev.Process.Unit = "a`b.service"
	ev.ArgumentsTruncated = true
	ev.CauseText = "the interpreter <!here> of *bold*_x_ \x1b[2J does not exist"
	if err := s.Send(context.Background(), ev); err != nil {
		t.Fatalf("Send: %v (stand-in: %+v)", err, srv.Requests()[len(srv.Requests())-1].Problems)
	}
	body := srv.Accepted()[0]
	text := reader(t, body)
	for _, want := range []string{
		"<!channel>", "<@U024BE7LH>", "'<https://evil.example|click me>'", // shown as text after unescaping
		"&lt;already escaped&gt;",                            // escapes in argv are data, shown literally
		`\x1b[31mred\x1b[0m`, `abc\u202eevil`, `bad\xffutf8`, // invisible characters spelled out
		"ˋˋˋbreak outˋˋˋ",
		"…", // the visible cut
		"/srv/<!everyone>/xxx",
		"(argument list truncated by the probe)",
		`the interpreter <!here> of *bold*_x_ \x1b[2J does not exist`, // plain text: no markup, escape spelled out
	} {
		if !strings.Contains(text, want) {
			t.Errorf("reader text lacks %q", want)
		}
	}
	if strings.Contains(string(body), "<!channel>") || strings.Contains(string(body), "<@U024") || strings.Contains(string(body), "<!everyone>") || strings.Contains(string(body), "<!here>") {
		t.Errorf("a mention reached Slack unescaped")
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	srv := slacktest.New()
	defer srv.Close()
	srv.Enqueue(slacktest.Response{Status: 429, Body: "rate_limited", RetryAfter: "1"})
	s := newSink(t, &slack.Config{URL: notify.Secret(srv.WebhookURL())}, nil)
	if err := s.Send(context.Background(), sinktest.Synthetic()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 || reqs[0].Status != 429 || reqs[1].Status != 200 {
		t.Fatalf("requests: %+v", reqs)
	}
	if gap := reqs[1].Time.Sub(reqs[0].Time); gap < time.Second {
		t.Errorf("retried %v after Retry-After: 1", gap)
	}
}

func TestLongRateLimitIsLeftToThePipeline(t *testing.T) {
	srv := slacktest.New()
	defer srv.Close()
	srv.Enqueue(slacktest.Response{Status: 429, Body: "rate_limited", RetryAfter: "30"})
	s := newSink(t, &slack.Config{URL: notify.Secret(srv.WebhookURL())}, nil)
	err := s.Send(context.Background(), sinktest.Synthetic())
	if err == nil || notify.IsPermanent(err) {
		t.Fatalf("err = %v, want retryable", err)
	}
	var ra interface{ RetryAfter() time.Duration }
	if !strings.Contains(err.Error(), "429") || !errorAs(err, &ra) || ra.RetryAfter() != 30*time.Second {
		t.Errorf("err = %v, want a 429 carrying Retry-After 30s", err)
	}
	if n := len(srv.Requests()); n != 1 {
		t.Errorf("requests = %d, want 1", n)
	}
}

func TestRemovedWebhookIsPermanent(t *testing.T) {
	srv := slacktest.New()
	defer srv.Close()
	var logs bytes.Buffer
	s := newSink(t, &slack.Config{URL: notify.Secret(srv.URL + "/services/T0/B0/revokedSECRETtoken")}, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	err := s.Send(context.Background(), sinktest.Synthetic())
	if !notify.IsPermanent(err) {
		t.Fatalf("err = %v, want permanent", err)
	}
	if want := "slack ops: permanent: 404 Not Found: no_service (webhook removed?)"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	if len(srv.Requests()) != 1 {
		t.Errorf("a permanent failure was retried: %d requests", len(srv.Requests()))
	}
	for _, status := range []slacktest.Response{{Status: 410, Body: "channel_is_archived"}, {Status: 403, Body: "action_prohibited"}, {Status: 400, Body: "invalid_blocks"}} {
		srv2 := slacktest.New()
		srv2.Enqueue(status)
		s2 := newSink(t, &slack.Config{URL: notify.Secret(srv2.WebhookURL())}, nil)
		err := s2.Send(context.Background(), sinktest.Synthetic())
		srv2.Close()
		if !notify.IsPermanent(err) || !strings.Contains(err.Error(), status.Body) {
			t.Errorf("%d: err = %v, want permanent naming %s", status.Status, err, status.Body)
		}
	}
}

func TestSecretURLNeverShown(t *testing.T) {
	srv := slacktest.New()
	defer srv.Close()
	srv.Enqueue(slacktest.Response{Status: 500, Body: "rollup_error"}, slacktest.Response{Status: 502}, slacktest.Response{Status: 503})
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := &slack.Config{URL: notify.Secret(srv.WebhookURL())}
	s := newSink(t, cfg, log)
	errServer := s.Send(context.Background(), sinktest.Synthetic())

	dead := slacktest.New()
	deadURL := dead.WebhookURL()
	dead.Close()
	s2 := newSink(t, &slack.Config{URL: notify.Secret(deadURL)}, log)
	errDown := s2.Send(context.Background(), sinktest.Synthetic())

	for _, err := range []error{errServer, errDown} {
		if err == nil || notify.IsPermanent(err) {
			t.Fatalf("err = %v, want retryable", err)
		}
	}
	if logs.Len() == 0 {
		t.Fatal("retries were not logged; nothing to check")
	}
	printed := errServer.Error() + errDown.Error() + logs.String()
	cfgDump, _ := json.Marshal(cfg)
	printed += string(cfgDump)
	for _, secret := range []string{srv.Path, "s3cr3tW3bh00kT0k3nXYZ"} {
		if strings.Contains(printed, secret) {
			t.Errorf("the webhook path appears in an error, log line or config dump")
		}
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "url")
	os.WriteFile(file, []byte("https://hooks.slack.example/services/T/B/fromfile\n"), 0o600)
	for _, tc := range []struct {
		cfg  slack.Config
		want string
	}{
		{slack.Config{}, "url: missing: set url or url_file"},
		{slack.Config{URL: "https://h.example/services/SECRETx", URLFile: file}, "url: set either url or url_file, not both"},
		{slack.Config{URL: "ftp://h.example/services/SECRETx"}, "url: scheme must be http or https"},
		{slack.Config{URL: "https://h.example/x", Channel: "ops channel"}, `channel: "ops channel" is not a channel name (#ops), user (@name) or id`},
		{slack.Config{URL: "https://h.example/x", IconEmoji: "warning"}, `icon_emoji: "warning": write it as :name:`},
		{slack.Config{URL: "https://h.example/x", IconEmoji: ":x:", IconURL: "https://i.example/a.png"}, "icon_emoji: set either icon_emoji or icon_url, not both"},
		{slack.Config{URL: "https://h.example/x", IconURL: "file:///etc/passwd"}, "icon_url: must be an http(s) URL"},
		{slack.Config{URL: "https://h.example/x", Username: "<!here>"}, "username: at most 80 characters, no <, >, & or newline"},
	} {
		err := tc.cfg.Validate()
		if err == nil || err.Error() != tc.want {
			t.Errorf("Validate(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "SECRET") {
			t.Errorf("error shows the URL: %v", err)
		}
	}
	ok := slack.Config{URLFile: file}
	if err := ok.Validate(); err != nil {
		t.Errorf("url_file: %v", err)
	}
	if _, err := ok.New(notify.Env{}); err != nil {
		t.Errorf("New with url_file: %v", err)
	}
}

func TestRegisteredWithSlackPace(t *testing.T) {
	cfg, ok := notify.NewSinkConfig("slack")
	if !ok {
		t.Fatal("slack is not registered")
	}
	rd, ok := cfg.(notify.RateLimitDefaulter)
	if !ok {
		t.Fatal("slack config does not set its own default rate limit")
	}
	if r := rd.DefaultRateLimit(); r.Rate.PerSecond() > 1 || r.Rate <= 0 || r.Burst < 1 {
		t.Errorf("default rate limit %+v exceeds Slack's one message per second", r)
	}
}

func errorAs(err error, target any) bool {
	for e := err; e != nil; {
		if ra, ok := e.(interface{ RetryAfter() time.Duration }); ok {
			*(target.(*interface{ RetryAfter() time.Duration })) = ra
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

func TestDecodesEveryKey(t *testing.T) {
	const doc = `
name = "ops"
url = "https://hooks.slack.example/services/T/B/decode"
channel = "#ops"
username = "execfaild"
icon_emoji = ":warning:"
timeout = "3s"
[rate_limit]
rate = "1/s"
burst = 2
`
	cfg, _ := notify.NewSinkConfig("slack")
	sinktest.Decode(t, doc, cfg)
	c := cfg.(*slack.Config)
	if c.Name != "ops" || c.URL.Reveal() != "https://hooks.slack.example/services/T/B/decode" || c.Channel != "#ops" ||
		c.Username != "execfaild" || c.IconEmoji != ":warning:" || c.Timeout.D() != 3*time.Second || c.RateLimit.Burst != 2 {
		t.Errorf("decoded %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
}

func TestPathSearchAndKernelExec(t *testing.T) {
	s := newSink(t, &slack.Config{URL: "https://hooks.slack.example/services/T/B/x"}, nil)
	ev := event.Synthetic(t0, "web-1")
	ev.Binary, ev.InterpreterPath = nil, ""
	ev.Path = "/bin/kubectl"
	ev.Tried = []string{"/usr/local/bin", "/usr/bin", "/bin"}
	body, _ := s.Payload(&ev)
	if p := slacktest.Check(body); p != nil {
		t.Fatal(p)
	}
	if text := reader(t, body); !strings.Contains(text, "not found in any $PATH directory tried: `/usr/local/bin`, `/usr/bin`, `/bin`") {
		t.Errorf("PATH search not shown:\n%s", text)
	}

	k := event.Synthetic(t0, "web-1")
	k.Syscall, k.KernelInvoked = event.SyscallKernel, true
	k.Binary, k.InterpreterPath, k.Path = nil, "", "/sbin/modprobe"
	k.SetErrno(-13)
	body, _ = s.Payload(&k)
	text := reader(t, body)
	for _, want := range []string{"*`/sbin/modprobe`* could not be executed: *EACCES* (permission denied)", "started by the kernel (usermode helper)", "*User*\nkernel"} {
		if !strings.Contains(text, want) {
			t.Errorf("kernel exec lacks %q:\n%s", want, text)
		}
	}
}
