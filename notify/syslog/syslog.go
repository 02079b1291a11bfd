// SPDX-License-Identifier: Apache-2.0

// Package syslog is the [[sink.syslog]] notifier: one syslog message per
// failed exec (or digest), over a local socket, UDP, TCP or TCP with TLS.
//
// The message is RFC 5424 by default:
//
//	<PRI>1 TIMESTAMP HOSTNAME execfaild PROCID EXECFAIL [execfail@32473 name="value" ...] MSG
//
// PRI combines facility (default daemon) and severity (default warning);
// TIMESTAMP is the failure's time with microseconds; PROCID is the
// daemon's pid; MSGID is always EXECFAIL. The structured-data element
// (SD-ID set by sd_id) carries the same fields as the journal sink's
// EXECFAIL_* fields, named in lower case: path, binary_path, error,
// return_value, interpreter_path, argv, argc, pid, uid, unit, count, … (see
// package journal for the list and their formats). Values are made
// printable first: control characters, backslash and bytes that are not
// UTF-8 become \n, \r, \\, \xHH (notify.Log.Visible), argv is shell-quoted;
// then '"', '\' and ']' are escaped as RFC 5424 §6.3.3 requires. MSG is the
// same sentence as the journal's MESSAGE. The diagnosis is the cause param
// (and cause_inferred); its sentence is in MSG only, right after the
// error, where it survives the size bound: a cause_text param would send
// it twice.
//
// A message longer than max_message_bytes (default 2048 over UDP, 8000
// otherwise, below rsyslog's 8096; 1024 for rfc3164) is cut visibly: the longest values first
// (down to 48 bytes each), then the sentence, each cut ending in
// "...(truncated)", and the element gains truncated="true". Only when that
// is still too long (a bound near the 480-byte minimum) are the last
// params left out.
//
// Over TCP and TLS messages are framed by octet counting (RFC 5425,
// RFC 6587 §3.4.1); framing = "newline" selects LF-terminated frames for
// plain-TCP receivers that need them. Over a local socket (default
// /dev/log) the format defaults to rfc3164, because on a systemd host
// /dev/log is journald's, which parses only the old format (the journal
// sink is the structured choice there); set format = "rfc5424" for an
// rsyslog imuxsock socket with its regular parser.
//
// RackSec/srslog carries the messages (connection, one reconnect and
// retry per failed write); this package supplies its Formatter and Framer,
// and its dialer, because srslog's own dialers have no timeout and its
// local dialer ignores the socket path.
package syslog

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/RackSec/srslog"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/notify/journal"
	"github.com/execfaild/execfaild/probe/event"
)

// Facilities maps facility names to their codes (RFC 5424 table 1).
var Facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5,
	"lpr": 6, "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19,
	"local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

const facilityNames = "kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, local0 … local7"

// MsgID is the RFC 5424 MSGID of every message.
const MsgID = "EXECFAIL"

// AppName is the RFC 5424 APP-NAME and the RFC 3164 tag.
const AppName = "execfaild"

// DefaultSDID is a private SD-ID: RFC 5424 requires name@<private
// enterprise number>; 32473 is the example number RFC 5612 reserves for
// documentation. Operators with their own number set sd_id.
const DefaultSDID = "execfail@32473"

// DefaultStreamMessageBytes bounds a message over TCP, TLS and an RFC 5424
// unix socket. rsyslog's default limit is 8096 bytes, and it hands the
// rest of a longer message on as a record of its own, whose HOSTNAME and
// APP-NAME are then whatever the failed exec's path put there; syslog-ng
// (65536) and journald take more. The margin keeps a receiver that counts
// the frame or a terminator in its limit safe too.
const DefaultStreamMessageBytes = 8000

// maxMessageBytesLimit is the largest UDP payload, and far above what any
// common receiver takes by default over a stream.
const maxMessageBytesLimit = 65507

