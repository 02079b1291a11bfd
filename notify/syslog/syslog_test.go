// SPDX-License-Identifier: Apache-2.0

package syslog

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/notify/internal/sinktest"
	"github.com/execfaild/execfaild/notify/journal"
	"github.com/execfaild/execfaild/probe/event"
)

var fixedTime = time.Date(2026, 11, 27, 10, 2, 3, 456789123, time.UTC)

// hostile returns an event whose process-controlled strings hold every
// character RFC 5424 or a log viewer treats specially.
func hostile(path string) event.Event {
	ev := event.Synthetic(fixedTime, "web-1")
	ev.Path = path + "/x\"y\\z]\n\r\xff"
	ev.Binary = nil
	ev.InterpreterPath = "/bin/sh\r]"
	ev.Arguments = []string{"run", `a"b`, `c\d`, "e]f", "g\nh", "i\rj", "\xfe\xff", "[x@1 k=\"v\"]", "ü"}
	ev.Process.Comm = "c]\"\\"
	ev.Process.Cwd = "/"
	ev.CauseText = "the interpreter \"/bin/sh\r]\" of " + ev.Path + " does not exist"
	return ev
}

func digest(ev event.Event) event.Event { return sinktest.Repeats(ev, fixedTime) }

func newSink(t *testing.T, c *Config) *Sink {
	t.Helper()
	s := sinktest.Build[*Sink](t, c, "", nil)
	t.Cleanup(func() { s.Close() })
	return s
}

// wantParams is what the receiver must find in the structured data.
func wantParams(ev *event.Event) map[string]string {
	m := map[string]string{}
	for _, p := range params(ev) {
		m[p.name] = p.value
	}
	return m
}

func check5424(t *testing.T, rec record, ev *event.Event, host string, pri int) {
	t.Helper()
	if rec.Pri != pri {
		t.Errorf("PRI = %d, want %d", rec.Pri, pri)
	}
	if rec.Hostname != host || rec.App != "execfaild" || rec.MsgID != "EXECFAIL" || rec.ProcID != strconv.Itoa(os.Getpid()) {
		t.Errorf("header: host %q app %q msgid %q procid %q; want %q execfaild EXECFAIL %d", rec.Hostname, rec.App, rec.MsgID, rec.ProcID, host, os.Getpid())
	}
	ts, err := time.Parse(time.RFC3339Nano, rec.TS)
	if err != nil || !ts.Equal(ev.Time.Truncate(time.Microsecond)) {
		t.Errorf("TIMESTAMP = %q (%v), want %s", rec.TS, err, ev.Time.Truncate(time.Microsecond).Format(time.RFC3339Nano))
	}
	if want := journal.Message(ev); rec.Msg != want {
		t.Errorf("MSG =\n%q\nwant\n%q", rec.Msg, want)
	}
	sd, ok := rec.SD[DefaultSDID]
	if !ok || len(rec.SD) != 1 {
		t.Fatalf("structured data = %v, want exactly one element %s", rec.SD, DefaultSDID)
	}
	want := wantParams(ev)
	for k, v := range want {
		if sd[k] != v {
			t.Errorf("param %s = %q, want %q", k, sd[k], v)
		}
	}
	for k := range sd {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected param %s=%q", k, sd[k])
		}
	}
}

