// SPDX-License-Identifier: Apache-2.0

package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/notify/file"
)

func TestErrorsNameFileLineAndKey(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "token")
	if err := os.WriteFile(secret, []byte("s3cr3t-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, toml string
		line       int
		key, msg   string
	}{
		{"unknown top-level key", "[probe]\nmode = \"auto\"\nbogus = 1\n", 3, "probe.bogus", "unknown key"},
		{"unknown section", "[dedup]\nwindow = \"1m\"\n\n[nonsense]\nx = 1\n", 4, "nonsense", "unknown key"},
		{"unknown key in second sink", "[[sink.stdout]]\nname = \"a\"\n\n[[sink.stdout]]\nname = \"b\"\ncolour = \"red\"\n", 6, "sink.stdout[1].colour", "unknown key"},
		{"unknown key in sink filter", "[[sink.file]]\npath = \"/tmp/x\"\n[sink.file.filter]\nerorrs = [\"ENOENT\"]\n", 4, "sink.file[0].filter.erorrs", "unknown key"},
		{"unknown kind", "[[sink.carrier_pigeon]]\nname = \"x\"\n", 1, "sink.carrier_pigeon", "unknown sink kind (known: "},
		{"bad errno", "[filter]\nerrors = [\"ENOENT\", \"ENOPE\"]\n", 2, "filter.errors", `unknown errno name "ENOPE"`},
		{"bad dedup key", "[dedup]\nkeys = [\"uid\", \"colour\"]\n", 2, "dedup.keys", `unknown field "colour"`},
		{"bad cause", "[filter]\ncauses = [\"not-found\", \"cosmic-ray\"]\n", 2, "filter.causes", `unknown cause "cosmic-ray" (one of interpreter-missing, interpreter-crlf, `},
		{"bad excluded cause in sink", "[[sink.stdout]]\n[sink.stdout.filter]\n\nexclude_causes = [\"Not-Found-In-Path\", \"enoent\"]\n", 4, "sink.stdout[0].filter.exclude_causes", `unknown cause "enoent" (one of `},
		{"bad duration", "[dedup]\nwindow = \"ten minutes\"\n", 2, "dedup.window", "invalid duration"},
		{"bad rate", "\n[rate_limit]\nrate = \"5 per second\"\n", 3, "rate_limit.rate", "invalid rate"},
		{"wrong type", "[spool]\nmax_entries = \"many\"\n", 2, "spool.max_entries", "incompatible types"},
		{"wrong type in sink", "[[sink.stdout]]\n[[sink.stdout]]\nqueue_size = \"big\"\n", 3, "sink.stdout[1].queue_size", "incompatible types"},
		// A file sink without a path now writes to its default; a webhook
		// without a URL is the missing key reported at its table's line.
		{"sink validation", "[[sink.webhook]]\nname = \"log\"\ntimeout = \"2s\"\n", 1, "sink.webhook[0].url", "missing"},
		{"sink validation with line", "[[sink.file]]\npath = \"relative.log\"\n", 2, "sink.file[0].path", "must be absolute"},
		{"sink stage validation", "[[sink.stdout]]\nrate_limit = { rate = \"1/s\", burst = -1 }\n", 2, "sink.stdout[0].rate_limit.burst", "must not be negative"},
		{"duplicate names", "[[sink.stdout]]\nname = \"x\"\n[[sink.stdout]]\nname = \"x\"\n", 4, "sink.stdout[1].name", "already used"},
		{"bad name", "[[sink.stdout]]\nname = \"../up\"\n", 2, "sink.stdout[0].name", "use letters"},
		{"probe value", "[probe]\nmode = \"magic\"\n", 2, "probe.mode", "magic"},
		{"spool dir relative", "[spool]\ndir = \"spool\"\n", 2, "spool.dir", "absolute"},
		{"syntax error", "[probe]\nmode = \"auto\n", 2, "probe.mode", "newlines"},
		{"kernel_invoked", "[filter]\n# comment\nkernel_invoked = \"sometimes\"\n", 3, "filter.kernel_invoked", "must be include, only or exclude"},
		{"single sink table", "[probe]\nmode = \"auto\"\n\n[sink.stdout]\nname = \"x\"\n", 4, "sink.stdout", "write each sink as [[sink.stdout]]"},
		{"sink not a table", "sink = 3\n", 1, "sink", "must be tables"},
		{"both url and url_file", "[[sink.slack]]\nname = \"ops\"\nurl = \"https://hooks.slack.com/services/T/B/secretpart\"\nurl_file = \"/etc/x\"\n", 3, "sink.slack[0].url", "not both"},
		{"syntax error in a secret", "[[sink.slack]]\nurl = secretpart\n", 2, "sink.slack[0].url", "expected value but found <redacted>"},
		{"syntax error in a replica url", "[[sink.alertmanager]]\nurls = [\"http://am1:9093\", secretpart]\n", 2, "sink.alertmanager[0].urls", "expected value but found <redacted>"},
		{"bad escape in a secret", "[[sink.webhook]]\nname = \"a\"\n[sink.webhook.headers]\nX-Key = \"secretpart\\q\"\n", 4, "sink.webhook[0].headers.X-Key", "invalid escape"},
		{"bad value in sink", "[[sink.syslog]]\nnetwork = \"carrier\"\n", 2, "sink.syslog[0].network", "unknown"},
		{"metrics listen without port", "[metrics]\nlisten = \"127.0.0.1\"\n", 2, "metrics.listen", "missing port"},
		{"metrics listen bad port", "\n[metrics]\nlisten = \":http\"\n", 3, "metrics.listen", "port must be a number"},
		{"metrics unknown key", "[metrics]\nport = 9577\n", 2, "metrics.port", "unknown key"},
		{"multi-line array then bad key", "[filter]\nerrors = [\n  \"ENOENT\",\n  \"EACCES\",\n]\nbad = true\n", 6, "filter.bad", "unknown key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("/etc/test.toml", []byte(tc.toml))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("want *config.Error, got %T %v", err, err)
			}
			if ce.File != "/etc/test.toml" || ce.Line != tc.line || ce.Key != tc.key {
				t.Errorf("got file %q line %d key %q (%v), want line %d key %q", ce.File, ce.Line, ce.Key, err, tc.line, tc.key)
			}
			if strings.Contains(err.Error(), "secretpart") {
				t.Errorf("error reveals a secret: %v", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
			if want := "/etc/test.toml:" + strconv.Itoa(tc.line) + ": "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q does not start with %q", err, want)
			}
		})
	}
}