// Config is one [[sink.syslog]] entry.
type Config struct {
	notify.SinkCommon
	// Network is unix, udp, tcp or tcp+tls.
	Network string `toml:"network"`
	// Address is the socket path for unix (default /dev/log), host:port
	// otherwise.
	Address string `toml:"address"`
	// Format is rfc5424 or rfc3164; empty picks rfc3164 for unix and
	// rfc5424 for the network.
	Format   string `toml:"format"`
	Facility string `toml:"facility"`
	Severity string `toml:"severity"`
	SDID     string `toml:"sd_id"`
	// Hostname overrides the host name the daemon reports.
	Hostname string `toml:"hostname"`
	// MaxMessageBytes bounds each message; 0 picks the default for the
	// network and format.
	MaxMessageBytes int `toml:"max_message_bytes"`
	// Framing is octet-counting (default) or newline, for tcp only.
	Framing string `toml:"framing"`
	// TLS settings for tcp+tls, named as the HTTP sinks name theirs.
	// Without CAFile the system roots are used.
	CAFile     string `toml:"tls_ca_file"`
	CertFile   string `toml:"tls_cert_file"`
	KeyFile    string `toml:"tls_key_file"`
	ServerName string `toml:"tls_server_name"`
	formerTLSKeys
	// Timeout bounds connecting and each write.
	Timeout time.Duration `toml:"timeout"`
}

// formerTLSKeys reads the TLS settings under the names they had before
// they matched the HTTP sinks' (ca_file for tls_ca_file, …), so existing
// files keep loading. withDefaults moves such a value to its current key
// and remembers the name the file used: errors name it, and loading warns.
type formerTLSKeys struct {
	FormerCAFile     string `toml:"ca_file,omitempty"`
	FormerCertFile   string `toml:"cert_file,omitempty"`
	FormerKeyFile    string `toml:"key_file,omitempty"`
	FormerServerName string `toml:"server_name,omitempty"`
	// renamed holds the former names the file used.
	renamed []notify.RenamedKey
}

// tlsKey is one TLS setting under its current and its former name.
type tlsKey struct {
	notify.RenamedKey
	cur, former *string
}

func (c *Config) tlsKeys() []tlsKey {
	return []tlsKey{
		{notify.RenamedKey{Old: "ca_file", New: "tls_ca_file"}, &c.CAFile, &c.FormerCAFile},
		{notify.RenamedKey{Old: "cert_file", New: "tls_cert_file"}, &c.CertFile, &c.FormerCertFile},
		{notify.RenamedKey{Old: "key_file", New: "tls_key_file"}, &c.KeyFile, &c.FormerKeyFile},
		{notify.RenamedKey{Old: "server_name", New: "tls_server_name"}, &c.ServerName, &c.FormerServerName},
	}
}

// adoptFormerTLSKeys moves values set under a former name to the current
// one, unless both are set (Validate refuses that).
func (c *Config) adoptFormerTLSKeys() {
	for _, k := range c.tlsKeys() {
		if *k.former != "" && *k.cur == "" {
			*k.cur, *k.former = *k.former, ""
			c.renamed = append(slices.Clip(c.renamed), k.RenamedKey)
		}
	}
}

// key is the name the file gave the TLS setting now called name.
func (c *Config) key(name string) string {
	for _, r := range c.renamed {
		if r.New == name {
			return r.Old
		}
	}
	return name
}

// RenamedKeys implements notify.KeyRenamer.
func (c *Config) RenamedKeys() []notify.RenamedKey { return c.withDefaults().renamed }

func init() {
	notify.RegisterSink("syslog", func() notify.SinkConfig { return DefaultConfig() })
}

// DefaultConfig returns the settings a [[sink.syslog]] entry starts from.
func DefaultConfig() *Config {
	return &Config{
		Network:  "unix",
		Facility: "daemon",
		Severity: "warning",
		SDID:     DefaultSDID,
		Timeout:  10 * time.Second,
	}
}

// withDefaults fills the settings whose default depends on others.
func (c Config) withDefaults() Config {
	c.adoptFormerTLSKeys()
	if c.Network == "unix" && c.Address == "" {
		c.Address = "/dev/log"
	}
	if c.Format == "" {
		c.Format = "rfc5424"
		if c.Network == "unix" {
			c.Format = "rfc3164"
		}
	}
	if c.Framing == "" {
		c.Framing = "octet-counting"
	}
	if c.MaxMessageBytes == 0 {
		switch {
		case c.Format == "rfc3164":
			c.MaxMessageBytes = 1024 // RFC 3164 §4.1
		case c.Network == "udp":
			c.MaxMessageBytes = 2048 // RFC 5426 §3.2: receivers should accept 2048
		default:
			c.MaxMessageBytes = DefaultStreamMessageBytes
		}
	}
	return c
}