// TestRsyslogRFC5424 sends the synthetic event, a hostile one and a digest
// over every network to a real rsyslog and compares what it parsed.
func TestRsyslogRFC5424(t *testing.T) {
	r := sharedRsyslog(t)
	off := r.offset()
	for _, tc := range []struct {
		network, addr string
		tune          func(*Config)
	}{
		{"udp", r.udp, nil},
		{"tcp", r.tcp, nil},
		{"tcp+tls", r.tls, func(c *Config) {
			c.CAFile, c.CertFile, c.KeyFile = r.caFile, r.clientCert, r.clientKey
		}},
		{"unix", r.unix, func(c *Config) { c.Format = "rfc5424"; c.Facility, c.Severity = "local3", "err" }},
	} {
		t.Run(tc.network, func(t *testing.T) {
			host := "h-" + strings.ReplaceAll(tc.network, "+", "-")
			c := DefaultConfig()
			c.Network, c.Address, c.Hostname = tc.network, tc.addr, host
			pri := 3<<3 | 4
			if tc.tune != nil {
				tc.tune(c)
				pri = Facilities[c.Facility]<<3 | journal.Levels[c.Severity]
			}
			s := newSink(t, c)
			synthetic := event.Synthetic(fixedTime, "web-1")
			evil := hostile("/" + host)
			dig := digest(event.Synthetic(fixedTime, "web-1"))
			events := []*event.Event{&synthetic, &evil, &dig}
			for _, ev := range events {
				if err := s.Send(context.Background(), ev); err != nil {
					t.Fatalf("send: %v", err)
				}
			}
			recs := r.waitFor(t, off, 3, func(rec record) bool { return rec.Hostname == host })
			if len(recs) != 3 {
				t.Fatalf("got %d records, want 3", len(recs))
			}
			for i, ev := range events {
				check5424(t, recs[i], ev, host, pri)
			}
			for i, rec := range recs {
				sd := rec.SD[DefaultSDID]
				if sd["cause"] != "interpreter-crlf" || sd["cause_text"] != "" {
					t.Errorf("record %d: cause %q, cause_text %q; want the code, and the sentence in MSG only", i, sd["cause"], sd["cause_text"])
				}
				if want := notify.Sentence(events[i].CauseText); !strings.Contains(rec.Msg, "(no such file or directory): "+want+"; ") {
					t.Errorf("record %d: MSG %q lacks the sentence %q after the error", i, rec.Msg, want)
				}
			}
			if tc.network == "tcp+tls" && recs[0].Input != "imtcp-tls" {
				t.Errorf("TLS message arrived through %q", recs[0].Input)
			}
		})
	}
}

func TestRsyslogRFC3164(t *testing.T) {
	r := sharedRsyslog(t)
	off := r.offset()
	for _, tc := range []struct{ network, addr string }{{"udp", r.udp}, {"unix", r.unix}} {
		t.Run(tc.network, func(t *testing.T) {
			c := DefaultConfig()
			c.Network, c.Address, c.Format, c.Hostname = tc.network, tc.addr, "rfc3164", "old-"+tc.network
			s := newSink(t, c)
			ev := hostile("/old-" + tc.network)
			if err := s.Send(context.Background(), &ev); err != nil {
				t.Fatal(err)
			}
			want := journal.Message(&ev)
			recs := r.waitFor(t, off, 1, func(rec record) bool { return strings.Contains(rec.Raw, "/old-"+tc.network) })
			rec := recs[0]
			if got := strings.TrimPrefix(rec.Msg, " "); got != want {
				t.Errorf("msg =\n%q\nwant\n%q", got, want)
			}
			if rec.Tag != fmt.Sprintf("execfaild[%d]:", os.Getpid()) || rec.App != "execfaild" {
				t.Errorf("tag %q program %q", rec.Tag, rec.App)
			}
			if rec.Pri != 3<<3|4 {
				t.Errorf("PRI = %d, want 28", rec.Pri)
			}
			if tc.network == "udp" && rec.Hostname != "old-udp" {
				t.Errorf("hostname = %q, want old-udp", rec.Hostname)
			}
		})
	}
}

// TestRsyslogUDPTruncation sends an argv far beyond the UDP bound and
// checks the receiver gets a parseable message, visibly cut, within it.
func TestRsyslogUDPTruncation(t *testing.T) {
	r := sharedRsyslog(t)
	off := r.offset()
	c := DefaultConfig()
	c.Network, c.Address, c.Hostname = "udp", r.udp, "h-trunc"
	s := newSink(t, c)
	ev := event.Synthetic(fixedTime, "web-1")
	ev.Arguments = []string{"/usr/bin/long", strings.Repeat("\"]\\x", 3000)}
	if err := s.Send(context.Background(), &ev); err != nil {
		t.Fatal(err)
	}
	rec := r.waitFor(t, off, 1, func(rec record) bool { return rec.Hostname == "h-trunc" })[0]
	if n := len(rec.Raw); n > 2048 || n < 1500 {
		t.Errorf("message is %d bytes, want at most 2048 and not cut needlessly", n)
	}
	sd := rec.SD[DefaultSDID]
	if !strings.HasSuffix(sd["argv"], truncMark) || !strings.HasPrefix(sd["argv"], `/usr/bin/long '"]\x"]\x`) {
		t.Errorf("argv = %q, want the start of the argv ending in %q", sd["argv"], truncMark)
	}
	if sd["error"] != "ENOENT" || sd["unit"] != "deployer.service" || sd["argc"] != "2" || sd["cause"] != "interpreter-crlf" {
		t.Errorf("short fields were cut: %v", sd)
	}
	if rec.Msg != journal.Message(&ev) {
		t.Errorf("MSG cut although argv alone made room: %q", rec.Msg)
	}
}

