// SPDX-License-Identifier: Apache-2.0

package config

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/execfaild/execfaild/internal/poll"
	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/probe/event"
)

// capture keeps every request body and datagram the sinks send.
type capture struct {
	mu   sync.Mutex
	got  map[string][]string // by destination
	http *httptest.Server
	udp  net.PacketConn
	unix *net.UnixConn
}

func startCapture(t *testing.T) *capture {
	t.Helper()
	c := &capture{got: map[string][]string{}}
	c.http = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c.add(strings.Trim(strings.TrimSuffix(r.URL.Path, "/api/v2/alerts"), "/"), string(b))
	}))
	var err error
	if c.udp, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "journal.sock")
	if c.unix, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"}); err != nil {
		t.Fatal(err)
	}
	go c.read("syslog", c.udp)
	go c.read("journal", c.unix)
	t.Cleanup(func() { c.http.Close(); c.udp.Close(); c.unix.Close() })
	return c
}

func (c *capture) read(dest string, pc net.PacketConn) {
	buf := make([]byte, 1<<16)
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		c.add(dest, string(buf[:n]))
	}
}

func (c *capture) add(dest, body string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got[dest] = append(c.got[dest], body)
}

func (c *capture) bodies(dest string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.got[dest]...)
}

// fleetConfig names every sink kind, each pointing at the capture.
func fleetConfig(t *testing.T, c *capture, out, labels string) *Config {
	t.Helper()
	text := fmt.Sprintf(`
host = "web-7.fra1"

[labels]
%s

[spool]
dir = %q

[[sink.file]]
path = %q

[[sink.journal]]
socket = %q

[[sink.syslog]]
network = "udp"
address = %q
format = "rfc5424"

[[sink.webhook]]
url = "%s/webhook"

[[sink.alertmanager]]
urls = ["%s/am1", "%s/am2"]

[[sink.slack]]
url = "%s/slack"
`, labels, t.TempDir(), out, c.unix.LocalAddr().String(), c.udp.LocalAddr().String(), c.http.URL, c.http.URL, c.http.URL, c.http.URL)
	cfg, err := Parse(filepath.Join(t.TempDir(), "execfaild.toml"), []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestHostAndLabelsReachEverySink: the host setting and the [labels]
// reach every sink's own output, and a reload changes them for the
// failures after it.
func TestHostAndLabelsReachEverySink(t *testing.T) {
	c := startCapture(t)
	out := filepath.Join(t.TempDir(), "events.jsonl")
	cfg := fleetConfig(t, c, out, `site = "fra1"`+"\n"+`role = "db"`)
	p, err := notify.New(cfg.Notify(), notify.Env{Host: "not-this-one"})
	if err != nil {
		t.Fatal(err)
	}
	ev := event.Synthetic(time.Now(), "probe-host")
	ev.SetErrno(-13) // not held back as a PATH search
	p.Handle(&ev)
	poll.Until(t, "every sink delivered", func() bool { return allDelivered(p, 1) })

	want := map[string][]string{
		"file":    {`"host":"web-7.fra1"`, `"labels":{"role":"db","site":"fra1"}`},
		"journal": {"EXECFAIL_HOST=web-7.fra1\n", "EXECFAIL_LABEL_SITE=fra1\n", "EXECFAIL_LABEL_ROLE=db\n"},
		"syslog":  {" web-7.fra1 execfaild ", ` host="web-7.fra1"`, ` label_role="db" label_site="fra1"`},
		"webhook": {`"host":"web-7.fra1"`, `"labels":{"role":"db","site":"fra1"}`},
		"am1":     {`"host":"web-7.fra1"`, `"site":"fra1"`, `"role":"db"`},
		"am2":     {`"host":"web-7.fra1"`, `"site":"fra1"`, `"role":"db"`},
		"slack":   {"web-7.fra1", "role=db · site=fra1"},
	}
	check := func(round int, want map[string][]string) {
		t.Helper()
		for dest, subs := range want {
			var bodies []string
			if dest == "file" {
				b, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				bodies = strings.Split(strings.TrimSpace(string(b)), "\n")
			} else {
				bodies = c.bodies(dest)
			}
			if len(bodies) != round {
				t.Errorf("%s got %d notifications, want %d", dest, len(bodies), round)
				continue
			}
			for _, s := range subs {
				if !strings.Contains(bodies[round-1], s) {
					t.Errorf("%s notification %d lacks %q:\n%s", dest, round, s, bodies[round-1])
				}
			}
		}
	}
	check(1, want)

	// A reload with other labels applies to the next failure.
	next := fleetConfig(t, c, out, `site = "ams2"`)
	if err := p.Reload(context.Background(), next.Notify()); err != nil {
		t.Fatal(err)
	}
	ev2 := event.Synthetic(time.Now(), "probe-host")
	ev2.SetErrno(-13)
	ev2.Binary.Path = "/usr/local/bin/other"
	p.Handle(&ev2)
	poll.Until(t, "every sink delivered the second", func() bool { return allDelivered(p, 2) })
	check(2, map[string][]string{
		"journal": {"EXECFAIL_LABEL_SITE=ams2\n"},
		"syslog":  {` label_site="ams2"`},
		"webhook": {`"labels":{"site":"ams2"}`},
		"am1":     {`"site":"ams2"`},
		"slack":   {"site=ams2"},
	})
	for _, dest := range []string{"journal", "syslog", "webhook", "am1", "slack"} {
		if b := c.bodies(dest); len(b) == 2 && strings.Contains(strings.ToLower(b[1]), "role") {
			t.Errorf("%s still carries the label the reload removed:\n%s", dest, b[1])
		}
	}
	var wh struct {
		Labels map[string]string `json:"labels"`
	}
	if err := json.Unmarshal([]byte(c.bodies("webhook")[1]), &wh); err != nil || len(wh.Labels) != 1 {
		t.Errorf("webhook labels after reload %v (err %v), want only site", wh.Labels, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func allDelivered(p *notify.Pipeline, n uint64) bool {
	for _, s := range p.Stats().Sinks {
		if s.Delivered < n {
			return false
		}
		for _, r := range s.Replicas {
			if r.Delivered < n {
				return false
			}
		}
	}
	return true
}

func TestLabelErrorsNameFileLineKey(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"[labels]\nsite = \"fra1\"\nhost = \"x\"\n", "f.toml:3: labels.host: host is set by execfaild"},
		{"[labels]\n\"site-a\" = \"fra1\"\n", `f.toml:2: labels.site-a: "site-a" is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, no leading __)`},
		{"[labels]\n__site = \"fra1\"\n", `f.toml:2: labels.__site: "__site" is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, no leading __)`},
		{"[labels]\nsite = \"\"\n", "f.toml:2: labels.site: value must be non-empty UTF-8"},
		{"[labels]\nsite = \"a\\nb\"\n", "f.toml:2: labels.site: value must not contain control characters"},
		{"[labels]\na_very_long_label_name_indeed = \"x\"\n", "f.toml:2: labels.a_very_long_label_name_indeed: label name longer than 26 characters"},
		{"[labels]\nsite = \"a\"\nSITE = \"b\"\n", "differs from labels."},
		{"host = \"web 7\"\n", "f.toml:1: host: use printable ASCII without spaces"},
		{"[labels]\nsite = 3\n", "f.toml:2: labels.site: "},
	} {
		_, err := Parse("f.toml", []byte(tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error %v, want one line containing %q", tc.text, err, tc.want)
		}
	}
}