// ApplyDefaults implements notify.Defaulter.
func (c *Config) ApplyDefaults() { *c = c.withDefaults() }

// Validate implements notify.SinkConfig.
func (c *Config) Validate() error {
	d := c.withDefaults()
	switch d.Network {
	case "unix":
		if !filepath.IsAbs(d.Address) {
			return notify.Errorf("address", "%q is not an absolute socket path (network unix)", d.Address)
		}
	case "udp", "tcp", "tcp+tls":
		if d.Address == "" {
			return notify.Errorf("address", "required for network %s (host:port)", d.Network)
		}
		host, port, err := net.SplitHostPort(d.Address)
		if err != nil || host == "" || port == "" {
			return notify.Errorf("address", "%q is not host:port", d.Address)
		}
	default:
		return notify.Errorf("network", "unknown %q (want unix, udp, tcp or tcp+tls)", d.Network)
	}
	if d.Format != "rfc5424" && d.Format != "rfc3164" {
		return notify.Errorf("format", "unknown %q (want rfc5424 or rfc3164)", d.Format)
	}
	if _, ok := Facilities[d.Facility]; !ok {
		return notify.Errorf("facility", "unknown %q (want one of %s)", d.Facility, facilityNames)
	}
	if _, ok := journal.Levels[d.Severity]; !ok {
		return notify.Errorf("severity", "unknown %q (want one of %s)", d.Severity, journal.LevelNames)
	}
	if err := validSDID(d.SDID); err != nil {
		return notify.Errorf("sd_id", "%w", err)
	}
	// RFC 5424 §6.1: every receiver must take 480 octets; below that a
	// header and a cut sentence do not fit.
	if d.MaxMessageBytes < 480 {
		return notify.Errorf("max_message_bytes", "%d is below 480, the size every receiver must accept", d.MaxMessageBytes)
	}
	if d.MaxMessageBytes > maxMessageBytesLimit {
		return notify.Errorf("max_message_bytes", "%d is above %d", d.MaxMessageBytes, maxMessageBytesLimit)
	}
	switch d.Framing {
	case "octet-counting":
	case "newline":
		if d.Network != "tcp" {
			return notify.Errorf("framing", "newline applies to network tcp only (RFC 5425 requires octet counting over TLS)")
		}
	default:
		return notify.Errorf("framing", "unknown %q (want octet-counting or newline)", d.Framing)
	}
	if err := d.validateTLS(); err != nil {
		return err
	}
	if d.Timeout <= 0 {
		return notify.Errorf("timeout", "must be positive")
	}
	if d.Timeout > notify.MaxSinkTimeout {
		return notify.Errorf("timeout", "must be at most %s, not %s", notify.MaxSinkTimeout, d.Timeout)
	}
	return nil
}

func (d *Config) validateTLS() error {
	for _, k := range d.tlsKeys() {
		if *k.former != "" {
			return notify.Errorf(k.Old, "former name of %s, which is set too: keep only %s", k.New, k.New)
		}
		if d.Network != "tcp+tls" && *k.cur != "" {
			return notify.Errorf(d.key(k.New), "applies to network tcp+tls only")
		}
	}
	if (d.CertFile == "") != (d.KeyFile == "") {
		return fmt.Errorf("%s, %s: a client certificate needs both", d.key("tls_cert_file"), d.key("tls_key_file"))
	}
	return nil
}

// validSDID checks an SD-ID against RFC 5424 §6.3.2 and §7.2.2: 1 to 32
// printable ASCII characters other than '=', ' ', ']' and '"', and a
// private one must be name@<enterprise number>.
func validSDID(id string) error {
	if id == "" || len(id) > 32 {
		return fmt.Errorf("%q must be 1 to 32 characters", id)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 33 || c > 126 || c == '=' || c == ']' || c == '"' {
			return fmt.Errorf("%q holds %q, which an SD-ID must not contain", id, c)
		}
	}
	name, pen, ok := strings.Cut(id, "@")
	if !ok || name == "" || strings.Contains(pen, "@") {
		return fmt.Errorf("%q is not name@<private enterprise number> (names without @ are reserved to IANA)", id)
	}
	for _, part := range strings.Split(pen, ".") {
		if part == "" || strings.Trim(part, "0123456789") != "" {
			return fmt.Errorf("%q: %q is not an enterprise number", id, pen)
		}
	}
	return nil
}