// TestRsyslogReconnect restarts rsyslog between two sends over TCP: the
// second must arrive over a new connection, not vanish into the old one.
func TestRsyslogReconnect(t *testing.T) {
	r := startRsyslog(t)
	off := r.offset()
	c := DefaultConfig()
	c.Network, c.Address, c.Hostname = "tcp", r.tcp, "h-reconnect"
	s := newSink(t, c)
	ev := event.Synthetic(fixedTime, "web-1")
	if err := s.Send(context.Background(), &ev); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, off, 1, func(rec record) bool { return rec.Hostname == "h-reconnect" })
	r.stop(t)
	r.start(t)
	ev.Path = "./after-restart.sh"
	if err := s.Send(context.Background(), &ev); err != nil {
		t.Fatalf("send after restart: %v", err)
	}
	r.waitFor(t, off, 1, func(rec record) bool {
		return rec.Hostname == "h-reconnect" && rec.SD[DefaultSDID]["path"] == "./after-restart.sh"
	})
}

func TestTLSUnknownCA(t *testing.T) {
	r := sharedRsyslog(t)
	c := DefaultConfig()
	c.Network, c.Address = "tcp+tls", r.tls
	c.CertFile, c.KeyFile = r.clientCert, r.clientKey
	// The system roots do not know the test CA: the handshake must fail
	// and say why, rather than send in the clear or hang.
	s := newSink(t, c)
	ev := event.Synthetic(fixedTime, "web-1")
	err := s.Send(context.Background(), &ev)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("send with an unknown CA: %v, want a certificate error", err)
	}
	if !strings.HasPrefix(err.Error(), "syslog: connect tcp+tls "+r.tls) {
		t.Errorf("error %q lacks context", err)
	}
}

