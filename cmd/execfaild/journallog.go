// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/execfaild/execfaild/notify/journal"
)

// journalSocket is where the daemon's own lines go under systemd; tests
// point it at a socket of their own.
var journalSocket = journal.DefaultSocket

// isJournalStream tells whether f is the stream systemd connected to the
// journal: JOURNAL_STREAM holds its device and inode ("8:12345"). A
// process whose stderr was redirected since (a shell inside the unit, a
// pipe) inherits the variable but not the stream, and keeps writing to
// stderr.
func isJournalStream(f *os.File, env string) bool {
	devs, inos, ok := strings.Cut(env, ":")
	if !ok {
		return false
	}
	dev, err1 := strconv.ParseUint(devs, 10, 64)
	ino, err2 := strconv.ParseUint(inos, 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return uint64(st.Dev) == dev && st.Ino == ino
}

// nativeHandler sends each line to journald in its native protocol:
// MESSAGE is the line the stream showed (journalctl -o cat reads as
// before), PRIORITY the level's, and every attribute a field of its own,
// named in upper case with groups joined by "_" (sink → SINK, err →
// ERROR), so journalctl -o json and field matches find an error without
// parsing the line. Values are rendered as the text handler renders them,
// so what masks itself there (notify.Secret, URLs redacted in errors)
// stays masked here. A line the socket does not take goes to the stream
// with its priority prefix, so none is lost.
type nativeHandler struct {
	inner slog.Handler
	lines *prefixedLines
	out   *nativeOut
	// fields are the attributes of With, already named; prefix is the
	// open groups' ("RETRY_").
	fields []journal.Field
	prefix string
}

// nativeOut is the datagram socket every handler derived from one logger
// shares; it is used under prefixedLines' lock.
type nativeOut struct {
	addr *net.UnixAddr
	conn *net.UnixConn
}

func newNativeOut(socket string) *nativeOut {
	return &nativeOut{addr: &net.UnixAddr{Name: socket, Net: "unixgram"}}
}

// send delivers one entry in a single datagram. journald reads its socket
// quickly; one that does not take a line within a second gets it on the
// stream instead of holding the daemon up.
func (o *nativeOut) send(entry []byte) error {
	if o.conn == nil {
		c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Net: "unixgram"})
		if err != nil {
			return err
		}
		o.conn = c
	}
	o.conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _, err := o.conn.WriteMsgUnix(entry, nil, o.addr)
	return err
}

func (h nativeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h nativeHandler) Handle(ctx context.Context, r slog.Record) error {
	h.lines.mu.Lock()
	defer h.lines.mu.Unlock()
	h.lines.buf.Reset()
	if err := h.inner.Handle(ctx, r); err != nil {
		return err
	}
	line := h.lines.buf.Bytes()
	var entry bytes.Buffer
	journal.EncodeNative(&entry, "MESSAGE", string(bytes.TrimSuffix(line, []byte("\n"))))
	journal.EncodeNative(&entry, "PRIORITY", strconv.Itoa(syslogPriority(r.Level)))
	journal.EncodeNative(&entry, "SYSLOG_IDENTIFIER", journal.Identifier)
	for _, f := range h.fields {
		journal.EncodeNative(&entry, f.Name, f.Value)
	}
	r.Attrs(func(a slog.Attr) bool {
		for _, f := range attrFields(h.prefix, a, nil) {
			journal.EncodeNative(&entry, f.Name, f.Value)
		}
		return true
	})
	if h.out.send(entry.Bytes()) == nil {
		return nil
	}
	_, err := h.lines.w.Write(append([]byte(streamPrefix(r.Level)), line...))
	return err
}

func (h nativeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	fields := h.fields[:len(h.fields):len(h.fields)]
	for _, a := range as {
		fields = attrFields(h.prefix, a, fields)
	}
	return nativeHandler{inner: h.inner.WithAttrs(as), lines: h.lines, out: h.out, fields: fields, prefix: h.prefix}
}

func (h nativeHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return nativeHandler{inner: h.inner.WithGroup(name), lines: h.lines, out: h.out, fields: h.fields, prefix: fieldName(h.prefix, name) + "_"}
}

// attrFields appends a's fields to fs: one for a value, one per member for
// a group.
func attrFields(prefix string, a slog.Attr, fs []journal.Field) []journal.Field {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p = fieldName(prefix, a.Key) + "_"
		}
		for _, m := range v.Group() {
			fs = attrFields(p, m, fs)
		}
		return fs
	}
	if a.Key == "" {
		return fs
	}
	name := fieldName(prefix, a.Key)
	if !journal.ValidFieldName(name) {
		return fs
	}
	return append(fs, journal.Field{Name: name, Value: attrValue(v)})
}

// attrValue is the value as the text handler shows it, unquoted.
func attrValue(v slog.Value) string {
	switch v.Kind() {
	case slog.KindTime:
		return v.Time().Format(time.RFC3339Nano)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return err.Error()
		}
	}
	return v.String()
}

// ownFields are set by the handler itself or mean something to journald;
// an attribute of the same name gets an ATTR_ prefix instead.
var ownFields = map[string]bool{
	"MESSAGE": true, "MESSAGE_ID": true, "PRIORITY": true, "SYSLOG_IDENTIFIER": true,
	"SYSLOG_FACILITY": true, "SYSLOG_PID": true, "SYSLOG_TIMESTAMP": true, "ERRNO": true,
	"CODE_FILE": true, "CODE_LINE": true, "CODE_FUNC": true, "DOCUMENTATION": true, "TID": true,
}

// fieldName turns an attribute key into a journal field name: upper case,
// any other character "_", "err" spelt out as ERROR; at most 64 bytes.
func fieldName(prefix, key string) string {
	if key == "err" {
		key = "error"
	}
	b := []byte(prefix + key)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
		default:
			b[i] = '_'
		}
	}
	name := string(b)
	if name == "" || name[0] == '_' || name[0] >= '0' && name[0] <= '9' || ownFields[name] {
		name = "ATTR_" + strings.TrimLeft(name, "_")
	}
	if len(name) > 64 {
		name = name[:64]
	}
	return name
}

// syslogPriority is a level's syslog priority: err, warning, info, debug.
func syslogPriority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 3
	case l >= slog.LevelWarn:
		return 4
	case l < slog.LevelInfo:
		return 7
	}
	return 6
}

// streamPrefix is the "<N>" a stream line carries for journald
// (SyslogLevelPrefix=); info lines need none, the stream's own priority
// being info.
func streamPrefix(l slog.Level) string {
	if p := syslogPriority(l); p != 6 {
		return "<" + strconv.Itoa(p) + ">"
	}
	return ""
}
