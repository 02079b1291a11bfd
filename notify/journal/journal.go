// SPDX-License-Identifier: Apache-2.0

// Package journal is the [[sink.journal]] notifier: it writes each failed
// exec to the systemd journal as one structured entry, speaking journald's
// native protocol over its datagram socket (see native.go for why not
// go-systemd's journal.Send).
//
// Every entry carries:
//
//	MESSAGE            one readable sentence, with the diagnosis right after
//	                   the error; strings the failing process controls are
//	                   escaped (\r, \n, \xHH, \u{HHHH}) so they cannot
//	                   forge lines or terminal sequences
//	PRIORITY           the configured level (default warning, 4)
//	SYSLOG_IDENTIFIER  execfaild
//	MESSAGE_ID         the cause's own id (CauseMessageIDs), whose catalog
//	                   entry journalctl -x shows with the fix; for a failure
//	                   without a cause, ce8d01c1beb44bcc809ec2c048e10010
//	EXECFAIL_MESSAGE_ID
//	                   ce8d01c1beb44bcc809ec2c048e10010 on every entry:
//	                   journalctl EXECFAIL_MESSAGE_ID=ce8d01c1beb44bcc809ec2c048e10010
//	                   selects every failed exec, which MESSAGE_ID alone did
//	                   before failures had causes
//	ERRNO              the positive errno (2 for ENOENT)
//	OBJECT_PID         pid of the process whose exec failed; from a sender
//	                   running as uid 0, journald adds OBJECT_COMM,
//	                   OBJECT_EXE, OBJECT_SYSTEMD_UNIT, … when that process
//	                   still exists
//	OBJECT_UID, OBJECT_GID, OBJECT_COMM, OBJECT_EXE, OBJECT_AUDIT_LOGINUID,
//	OBJECT_SYSTEMD_CGROUP
//	                   only from a sender not running as uid 0 (the packaged
//	                   unit), which journald does not add them for: taken
//	                   from the event, as captured at the failure
//	EXECFAIL_*         every event field, named after its JSON name in upper
//	                   case with nesting flattened by "_" (below)
//
// EXECFAIL_* values are the exact bytes the probe saw: a value with a
// newline or invalid UTF-8 is stored unchanged (journalctl -o json shows
// non-UTF-8 values as byte arrays). Absent event fields produce no
// EXECFAIL_ field. The fields, in the order sent:
//
//	EXECFAIL_TIME                  RFC 3339 with nanoseconds
//	EXECFAIL_HOST
//	EXECFAIL_RETURN_VALUE          negative errno as the kernel returned it
//	EXECFAIL_ERROR, EXECFAIL_ERROR_TEXT   ENOENT, no such file or directory
//	EXECFAIL_CAUSE                 the diagnosis code (interpreter-crlf, …)
//	EXECFAIL_CAUSE_TEXT            its sentence, naming the path and the fix
//	EXECFAIL_CAUSE_INFERRED        true when gathered in userspace after the fact
//	EXECFAIL_SYSCALL               execve, execveat or kernel
//	EXECFAIL_DIRFD, EXECFAIL_FLAGS execveat only; flags in hex (0x1000)
//	EXECFAIL_STAGE
//	EXECFAIL_PATH                  as the caller gave it (may be relative or empty)
//	EXECFAIL_RESOLVED_PATH         when it differs from EXECFAIL_PATH
//	EXECFAIL_BINARY_PATH, EXECFAIL_BINARY_DEVICE_ID (st_dev encoding),
//	EXECFAIL_BINARY_INODE_NUMBER, EXECFAIL_BINARY_CTIME (ns since the
//	epoch), EXECFAIL_BINARY_INODE_MODE (octal, 0100755), EXECFAIL_BINARY_SOURCE
//	EXECFAIL_INTERPRETER_PATH, EXECFAIL_INTERPRETER_SOURCE
//	EXECFAIL_STDIN_TYPE, EXECFAIL_STDIN_MODE (octal), EXECFAIL_STDIN_PATH
//	EXECFAIL_KERNEL_INVOKED        true or false
//	EXECFAIL_ARGV                  argv joined by spaces, each argument quoted
//	                               for a POSIX shell ('…', or bash $'…' when it
//	                               holds control characters or invalid UTF-8),
//	                               so it pastes back into bash as the same argv
//	EXECFAIL_ARGC                  number of arguments captured
//	EXECFAIL_ARGUMENTS_TRUNCATED   true when argv was cut by probe limits
//	EXECFAIL_ENVIRONMENT           envp, quoted like EXECFAIL_ARGV (values are
//	                               <redacted> unless the probe keeps them)
//	EXECFAIL_ENVC, EXECFAIL_ENVIRONMENT_TRUNCATED, EXECFAIL_ENVIRONMENT_REDACTED
//	EXECFAIL_PID, EXECFAIL_TID, EXECFAIL_PPID, EXECFAIL_UID, EXECFAIL_GID,
//	EXECFAIL_EUID, EXECFAIL_LOGINUID, EXECFAIL_COMM, EXECFAIL_EXE,
//	EXECFAIL_CWD, EXECFAIL_CGROUP_ID, EXECFAIL_CGROUP, EXECFAIL_UNIT,
//	EXECFAIL_CONTAINER_ID          the failing process
//	EXECFAIL_PARENT_PID, EXECFAIL_PARENT_COMM, EXECFAIL_PARENT_EXE
//	EXECFAIL_DIGEST                true on a digest of repeats
//	EXECFAIL_COUNT                 failures this entry stands for
//	EXECFAIL_FIRST_SEEN, EXECFAIL_LAST_SEEN   RFC 3339 with nanoseconds
//	EXECFAIL_PIDS                  space-separated pids folded into a digest
//	EXECFAIL_PATH_SEARCH_TRIED     directories a PATH search tried, quoted
//	                               like EXECFAIL_ARGV
//
// Argv is one joined field rather than one field per argument because
// journald neither keeps the order of repeated fields nor keeps duplicates,
// and a single field can be matched and shown with journalctl -o json.
//
// Settings: socket (default /run/systemd/journal/socket), priority (emerg,
// alert, crit, err, warning, notice, info, debug; default warning).
package journal

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/probe/event"
)