func TestDefaultsAndInheritance(t *testing.T) {
	c, err := Parse("t.toml", []byte(`
[dedup]
window = "5m"
[rate_limit]
rate = "2/s"
burst = 3
[[sink.stdout]]
[[sink.file]]
path = "/var/log/execfaild.jsonl"
dedup = { window = "off" }
rate_limit = { rate = "30/m" }
[[sink.file]]
name = "second"
path = "/var/log/other.jsonl"
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Sinks) != 3 {
		t.Fatalf("got %d sinks", len(c.Sinks))
	}
	names := []string{}
	for _, s := range c.Sinks {
		names = append(names, s.ID())
	}
	if got := strings.Join(names, " "); got != "file-file-1 file-second stdout-stdout" {
		t.Errorf("sink ids %q", got)
	}
	f0 := c.Sinks[0].Config.Common()
	if f0.Dedup.Window != notify.Off || f0.RateLimit.Rate*60 != 30 || f0.RateLimit.Burst != 3 {
		t.Errorf("file-1 stages: %+v %+v", f0.Dedup, f0.RateLimit)
	}
	so := c.Sinks[2].Config.Common()
	if so.Dedup.Window.D() != 5*time.Minute || so.RateLimit.Rate != 2 || so.QueueSize != notify.DefaultQueueSize {
		t.Errorf("stdout stages: %+v %+v %d", so.Dedup, so.RateLimit, so.QueueSize)
	}
	if got := strings.Join(so.Dedup.Keys, ","); got != "uid,error,binary,unit" {
		t.Errorf("dedup keys %q", got)
	}
	if fc := c.Sinks[0].Config.(*file.FileConfig); fc.Mode != 0o600 {
		t.Errorf("file mode %#o", fc.Mode)
	}
	if c.Spool.Dir != "/var/lib/execfaild/spool" || c.Probe.Mode != "auto" {
		t.Errorf("defaults lost: %+v %+v", c.Spool, c.Probe)
	}
}

func TestDefaultPicksJournalWhenJournaldRuns(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "socket")
	old := journalSocket
	t.Cleanup(func() { journalSocket = old })

	journalSocket = sock
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Sinks) != 1 || c.Sinks[0].Kind != "stdout" {
		t.Fatalf("without journald: %+v", c.Sinks)
	}
	if err := os.WriteFile(sock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = Default()
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Sinks) != 1 || c.Sinks[0].Kind != "journal" {
		t.Fatalf("with journald: %+v", c.Sinks)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "absent.toml"))
	if err == nil || !strings.Contains(err.Error(), "absent.toml") {
		t.Fatalf("explicit missing file: %v", err)
	}
}

func TestWriteTOMLRoundTrips(t *testing.T) {
	c, err := Parse("t.toml", []byte(`
[filter]
errors = ["enoent"]
exclude_paths = ["/tmp/**"]
[[sink.file]]
name = "log"
path = "/var/log/x.jsonl"
filter = { uids = [0, 1000] }
`))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := c.WriteTOML(&b); err != nil {
		t.Fatal(err)
	}
	again, err := Parse("printed.toml", b.Bytes())
	if err != nil {
		t.Fatalf("printed config does not load: %v\n%s", err, b.String())
	}
	var b2 bytes.Buffer
	if err := again.WriteTOML(&b2); err != nil {
		t.Fatal(err)
	}
	if b.String() != b2.String() {
		t.Errorf("not stable:\n%s\n---\n%s", b.String(), b2.String())
	}
	if !strings.Contains(b.String(), `errors = ["ENOENT"]`) || !strings.Contains(b.String(), `window = "10m0s"`) {
		t.Errorf("effective config lacks normalized values:\n%s", b.String())
	}
}

// TestAllUnknownKeysInOneReport: every misspelt key is named, one line
// each with its line number, not only the first.
func TestAllUnknownKeysInOneReport(t *testing.T) {
	src := "[dedup]\nwindwo = \"2m\"\n\n[[sink.stdout]]\nqueue = 5\n\n[spool]\ndri = \"/x\"\n"
	_, err := Parse("/etc/execfaild.toml", []byte(src))
	if err == nil {
		t.Fatal("accepted")
	}
	want := "/etc/execfaild.toml:2: dedup.windwo: unknown key\n/etc/execfaild.toml:5: sink.stdout[0].queue: unknown key\n/etc/execfaild.toml:8: spool.dri: unknown key"
	if err.Error() != want {
		t.Errorf("error:\n%s\nwant:\n%s", err, want)
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.Line != 2 {
		t.Errorf("errors.As finds %+v, want the first key's *Error", ce)
	}
}