func TestSendWithoutReceiver(t *testing.T) {
	c := DefaultConfig()
	c.Address = filepath.Join(t.TempDir(), "no-log")
	s := newSink(t, c)
	ev := event.Synthetic(fixedTime, "web-1")
	err := s.Send(context.Background(), &ev)
	if err == nil || notify.IsPermanent(err) {
		t.Fatalf("send to a missing socket: %v, want a retryable error", err)
	}
	if !strings.Contains(err.Error(), "syslog: connect unix "+c.Address) {
		t.Errorf("error %q lacks context", err)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"network", func(c *Config) { c.Network = "sctp" }, `network: unknown "sctp"`},
		{"udp without address", func(c *Config) { c.Network = "udp" }, "address: required for network udp"},
		{"address without port", func(c *Config) { c.Network, c.Address = "tcp", "loghost" }, `address: "loghost" is not host:port`},
		{"relative unix path", func(c *Config) { c.Address = "dev/log" }, `address: "dev/log" is not an absolute socket path`},
		{"format", func(c *Config) { c.Format = "json" }, `format: unknown "json"`},
		{"facility", func(c *Config) { c.Facility = "local9" }, `facility: unknown "local9"`},
		{"severity", func(c *Config) { c.Severity = "loud" }, `severity: unknown "loud"`},
		{"sd_id without number", func(c *Config) { c.SDID = "execfail" }, `sd_id: "execfail" is not name@<private enterprise number>`},
		{"sd_id bad number", func(c *Config) { c.SDID = "execfail@abc" }, `sd_id: "execfail@abc": "abc" is not an enterprise number`},
		{"sd_id space", func(c *Config) { c.SDID = "exec fail@1" }, "sd_id:"},
		{"sd_id too long", func(c *Config) { c.SDID = strings.Repeat("x", 30) + "@123" }, "sd_id:"},
		{"small max", func(c *Config) { c.MaxMessageBytes = 100 }, "max_message_bytes: 100 is below 480"},
		{"framing", func(c *Config) { c.Network, c.Address, c.Framing = "tcp", "h:514", "nul" }, `framing: unknown "nul"`},
		{"newline over tls", func(c *Config) { c.Network, c.Address, c.Framing = "tcp+tls", "h:6514", "newline" }, "framing: newline applies to network tcp only"},
		{"ca_file without tls", func(c *Config) { c.Network, c.Address, c.CAFile = "tcp", "h:514", "/ca.pem" }, "ca_file: applies to network tcp+tls only"},
		{"cert without key", func(c *Config) { c.Network, c.Address, c.CertFile = "tcp+tls", "h:6514", "/c.pem" }, "tls_cert_file, tls_key_file: a client certificate needs both"},
		{"timeout", func(c *Config) { c.Timeout = 0 }, "timeout: must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.change(c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	c := DefaultConfig()
	c.Network, c.Address, c.CAFile = "tcp+tls", "h:6514", filepath.Join(t.TempDir(), "missing.pem")
	if _, err := c.New(notify.Env{}); err == nil || !strings.HasPrefix(err.Error(), "tls_ca_file: ") {
		t.Errorf("New with a missing CA file: %v, want an error naming tls_ca_file", err)
	}
	if _, ok := notify.NewSinkConfig("syslog"); !ok {
		t.Error("syslog sink not registered")
	}
}

func TestTruncationBound(t *testing.T) {
	h := header{Priority: 28, Hostname: "web-1", AppName: AppName, ProcID: 77, MsgID: MsgID, SDID: DefaultSDID}
	ev := hostile("/p")
	ev.Arguments = append(ev.Arguments, strings.Repeat("\xff]", 5000))
	ev.Process.Cwd = strings.Repeat("/d\n", 400)
	for _, max := range []int{480, 600, 1024, 2048, 8192} {
		out := format5424(h, fixedTime, &ev, max)
		if len(out) > max {
			t.Errorf("max %d: message is %d bytes", max, len(out))
		}
		if !strings.Contains(out, ` truncated="true"]`) {
			t.Errorf("max %d: no visible truncation mark", max)
		}
		if !strings.HasPrefix(out, "<28>1 2026-11-27T10:02:03.456789Z web-1 execfaild 77 EXECFAIL [execfail@32473 ") || !strings.Contains(out, "]") {
			t.Errorf("max %d: header or SD broken: %.120s", max, out)
		}
		// Every escape in a cut value stays whole: after SD escaping a
		// value never ends in an odd run of backslashes.
		if strings.Contains(out, `\`+truncMark) && !strings.Contains(out, `\\`+truncMark) {
			t.Errorf("max %d: cut inside an escape: %s", max, out)
		}
	}
	ev.Path = "/" + strings.Repeat("long\n", 400)
	if got := format3164(h, fixedTime, &ev, false, 1024); len(got) > 1024 || !strings.HasSuffix(got, truncMark) {
		t.Errorf("rfc3164 bound: %d bytes, %q", len(got), got[len(got)-20:])
	}
}

func TestCutEscaped(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{`ab\x41cd`, 4, `ab`},
		{`ab\x41cd`, 6, `ab\x41`},
		{`a\\b`, 2, `a`},
		{`a\u{202e}b`, 8, `a`},
		{`a\u{202e}b`, 9, `a\u{202e}`},
		{"aü", 2, "a"},
		{`$'\U0000202e'`, 5, `$'`},
		{`ab`, 5, `ab`},
	} {
		if got := cutEscaped(tc.in, tc.n, nil); got != tc.want {
			t.Errorf("cutEscaped(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
	// Weighted by SD escaping: `"]` costs four bytes once escaped.
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{`a"]b`, 4, `a"`},
		{`a"]b`, 2, `a`},
		{`a"]b`, 5, `a"]`},
		{`\\x`, 3, ``},
		{`\\x`, 4, `\\`},
	} {
		if got := cutEscaped(tc.in, tc.n, sdWeight); got != tc.want {
			t.Errorf("cutEscaped(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

// TestGolden pins the exact bytes for the synthetic event and a digest.
func TestGolden(t *testing.T) {
	h := header{Priority: 28, Hostname: "web-1", AppName: AppName, ProcID: 4100, MsgID: MsgID, SDID: DefaultSDID}
	synthetic := event.Synthetic(fixedTime, "web-1")
	dig := digest(event.Synthetic(fixedTime, "web-1"))
	for name, out := range map[string]string{
		"synthetic.rfc5424": format5424(h, fixedTime, &synthetic, 8192),
		"digest.rfc5424":    format5424(h, fixedTime, &dig, 8192),
		"synthetic.rfc3164": format3164(h, fixedTime, &synthetic, false, 1024),
	} {
		t.Run(name, func(t *testing.T) {
			sinktest.Golden(t, filepath.Join("testdata", name+".golden"), []byte(out+"\n"))
		})
	}
}

// parseSDStrict reads one SD-ELEMENT the way RFC 5424 §6.3 defines it,
// rejecting a '"', '\' or ']' that is not escaped inside a PARAM-VALUE,
// which lenient receivers such as rsyslog would let pass.
func parseSDStrict(sd string) (string, map[string]string, string, error) {
	if !strings.HasPrefix(sd, "[") {
		return "", nil, "", fmt.Errorf("no SD-ELEMENT")
	}
	i := 1
	end := strings.IndexAny(sd[i:], " ]")
	if end < 0 {
		return "", nil, "", fmt.Errorf("unterminated SD-ID")
	}
	id := sd[i : i+end]
	i += end
	params := map[string]string{}
	for i < len(sd) && sd[i] == ' ' {
		i++
		eq := strings.IndexByte(sd[i:], '=')
		if eq <= 0 || eq > 32 || i+eq+1 >= len(sd) || sd[i+eq+1] != '"' {
			return "", nil, "", fmt.Errorf("bad PARAM-NAME at %d", i)
		}
		name := sd[i : i+eq]
		i += eq + 2
		var v strings.Builder
		for {
			if i >= len(sd) {
				return "", nil, "", fmt.Errorf("unterminated value of %s", name)
			}
			c := sd[i]
			if c == '\\' && i+1 < len(sd) && strings.IndexByte(`"\]`, sd[i+1]) >= 0 {
				v.WriteByte(sd[i+1])
				i += 2
				continue
			}
			if c == '\\' {
				// RFC 5424 keeps a lone backslash, but this encoder
				// never emits one.
				return "", nil, "", fmt.Errorf("unescaped backslash in %s", name)
			}
			if c == ']' {
				return "", nil, "", fmt.Errorf("unescaped ']' in %s", name)
			}
			i++
			if c == '"' {
				break
			}
			v.WriteByte(c)
		}
		if _, dup := params[name]; dup {
			return "", nil, "", fmt.Errorf("PARAM-NAME %s twice", name)
		}
		params[name] = v.String()
	}
	if i >= len(sd) || sd[i] != ']' {
		return "", nil, "", fmt.Errorf("SD-ELEMENT not closed at %d", i)
	}
	return id, params, sd[i+1:], nil
}

func TestStructuredDataStrict(t *testing.T) {
	h := header{Priority: 28, Hostname: "web-1", AppName: AppName, ProcID: 1, MsgID: MsgID, SDID: DefaultSDID}
	for _, ev := range []event.Event{event.Synthetic(fixedTime, "web-1"), hostile("/p"), digest(hostile("/q"))} {
		out := format5424(h, fixedTime, &ev, 1<<20)
		const head = "<28>1 2026-11-27T10:02:03.456789Z web-1 execfaild 1 EXECFAIL "
		if !strings.HasPrefix(out, head) {
			t.Fatalf("header: %.80s", out)
		}
		id, got, rest, err := parseSDStrict(out[len(head):])
		if err != nil {
			t.Fatalf("strict parse: %v\n%s", err, out)
		}
		if id != DefaultSDID {
			t.Errorf("SD-ID %q", id)
		}
		if want := wantParams(&ev); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("params\n got %v\nwant %v", got, want)
		}
		if rest != " "+journal.Message(&ev) {
			t.Errorf("MSG %q", rest)
		}
		for _, c := range out {
			if c < 0x20 || c == 0x7f {
				t.Errorf("control character %U in the message", c)
			}
		}
	}
}

// TestDecodeTOML checks the key names an operator writes, with the
// embedded common settings flattened beside them.
func TestDecodeTOML(t *testing.T) {
	c := DefaultConfig()
	sinktest.Decode(t, `
name = "central"
network = "tcp+tls"
address = "logs.example.net:6514"
facility = "local3"
severity = "err"
sd_id = "execfail@99999"
max_message_bytes = 4096
tls_ca_file = "/etc/ssl/logs-ca.pem"
tls_server_name = "logs.example.net"
timeout = "3s"
`, c)
	if c.Name != "central" || c.Network != "tcp+tls" || c.Facility != "local3" || c.SDID != "execfail@99999" ||
		c.MaxMessageBytes != 4096 || c.ServerName != "logs.example.net" || c.Timeout != 3*time.Second || c.Severity != "err" {
		t.Errorf("decoded %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("validate: %v", err)
	}
}

// TestEveryFieldIsAValidParamName sets every optional event field and
// checks each PARAM-NAME against RFC 5424 §6.3.3.
func TestEveryFieldIsAValidParamName(t *testing.T) {
	ev := digest(hostile("/p"))
	dirfd, flags := int32(-100), uint32(0x1000)
	ev.Syscall, ev.Dirfd, ev.Flags = event.SyscallExecveat, &dirfd, &flags
	ev.Binary = &event.Binary{Path: "/p", Source: event.SourceUserspace}
	ev.ArgumentsTruncated, ev.EnvironmentTruncated = true, true
	ev.Process.ContainerID = "0123abcd"
	ev.Tried = []string{"/usr/local/bin", "/usr/bin"}
	ev.CauseInferred = true
	seen := map[string]bool{}
	for _, p := range params(&ev) {
		if len(p.name) == 0 || len(p.name) > 32 || strings.ContainsAny(p.name, "=]\" ") {
			t.Errorf("PARAM-NAME %q breaks RFC 5424", p.name)
		}
		for _, c := range p.name {
			if c < 33 || c > 126 {
				t.Errorf("PARAM-NAME %q holds %U", p.name, c)
			}
		}
		seen[p.name] = true
	}
	for _, name := range []string{"dirfd", "flags", "arguments_truncated", "environment_truncated", "container_id", "path_search_tried", "digest", "first_seen", "last_seen", "pids", "cause", "cause_inferred"} {
		if !seen[name] {
			t.Errorf("%s missing although the event has it", name)
		}
	}
	// The journal sink panics on a field name journald would drop.
	journal.Entry(&ev, 4)
}

func TestTLSServerNameChecked(t *testing.T) {
	r := sharedRsyslog(t)
	off := r.offset()
	ev := event.Synthetic(fixedTime, "web-1")
	for _, tc := range []struct {
		name, serverName string
		ok               bool
	}{
		{"certificate name", "localhost", true},
		{"other name", "logs.example.net", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Network, c.Address, c.ServerName, c.Hostname = "tcp+tls", r.tls, tc.serverName, "h-sn-"+tc.serverName
			c.CAFile, c.CertFile, c.KeyFile = r.caFile, r.clientCert, r.clientKey
			s := newSink(t, c)
			err := s.Send(context.Background(), &ev)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				r.waitFor(t, off, 1, func(rec record) bool { return rec.Hostname == c.Hostname })
				return
			}
			if err == nil || !strings.Contains(err.Error(), "logs.example.net") {
				t.Errorf("send with server_name %q: %v, want a certificate name error", tc.serverName, err)
			}
		})
	}
}

// TestTestSinksMarked: the synthetic failure of execfaild test-sinks says
// it is a test in the SD (test="true", first) and in MSG.
func TestTestSinksMarked(t *testing.T) {
	h := header{Priority: 28, Hostname: "web-1", AppName: AppName, ProcID: 77, MsgID: MsgID, SDID: DefaultSDID}
	ev := event.Synthetic(fixedTime, "web-1")
	ev.Test = true
	out := format5424(h, fixedTime, &ev, 8192)
	if !strings.Contains(out, `[execfail@32473 test="true" `) || !strings.Contains(out, "] "+notify.TestMark+"exec of ") {
		t.Errorf("test-sinks record not marked: %s", out)
	}
	ev.Test = false
	if out := format5424(h, fixedTime, &ev, 8192); strings.Contains(out, "test=") || strings.Contains(out, "TEST") {
		t.Errorf("a real failure marked as a test: %s", out)
	}
}