// MessageID identifies execfaild's failed-exec entries as a whole: every
// entry carries it as EXECFAIL_MESSAGE_ID, and as MESSAGE_ID when it has
// no cause (each cause has its own MESSAGE_ID, CauseMessageIDs). It keys
// the general catalog entry in packaging/execfaild.catalog. Never change
// it: operators filter on it.
const MessageID = "ce8d01c1beb44bcc809ec2c048e10010"

// TestMessageID is the MESSAGE_ID of the synthetic failure execfaild
// test-sinks sends, with its own catalog entry: a filter on a cause's id
// or an alert on the journal never takes it for a real failure.
const TestMessageID = "7e57c0de1a9f4b6e8d2f0c3b5a6e9d41"

// DefaultSocket is where journald listens for native-protocol entries.
const DefaultSocket = "/run/systemd/journal/socket"

// Identifier is the SYSLOG_IDENTIFIER of every entry.
const Identifier = "execfaild"

// Levels maps syslog severity names to their numbers, shared with the
// syslog sink so both accept the same words.
var Levels = map[string]int{
	"emerg": 0, "alert": 1, "crit": 2, "err": 3,
	"warning": 4, "notice": 5, "info": 6, "debug": 7,
}

// LevelNames lists Levels in numeric order, for error messages.
const LevelNames = "emerg, alert, crit, err, warning, notice, info, debug"

// Config is one [[sink.journal]] entry.
type Config struct {
	notify.SinkCommon
	// Socket is journald's native-protocol socket.
	Socket string `toml:"socket"`
	// Priority is the syslog level name given to every entry.
	Priority string `toml:"priority"`
	// KeepArguments gives the journal the arguments as the probe saw
	// them, secrets included; every other sink still gets them redacted
	// ([redact]). The journal is readable by the adm group and root, so
	// this is the operator's choice, off by default.
	KeepArguments bool `toml:"keep_arguments"`
}

// KeepsArguments implements notify.ArgumentKeeper.
func (c *Config) KeepsArguments() bool { return c.KeepArguments }

func init() {
	notify.RegisterSink("journal", func() notify.SinkConfig { return DefaultConfig() })
}

// DefaultConfig returns the settings a [[sink.journal]] entry starts from.
func DefaultConfig() *Config {
	return &Config{Socket: DefaultSocket, Priority: "warning"}
}

