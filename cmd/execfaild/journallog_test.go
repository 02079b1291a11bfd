// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/execfaild/execfaild/notify"
)

// parseNative decodes one datagram of journald's native protocol, by the
// protocol's description rather than through the encoder under test.
func parseNative(t *testing.T, b []byte) map[string]string {
	t.Helper()
	fields := map[string]string{}
	for len(b) > 0 {
		nl := strings.IndexByte(string(b), '\n')
		if nl < 0 {
			t.Fatalf("field without a newline: %q", b)
		}
		line := string(b[:nl])
		if name, value, ok := strings.Cut(line, "="); ok {
			fields[name] = value
			b = b[nl+1:]
			continue
		}
		// NAME\n<le64 size><bytes>\n
		rest := b[nl+1:]
		if len(rest) < 8 {
			t.Fatalf("binary field %s without its size", line)
		}
		n := binary.LittleEndian.Uint64(rest[:8])
		if uint64(len(rest)) < 8+n+1 || rest[8+n] != '\n' {
			t.Fatalf("binary field %s: size %d does not fit %q", line, n, rest)
		}
		fields[line] = string(rest[8 : 8+n])
		b = rest[8+n+1:]
	}
	return fields
}

// journalStream returns a file standing in for the stderr systemd connects
// to the journal, with JOURNAL_STREAM naming it, and a datagram socket
// standing in for journald's.
func journalStream(t *testing.T) (*os.File, *net.UnixConn) {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	sock := filepath.Join(dir, "socket")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	old := journalSocket
	journalSocket = sock
	t.Cleanup(func() { journalSocket = old })
	return f, conn
}

func receive(t *testing.T, conn *net.UnixConn) map[string]string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 1<<16)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no datagram on the journal socket: %v", err)
	}
	return parseNative(t, buf[:n])
}

// Under systemd the daemon's own lines reach the journal natively, every
// attribute a field of its own: journalctl -o json shows ERROR= on a
// rejected reload, and -o cat shows the same line as before.
func TestDaemonLoggerNative(t *testing.T) {
	f, conn := journalStream(t)
	log := newDaemonLogger(f)
	secret := notify.Secret("https://hooks.slack.com/services/T1/B2/hunter2")
	log.With("sink", "slack-ops").WithGroup("retry").Error("reload rejected",
		"err", errors.New("/etc/execfaild.toml:5: filter.exclude_errnos: unknown errno\nsecond line"),
		"url", secret, "attempt", 3)
	got := receive(t, conn)
	want := map[string]string{
		"PRIORITY":          "3",
		"SYSLOG_IDENTIFIER": "execfaild",
		"SINK":              "slack-ops",
		"RETRY_ERROR":       "/etc/execfaild.toml:5: filter.exclude_errnos: unknown errno\nsecond line",
		"RETRY_ATTEMPT":     "3",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (all: %q)", k, got[k], v, got)
		}
	}
	if m := got["MESSAGE"]; !strings.HasPrefix(m, `level=ERROR msg="reload rejected" sink=slack-ops retry.err=`) || strings.HasSuffix(m, "\n") {
		t.Errorf("MESSAGE = %q, want the line the stream showed", m)
	}
	for k, v := range got {
		if strings.Contains(v, "hunter2") {
			t.Errorf("%s carries the secret: %q", k, v)
		}
	}
	if got["RETRY_URL"] == "" {
		t.Errorf("no RETRY_URL field: %q", got)
	}
	log.Info("ready", "mode", "fentry")
	if got := receive(t, conn); got["PRIORITY"] != "6" || got["MESSAGE"] != "level=INFO msg=ready mode=fentry" || got["MODE"] != "fentry" {
		t.Errorf("info line: %q", got)
	}
	if b, _ := os.ReadFile(f.Name()); len(b) > 0 {
		t.Errorf("a line sent to the journal was also written to the stream: %q", b)
	}
}

// A journal socket that refuses the line loses nothing: it goes to the
// stream with its priority prefix, as without the socket.
func TestDaemonLoggerNativeFallsBack(t *testing.T) {
	f, conn := journalStream(t)
	log := newDaemonLogger(f)
	conn.Close()
	os.Remove(journalSocket)
	log.Warn("credentials rejected", "sink", "slack-ops")
	if b, _ := os.ReadFile(f.Name()); string(b) != "<4>level=WARN msg=\"credentials rejected\" sink=slack-ops\n" {
		t.Errorf("stream got %q", b)
	}
}

// JOURNAL_STREAM names stderr only when systemd connected it: a daemon
// started from a shell inside a unit (stderr a terminal or a pipe) keeps
// writing to stderr.
func TestDaemonLoggerOtherStream(t *testing.T) {
	f, conn := journalStream(t)
	t.Setenv("JOURNAL_STREAM", "8:1234")
	newDaemonLogger(f).Info("ready")
	conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := conn.Read(make([]byte, 1024)); err == nil {
		t.Errorf("a datagram arrived for a stream that is not the journal's: %d bytes", n)
	}
	if b, _ := os.ReadFile(f.Name()); string(b) != "level=INFO msg=ready\n" {
		t.Errorf("stream got %q", b)
	}
}