// CheckFiles implements notify.FileChecker.
func (c *Config) CheckFiles() error {
	d := c.withDefaults()
	if d.Network != "tcp+tls" {
		return nil
	}
	_, err := tlsConfig(d)
	return err
}

// New implements notify.SinkConfig. It reads the TLS files but does not
// connect; the first Send does.
func (c *Config) New(env notify.Env) (notify.Sink, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	d := c.withDefaults()
	host := d.Hostname
	if host == "" {
		host = env.Host
	}
	if host == "" {
		host = event.LocalHost()
	}
	s := &Sink{
		cfg: d,
		h: header{
			Priority: Facilities[d.Facility]<<3 | journal.Levels[d.Severity],
			Hostname: host,
			AppName:  AppName,
			ProcID:   os.Getpid(),
			MsgID:    MsgID,
			SDID:     d.SDID,
		},
		now: time.Now,
	}
	if d.Network == "tcp+tls" {
		tc, err := tlsConfig(d)
		if err != nil {
			return nil, err
		}
		s.tls = tc
	}
	return s, nil
}

func tlsConfig(d Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: d.ServerName}
	if tc.ServerName == "" {
		tc.ServerName, _, _ = net.SplitHostPort(d.Address)
	}
	if d.CAFile != "" {
		pem, err := notify.ReadFileCapped(d.CAFile, notify.MaxPEMFileBytes)
		if err != nil {
			return nil, notify.Errorf(d.key("tls_ca_file"), "%w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, notify.Errorf(d.key("tls_ca_file"), "%s holds no PEM certificate", d.CAFile)
		}
		tc.RootCAs = pool
	}
	if d.CertFile != "" {
		certPEM, err := notify.ReadFileCapped(d.CertFile, notify.MaxPEMFileBytes)
		if err != nil {
			return nil, notify.Errorf(d.key("tls_cert_file"), "%w", err)
		}
		keyPEM, err := notify.ReadFileCapped(d.KeyFile, notify.MaxPEMFileBytes)
		if err != nil {
			return nil, notify.Errorf(d.key("tls_key_file"), "%w", err)
		}
		// The parse error names neither file nor key material.
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("%s, %s: load key pair %s, %s: %w", d.key("tls_cert_file"), d.key("tls_key_file"), d.CertFile, d.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Sink sends to one syslog receiver. Send is not safe for concurrent use;
// the pipeline calls it from one worker.
type Sink struct {
	cfg Config
	h   header
	tls *tls.Config
	now func() time.Time
	w   *srslog.Writer
	// cur is the event being written: srslog's Formatter sees only the
	// priority, host, tag and a string, so the formatter reads the rest
	// from here. Safe because Send is never concurrent and srslog calls
	// the formatter synchronously inside the write.
	cur *event.Event
	// ctx is the context of the Send in progress, for the same reason.
	ctx context.Context
}

// sendCtx is the context of the Send in progress; a connection used
// outside one (never, today) gets a live one.
func (s *Sink) sendCtx() context.Context {
	if s.ctx == nil {
		return context.Background()
	}
	return s.ctx
}

// Send implements notify.Sink.
func (s *Sink) Send(ctx context.Context, ev *event.Event) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("syslog: %w", err)
	}
	// srslog's dial and write take no context; dial and the connection
	// read it from here, so a drain deadline ends a blocked dial, write or
	// reconnect instead of the write timeout.
	s.ctx = ctx
	defer func() { s.ctx = nil }()
	if s.w == nil {
		// srslog dials inside its constructor; with the "custom"
		// network it calls dial, which honours the timeout and the
		// configured socket path.
		w, err := srslog.DialWithCustomDialer("custom", s.cfg.Address, srslog.Priority(s.h.Priority), s.h.AppName, s.dial)
		if err != nil {
			return fmt.Errorf("syslog: connect %s %s: %w", s.cfg.Network, s.cfg.Address, err)
		}
		w.SetHostname(s.h.Hostname)
		w.SetFormatter(s.format)
		w.SetFramer(s.frame)
		s.w = w
	}
	s.cur = ev
	defer func() { s.cur = nil }()
	// The sentence goes as srslog's content only so srslog has something
	// to write; format renders the whole message from s.cur.
	if _, err := s.w.WriteWithPriority(srslog.Priority(s.h.Priority), []byte(journal.Message(ev))); err != nil {
		return fmt.Errorf("syslog: send to %s %s: %w", s.cfg.Network, s.cfg.Address, err)
	}
	return nil
}

// format is the srslog Formatter.
func (s *Sink) format(p srslog.Priority, hostname, tag, _ string) string {
	h := s.h
	h.Priority, h.Hostname, h.AppName = int(p), hostname, tag
	ts := s.now()
	if !s.cur.Time.IsZero() {
		ts = s.cur.Time
	}
	if s.cfg.Format == "rfc3164" {
		return format3164(h, ts, s.cur, s.cfg.Network == "unix", s.cfg.MaxMessageBytes)
	}
	return format5424(h, ts, s.cur, s.cfg.MaxMessageBytes)
}

// frame is the srslog Framer: datagrams carry one message each and need
// no framing; streams use octet counting unless told otherwise.
func (s *Sink) frame(msg string) string {
	switch {
	case s.cfg.Network == "unix" || s.cfg.Network == "udp":
		return msg
	case s.cfg.Framing == "newline":
		return msg + "\n"
	default:
		return srslog.RFC5425MessageLengthFramer(msg)
	}
}

func (s *Sink) dial(_, addr string) (net.Conn, error) {
	ctx := s.sendCtx()
	d := net.Dialer{Timeout: s.cfg.Timeout}
	var c net.Conn
	var err error
	switch s.cfg.Network {
	case "unix":
		// rsyslog, journald and syslog-ng's default unix-dgram source
		// read datagrams, one message each, so no framing is needed.
		c, err = d.DialContext(ctx, "unixgram", addr)
	case "tcp+tls":
		td := tls.Dialer{NetDialer: &d, Config: s.tls}
		c, err = td.DialContext(ctx, "tcp", addr)
	default:
		c, err = d.DialContext(ctx, s.cfg.Network, addr)
	}
	if err != nil {
		return nil, err
	}
	return &timedConn{Conn: c, timeout: s.cfg.Timeout, stream: s.cfg.Network == "tcp" || s.cfg.Network == "tcp+tls", ctx: s.sendCtx}, nil
}

// timedConn bounds every write by the timeout and the Send's context, and
// notices a stream the receiver closed.
type timedConn struct {
	net.Conn
	timeout time.Duration
	stream  bool
	ctx     func() context.Context
}

var errPeerClosed = errors.New("receiver closed the connection")

func (c *timedConn) Write(b []byte) (int, error) {
	ctx := c.ctx()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if c.stream && c.peerClosed() {
		// Fail so srslog reconnects and writes again: a write into a
		// connection the receiver already closed succeeds locally and
		// the message is lost with the RST that follows.
		return 0, errPeerClosed
	}
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.SetWriteDeadline(deadline); err != nil {
		return 0, err
	}
	// A cancellation has no deadline of its own (the pipeline abandons a
	// drain by cancelling): it moves the deadline into the past, which
	// ends a write blocked on a receiver that does not read.
	stop := context.AfterFunc(ctx, func() { c.Conn.SetWriteDeadline(time.Unix(1, 0)) })
	n, err := c.Conn.Write(b)
	stop()
	if err != nil && ctx.Err() != nil {
		return n, fmt.Errorf("write abandoned: %w", ctx.Err())
	}
	return n, err
}

// peerClosed reads for a moment: a syslog receiver never sends
// application data, so anything but a timeout means EOF, a TLS
// close_notify or a reset. The deadline lies in the future because Go
// fails a read whose deadline has passed without looking at the socket;
// reading through the tls.Conn (not peeking at the raw socket) lets TLS
// 1.3 session tickets pass as the harmless records they are.
func (c *timedConn) peerClosed() bool {
	if err := c.SetReadDeadline(time.Now().Add(time.Millisecond)); err != nil {
		return true
	}
	var one [1]byte
	_, err := c.Read(one[:])
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return err != nil
}

// Close implements notify.Sink.
func (s *Sink) Close() error {
	if s.w == nil {
		return nil
	}
	err := s.w.Close()
	s.w = nil
	return err
}