// Validate implements notify.SinkConfig.
func (c *Config) Validate() error {
	if c.Socket == "" {
		return notify.Errorf("socket", "must not be empty")
	}
	if !filepath.IsAbs(c.Socket) {
		return notify.Errorf("socket", "%q is not an absolute path", c.Socket)
	}
	// sun_path holds 108 bytes including the terminating NUL.
	if len(c.Socket) > 107 {
		return notify.Errorf("socket", "path is %d bytes, longer than a unix socket address allows (107)", len(c.Socket))
	}
	if _, ok := Levels[c.Priority]; !ok {
		return notify.Errorf("priority", "unknown level %q (want one of %s)", c.Priority, LevelNames)
	}
	return nil
}

// New implements notify.SinkConfig. It does not touch the socket.
func (c *Config) New(env notify.Env) (notify.Sink, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &Sink{
		priority: Levels[c.Priority],
		object:   os.Geteuid() != 0,
		s:        sender{addr: &net.UnixAddr{Name: c.Socket, Net: "unixgram"}},
	}, nil
}

// Sink writes entries to journald. Send is not safe for concurrent use;
// the pipeline calls it from one worker.
type Sink struct {
	priority int
	// object is set when journald will not derive OBJECT_* fields from
	// OBJECT_PID (it does so only for uid 0), so Send adds them itself.
	object bool
	s      sender
}

// Send implements notify.Sink.
func (k *Sink) Send(ctx context.Context, ev *event.Event) error {
	entry := Entry(ev, k.priority)
	if k.object {
		entry = append(entry, ObjectFields(ev)...)
	}
	var buf bytes.Buffer
	for _, f := range entry {
		EncodeNative(&buf, f.Name, f.Value)
	}
	if err := k.s.send(ctx, buf.Bytes()); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// Close implements notify.Sink.
func (k *Sink) Close() error { return k.s.close() }

// ObjectFields returns the OBJECT_* fields journald would derive from
// OBJECT_PID for a root sender, taken from ev, for a sender that is not
// root. Queries such as journalctl OBJECT_EXE=/usr/bin/foo keep working
// for the unprivileged unit, and hold values from the moment of the failure
// rather than from a process that may have exited. OBJECT_SYSTEMD_UNIT is
// left out: journald means the system unit there (user@1000.service for a
// session's process), while the event names the innermost unit, which
// EXECFAIL_UNIT carries.
func ObjectFields(ev *event.Event) []Field {
	p := ev.Process
	if p.PID == 0 {
		return nil
	}
	fs := []Field{
		{Name: "OBJECT_UID", Value: strconv.FormatUint(uint64(p.UID), 10)},
		{Name: "OBJECT_GID", Value: strconv.FormatUint(uint64(p.GID), 10)},
	}
	add := func(name, value string) {
		if value != "" {
			fs = append(fs, Field{Name: name, Value: value})
		}
	}
	add("OBJECT_COMM", p.Comm)
	add("OBJECT_EXE", p.Exe)
	if p.LoginUID != nil {
		add("OBJECT_AUDIT_LOGINUID", strconv.FormatUint(uint64(*p.LoginUID), 10))
	}
	add("OBJECT_SYSTEMD_CGROUP", p.Cgroup)
	return fs
}

// Entry returns the journal fields for ev in the order they are sent.
func Entry(ev *event.Event, priority int) []Field {
	fs := []Field{
		{Name: "MESSAGE", Value: Message(ev)},
		{Name: "PRIORITY", Value: strconv.Itoa(priority)},
		{Name: "SYSLOG_IDENTIFIER", Value: Identifier},
		{Name: "MESSAGE_ID", Value: MessageIDOf(ev)},
		{Name: "EXECFAIL_MESSAGE_ID", Value: MessageID},
	}
	if ev.ReturnValue < 0 {
		fs = append(fs, Field{Name: "ERRNO", Value: strconv.Itoa(int(-ev.ReturnValue))})
	}
	if ev.Process.PID != 0 {
		fs = append(fs, Field{Name: "OBJECT_PID", Value: strconv.FormatUint(uint64(ev.Process.PID), 10)})
	}
	for _, f := range Fields(ev) {
		name := "EXECFAIL_" + strings.ToUpper(f.Name)
		if !ValidFieldName(name) {
			// Names come from Fields, never from the event: a bad one is
			// a bug here, and journald would silently drop that field.
			panic("journal: invalid field name " + name)
		}
		fs = append(fs, Field{Name: name, Value: f.Value})
	}
	return fs
}
