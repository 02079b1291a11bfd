// SPDX-License-Identifier: Apache-2.0

package config

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/execfaild/execfaild/notify"
)

// Every numeric setting has a range; a value outside it is refused with
// file, line and key instead of panicking or exhausting memory in run.
func TestNumericRanges(t *testing.T) {
	tests := []struct {
		name, toml string
		line       int
		key, msg   string
	}{
		{"queue_size max int64", "[[sink.stdout]]\nqueue_size = 9223372036854775807\n", 2, "sink.stdout[0].queue_size", "must be from 1 to 65536"},
		{"queue_size 4e9", "[[sink.stdout]]\nname = \"a\"\nqueue_size = 4000000000\n", 3, "sink.stdout[0].queue_size", "must be from 1 to 65536"},
		{"queue_size negative", "[[sink.stdout]]\nqueue_size = -1\n", 2, "sink.stdout[0].queue_size", "must be from 1 to 65536"},
		{"max_keys zero", "[dedup]\nmax_keys = 0\n", 2, "dedup.max_keys", "must be from 1 to 1000000"},
		{"max_keys huge", "[dedup]\nmax_keys = 100000000\n", 2, "dedup.max_keys", "must be from 1 to 1000000"},
		{"max_pids huge", "[dedup]\nmax_pids = 1000000\n", 2, "dedup.max_pids", "must be from 0 to 1024"},
		{"window a year", "[dedup]\nwindow = \"8760h\"\n", 2, "dedup.window", "at most 24h0m0s"},
		{"burst huge", "[rate_limit]\nburst = 9223372036854775807\n", 2, "rate_limit.burst", "must be from 0 to 1000000"},
		{"rate huge", "[rate_limit]\nrate = \"1e12/s\"\n", 2, "rate_limit.rate", "at most"},
		{"global_burst huge", "[rate_limit]\nglobal_burst = 2000000\n", 2, "rate_limit.global_burst", "must be from 0 to 1000000"},
		{"spool bytes tiny", "[spool]\nmax_bytes = 1\n", 2, "spool.max_bytes", "must be from 65536"},
		{"spool entries huge", "[spool]\nmax_entries = 4000000000\n", 2, "spool.max_entries", "must be from 1 to 1000000"},
		{"retry_max a year", "[spool]\nretry_max = \"8760h\"\n", 2, "spool.retry_max", "at most 24h0m0s"},
		{"sink max_keys huge", "[[sink.stdout]]\ndedup = { max_keys = 99999999 }\n", 2, "sink.stdout[0].dedup.max_keys", "must be from 1 to 1000000"},
		{"syslog message huge", "[[sink.syslog]]\nnetwork = \"tcp\"\naddress = \"h:514\"\nmax_message_bytes = 100000000\n", 4, "sink.syslog[0].max_message_bytes", "above"},
		{"syslog timeout an hour", "[[sink.syslog]]\ntimeout = \"1h\"\n", 2, "sink.syslog[0].timeout", "at most 30s"},
		{"webhook timeout an hour", "[[sink.webhook]]\nurl = \"https://h/x\"\ntimeout = \"1h\"\n", 3, "sink.webhook[0].timeout", "at most 30s"},
		{"slack timeout an hour", "[[sink.slack]]\nurl = \"https://h/x\"\ntimeout = \"1h\"\n", 3, "sink.slack[0].timeout", "at most 30s"},
		{"resolve_timeout a year", "[[sink.alertmanager]]\nurl = \"https://h/x\"\nresolve_timeout = \"8760h\"\n", 3, "sink.alertmanager[0].resolve_timeout", "at most 168h0m0s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("/etc/test.toml", []byte(tc.toml))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("want *config.Error, got %T %v", err, err)
			}
			if ce.Line != tc.line || ce.Key != tc.key || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %v (line %d key %q), want line %d key %q saying %q", err, ce.Line, ce.Key, tc.line, tc.key, tc.msg)
			}
		})
	}
}

// What check-config accepts at the edge of every range, run can build.
func TestLargestAcceptedConfigBuilds(t *testing.T) {
	dir := t.TempDir()
	c, err := Parse("/etc/test.toml", []byte(`
[dedup]
max_keys = 1000000
max_pids = 1024
[spool]
dir = "`+dir+`"
max_entries = 1000000
[[sink.stdout]]
queue_size = 65536
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := notify.New(c.Notify(), notify.Env{Host: "h", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// Load reads every file a sink names the way building the sink would, so
// check-config and a reload refuse what run would: missing, directories,
// devices, FIFOs (without blocking) and oversized files.
func TestLoadChecksNamedFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, notify.MaxSecretFileBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "url")
	if err := os.WriteFile(good, []byte("https://hooks.example/T/B/secretpart\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "absent")
	tests := []struct {
		name, body string
		line       int
		key, msg   string
	}{
		{"url_file /dev/zero", "[[sink.slack]]\nurl_file = \"/dev/zero\"\n", 2, "sink.slack[0].url_file", "not a regular file (a character device)"},
		{"url_file directory", "[[sink.webhook]]\nname = \"w\"\nurl_file = \"" + dir + "\"\n", 3, "sink.webhook[0].url_file", "not a regular file (a directory)"},
		{"url_file missing", "[[sink.alertmanager]]\nurl_file = \"" + missing + "\"\n", 2, "sink.alertmanager[0].url_file", "no such file"},
		{"url_file fifo", "[[sink.slack]]\nurl_file = \"" + fifo + "\"\n", 2, "sink.slack[0].url_file", "not a regular file (a fifo)"},
		{"url_file oversized", "[[sink.slack]]\nurl_file = \"" + big + "\"\n", 2, "sink.slack[0].url_file", "more than the 65536 allowed"},
		{"hmac_secret_file missing", "[[sink.webhook]]\nurl_file = \"" + good + "\"\nhmac_secret_file = \"" + missing + "\"\n", 3, "sink.webhook[0].hmac_secret_file", "no such file"},
		{"tls_ca_file missing", "[[sink.webhook]]\nurl_file = \"" + good + "\"\ntls_ca_file = \"" + missing + "\"\n", 3, "sink.webhook[0].tls_ca_file", "no such file"},
		{"tls_key_file a directory", "[[sink.alertmanager]]\nurl = \"https://am/\"\ntls_cert_file = \"" + good + "\"\ntls_key_file = \"" + dir + "\"\n", 4, "sink.alertmanager[0].tls_key_file", "a directory"},
		{"password_file /dev/zero", "[[sink.webhook]]\nurl = \"https://h/\"\nusername = \"u\"\npassword_file = \"/dev/zero\"\n", 4, "sink.webhook[0].password_file", "character device"},
		{"syslog ca_file missing", "[[sink.syslog]]\nnetwork = \"tcp+tls\"\naddress = \"h:6514\"\nca_file = \"" + missing + "\"\n", 4, "sink.syslog[0].ca_file", "no such file"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "c"+strconv.Itoa(i)+".toml")
			if err := os.WriteFile(path, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { _, err := Load(path); done <- err }()
			var err error
			select {
			case err = <-done:
			case <-time.After(time.Minute):
				t.Fatal("Load blocked on a named file")
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("want *config.Error, got %T %v", err, err)
			}
			if ce.File != path || ce.Line != tc.line || ce.Key != tc.key || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %v (line %d key %q), want line %d key %q saying %q", err, ce.Line, ce.Key, tc.line, tc.key, tc.msg)
			}
			if strings.Contains(err.Error(), "secretpart") || strings.Count(err.Error(), "\n") > 0 {
				t.Errorf("error not one secret-free line: %q", err)
			}
		})
	}
}

// A configuration file that is not a regular file is refused unread.
func TestLoadRefusesDeviceAsConfig(t *testing.T) {
	_, err := Load("/dev/zero")
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("Load(/dev/zero) = %v", err)
	}
}

// A quoted TOML key may hold a newline; the error stays one line.
func TestErrorIsOneLine(t *testing.T) {
	_, err := Parse("/etc/test.toml", []byte("[[sink.webhook]]\nurl = \"https://h/\"\n[sink.webhook.headers]\n\"X-A\\nB\" = \"v\"\n"))
	if err == nil {
		t.Fatal("header name with a newline accepted")
	}
	if strings.ContainsAny(err.Error(), "\r\n") || !strings.HasPrefix(err.Error(), "/etc/test.toml:3: sink.webhook[0].headers.X-A\\nB: ") {
		t.Errorf("error %q: want one line naming the headers table and the key", err)
	}
}
