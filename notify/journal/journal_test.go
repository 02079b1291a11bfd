// SPDX-License-Identifier: Apache-2.0

package journal

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/notify/internal/sinktest"
	"github.com/execfaild/execfaild/probe/event"
)

var fixedTime = time.Date(2026, 11, 27, 10, 2, 3, 456789000, time.UTC)

// listener is a stand-in journald: a datagram socket in a temp dir.
type listener struct {
	t    *testing.T
	conn *net.UnixConn
	path string
}

func listen(t *testing.T) *listener {
	t.Helper()
	path := filepath.Join(t.TempDir(), "socket")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &listener{t: t, conn: c, path: path}
}

// receive returns one entry's raw bytes and whether it came as a memfd.
func (l *listener) receive() ([]byte, bool) {
	l.t.Helper()
	buf := make([]byte, 1<<20)
	oob := make([]byte, unix.CmsgSpace(4*4))
	if err := l.conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		l.t.Fatal(err)
	}
	n, oobn, _, _, err := l.conn.ReadMsgUnix(buf, oob)
	if err != nil {
		l.t.Fatalf("receive: %v", err)
	}
	if oobn == 0 {
		return buf[:n], false
	}
	if n != 0 {
		l.t.Fatalf("datagram carries both %d bytes of data and a file descriptor", n)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		l.t.Fatalf("parse control message: %v (%d messages)", err, len(msgs))
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		l.t.Fatalf("parse SCM_RIGHTS: %v (%d fds)", err, len(fds))
	}
	f := os.NewFile(uintptr(fds[0]), "memfd")
	defer f.Close()
	seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	if err != nil {
		l.t.Fatalf("F_GET_SEALS: %v (not a memfd?)", err)
	}
	want := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_SEAL
	if seals&want != want {
		l.t.Errorf("memfd seals = %#x, want at least %#x (journald rejects unsealed memfds)", seals, want)
	}
	data, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<31))
	if err != nil {
		l.t.Fatal(err)
	}
	return data, true
}

type kv struct{ name, value string }

// parseNative decodes journald's native protocol strictly, the way
// journald's own parser reads it, failing on anything it would reject.
func parseNative(data []byte) ([]kv, error) {
	var out []kv
	for len(data) > 0 {
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			return nil, fmt.Errorf("unterminated line %q", data)
		}
		line := data[:nl]
		data = data[nl+1:]
		if eq := bytes.IndexByte(line, '='); eq >= 0 {
			out = append(out, kv{string(line[:eq]), string(line[eq+1:])})
			continue
		}
		if len(data) < 8 {
			return nil, fmt.Errorf("field %q: missing length", line)
		}
		n := binary.LittleEndian.Uint64(data[:8])
		data = data[8:]
		if uint64(len(data)) < n+1 || data[n] != '\n' {
			return nil, fmt.Errorf("field %q: length %d does not match the data", line, n)
		}
		out = append(out, kv{string(line), string(data[:n])})
		data = data[n+1:]
	}
	for _, f := range out {
		if !ValidFieldName(f.name) {
			return nil, fmt.Errorf("invalid field name %q", f.name)
		}
	}
	return out, nil
}

func newSink(t *testing.T, socket string, priority string) notify.Sink {
	t.Helper()
	c := DefaultConfig()
	c.Socket = socket
	if priority != "" {
		c.Priority = priority
	}
	s := sinktest.Build[*Sink](t, c, "", nil)
	// Field lists here are the same whoever runs the tests; the OBJECT_*
	// fields a non-root sender adds are tested in object_test.go.
	s.object = false
	t.Cleanup(func() { s.Close() })
	return s
}

func sendAndReceive(t *testing.T, ev *event.Event, priority string) (map[string]string, []kv, bool) {
	t.Helper()
	l := listen(t)
	s := newSink(t, l.path, priority)
	if err := s.Send(context.Background(), ev); err != nil {
		t.Fatalf("send: %v", err)
	}
	raw, memfd := l.receive()
	fields, err := parseNative(raw)
	if err != nil {
		t.Fatalf("parse native protocol: %v", err)
	}
	m := map[string]string{}
	for _, f := range fields {
		if _, dup := m[f.name]; dup {
			t.Errorf("field %s sent twice", f.name)
		}
		m[f.name] = f.value
	}
	return m, fields, memfd
}

func TestSendSynthetic(t *testing.T) {
	ev := event.Synthetic(fixedTime, "web-1")
	m, _, memfd := sendAndReceive(t, &ev, "")
	if memfd {
		t.Error("a small entry went as a memfd; want one datagram")
	}
	want := map[string]string{
		"MESSAGE":                       `exec of /srv/app/deploy.sh by deployer[4242] (uid 1000, deployer.service) failed: ENOENT (no such file or directory): the script /srv/app/deploy.sh has Windows (CRLF) line endings, so its interpreter "/bin/bash\r" does not exist; convert it with dos2unix /srv/app/deploy.sh; interpreter "/bin/bash\r" not found`,
		"PRIORITY":                      "4",
		"SYSLOG_IDENTIFIER":             "execfaild",
		"MESSAGE_ID":                    "e242a172922a4677a9154f087f458585", // interpreter-crlf's
		"EXECFAIL_MESSAGE_ID":           "ce8d01c1beb44bcc809ec2c048e10010",
		"EXECFAIL_CAUSE":                "interpreter-crlf",
		"EXECFAIL_CAUSE_TEXT":           "the script /srv/app/deploy.sh has Windows (CRLF) line endings, so its interpreter \"/bin/bash\r\" does not exist; convert it with dos2unix /srv/app/deploy.sh",
		"ERRNO":                         "2",
		"OBJECT_PID":                    "4242",
		"EXECFAIL_TIME":                 "2026-11-27T10:02:03.456789Z",
		"EXECFAIL_HOST":                 "web-1",
		"EXECFAIL_PATH":                 "./deploy.sh",
		"EXECFAIL_RESOLVED_PATH":        "/srv/app/deploy.sh",
		"EXECFAIL_BINARY_PATH":          "/srv/app/deploy.sh",
		"EXECFAIL_BINARY_DEVICE_ID":     "2049",
		"EXECFAIL_BINARY_INODE_NUMBER":  "131074",
		"EXECFAIL_BINARY_INODE_MODE":    "0100755",
		"EXECFAIL_BINARY_CTIME":         strconv.FormatInt(fixedTime.Add(-time.Hour).UnixNano(), 10),
		"EXECFAIL_ERROR":                "ENOENT",
		"EXECFAIL_ERROR_TEXT":           "no such file or directory",
		"EXECFAIL_RETURN_VALUE":         "-2",
		"EXECFAIL_SYSCALL":              "execve",
		"EXECFAIL_STAGE":                "loader",
		"EXECFAIL_INTERPRETER_PATH":     "/bin/bash\r",
		"EXECFAIL_INTERPRETER_SOURCE":   "kernel",
		"EXECFAIL_STDIN_TYPE":           "chr",
		"EXECFAIL_STDIN_MODE":           "020620",
		"EXECFAIL_STDIN_PATH":           "/dev/pts/0",
		"EXECFAIL_KERNEL_INVOKED":       "false",
		"EXECFAIL_ARGV":                 `./deploy.sh '--target=<prod> & "all"' ']\x'`,
		"EXECFAIL_ARGC":                 "3",
		"EXECFAIL_ENVIRONMENT":          `PATH=/usr/local/bin:/usr/bin:/bin 'TOKEN=<redacted>'`,
		"EXECFAIL_ENVC":                 "2",
		"EXECFAIL_ENVIRONMENT_REDACTED": "true",
		"EXECFAIL_PID":                  "4242",
		"EXECFAIL_TID":                  "4242",
		"EXECFAIL_PPID":                 "4200",
		"EXECFAIL_UID":                  "1000",
		"EXECFAIL_GID":                  "1000",
		"EXECFAIL_EUID":                 "1000",
		"EXECFAIL_LOGINUID":             "1000",
		"EXECFAIL_COMM":                 "deployer",
		"EXECFAIL_EXE":                  "/usr/bin/deployer",
		"EXECFAIL_CWD":                  "/srv/app",
		"EXECFAIL_CGROUP_ID":            "5123",
		"EXECFAIL_CGROUP":               "/system.slice/deployer.service",
		"EXECFAIL_UNIT":                 "deployer.service",
		"EXECFAIL_PARENT_PID":           "4200",
		"EXECFAIL_PARENT_COMM":          "systemd",
		"EXECFAIL_PARENT_EXE":           "/usr/lib/systemd/systemd",
		"EXECFAIL_COUNT":                "1",
		"EXECFAIL_BINARY_SOURCE":        "kernel",
	}
	for k, v := range want {
		if got, ok := m[k]; !ok {
			t.Errorf("%s missing", k)
		} else if got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for k := range m {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected field %s=%q", k, m[k])
		}
	}
	// Fields that are absent in the event must be absent, not zero.
	for _, k := range []string{"EXECFAIL_DIRFD", "EXECFAIL_FLAGS", "EXECFAIL_DIGEST", "EXECFAIL_CONTAINER_ID", "EXECFAIL_PIDS", "EXECFAIL_CAUSE_INFERRED"} {
		if _, ok := m[k]; ok {
			t.Errorf("%s present for an event without it", k)
		}
	}
}

func TestPriorityAndDigest(t *testing.T) {
	ev := event.Synthetic(fixedTime, "web-1")
	first, last := fixedTime.Add(-10*time.Minute), fixedTime
	ev.Digest, ev.Count, ev.FirstSeen, ev.LastSeen = true, 37, &first, &last
	ev.PIDs = []uint32{4242, 4250, 4301}
	m, _, _ := sendAndReceive(t, &ev, "err")
	if m["PRIORITY"] != "3" {
		t.Errorf("PRIORITY = %q, want 3 for err", m["PRIORITY"])
	}
	for k, v := range map[string]string{
		"EXECFAIL_DIGEST":     "true",
		"EXECFAIL_COUNT":      "37",
		"EXECFAIL_FIRST_SEEN": "2026-11-27T09:52:03.456789Z",
		"EXECFAIL_LAST_SEEN":  "2026-11-27T10:02:03.456789Z",
		"EXECFAIL_PIDS":       "4242 4250 4301",
	} {
		if m[k] != v {
			t.Errorf("%s = %q, want %q", k, m[k], v)
		}
	}
	wantTail := "; 37 more times between 2026-11-27 09:52:03 and 10:02:03 UTC (pids 4242, 4250, 4301, …)"
	if !strings.HasSuffix(m["MESSAGE"], wantTail) {
		t.Errorf("MESSAGE = %q, want it to end in %q", m["MESSAGE"], wantTail)
	}
}

// hostile returns an event whose process-controlled strings hold every
// byte a careless encoder gets wrong.
func hostile() event.Event {
	ev := event.Synthetic(fixedTime, "web-1")
	ev.Binary = nil
	ev.Path = "/tmp/evil\nPRIORITY=0\nMESSAGE=forged"
	ev.InterpreterPath = "/bin/sh\r\x1b[31m"
	ev.CauseText = "the script /tmp/evil\nPRIORITY=0 names the interpreter \"/bin/sh\r\x1b[31m\", which does not exist"
	ev.Arguments = []string{"evil", "a\nb", "\xff\xfe", "it's", "", "\u202egnp.exe", `\`}
	ev.Process.Comm = "x\ny"
	ev.Process.Cwd = "/"
	ev.Process.Exe = "/usr/bin/\xff\xfe=x"
	return ev
}

func TestHostileValuesRoundTrip(t *testing.T) {
	ev := hostile()
	m, fields, _ := sendAndReceive(t, &ev, "")
	// Binary-safe fields carry the exact bytes; nothing leaked into a
	// field of its own.
	if got := m["EXECFAIL_PATH"]; got != ev.Path {
		t.Errorf("EXECFAIL_PATH = %q, want %q", got, ev.Path)
	}
	if got := m["EXECFAIL_INTERPRETER_PATH"]; got != ev.InterpreterPath {
		t.Errorf("EXECFAIL_INTERPRETER_PATH = %q, want %q", got, ev.InterpreterPath)
	}
	if got := m["EXECFAIL_EXE"]; got != "/usr/bin/\xff\xfe=x" {
		t.Errorf("EXECFAIL_EXE = %q, want the raw bytes", got)
	}
	if got := m["EXECFAIL_COMM"]; got != "x\ny" {
		t.Errorf("EXECFAIL_COMM = %q", got)
	}
	if got := m["EXECFAIL_CAUSE_TEXT"]; got != ev.CauseText {
		t.Errorf("EXECFAIL_CAUSE_TEXT = %q, want %q", got, ev.CauseText)
	}
	if m["PRIORITY"] != "4" {
		t.Errorf("PRIORITY = %q: a value forged a field", m["PRIORITY"])
	}
	var messages int
	for _, f := range fields {
		if f.name == "MESSAGE" {
			messages++
		}
	}
	if messages != 1 {
		t.Errorf("%d MESSAGE fields, want 1", messages)
	}
	wantArgv := `evil $'a\nb' $'\xff\xfe' 'it'\''s' '' $'\U0000202egnp.exe' '\'`
	if got := m["EXECFAIL_ARGV"]; got != wantArgv {
		t.Errorf("EXECFAIL_ARGV = %s, want %s", got, wantArgv)
	}
	wantMsg := `exec of "/tmp/evil\nPRIORITY=0\nMESSAGE=forged" by "x\ny"[4242] (uid 1000, deployer.service) failed: ENOENT (no such file or directory): the script /tmp/evil\nPRIORITY=0 names the interpreter "/bin/sh\r\x1b[31m", which does not exist; interpreter "/bin/sh\r\x1b[31m" not found`
	if got := m["MESSAGE"]; got != wantMsg {
		t.Errorf("MESSAGE =\n%s\nwant\n%s", got, wantMsg)
	}
	for _, c := range m["MESSAGE"] {
		if c < 0x20 || c == 0x7f || c == 0x202e {
			t.Errorf("MESSAGE holds control character %U", c)
		}
	}
}

// TestShellJoinPastesBack runs the quoted argv through a real bash and
// checks it yields the original bytes, argument by argument.
func TestShellJoinPastesBack(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not installed")
	}
	args := hostile().Arguments
	args = append(args, "$HOME", "`id`", "a b", "tab\there", "\x01\x7f", "ü", `"q"`, "--x=1,2")
	out, err := exec.Command(bash, "-c", `printf '%s\0' `+notify.Log.ShellJoin(args)).Output()
	if err != nil {
		t.Fatalf("bash: %v", err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if len(got) != len(args) {
		t.Fatalf("bash saw %d arguments %q, want %d %q", len(got), got, len(args), args)
	}
	for i := range args {
		if got[i] != args[i] {
			t.Errorf("argument %d: bash saw %q, want %q", i, got[i], args[i])
		}
	}
}

func TestLargeEntryGoesAsSealedMemfd(t *testing.T) {
	ev := event.Synthetic(fixedTime, "web-1")
	// Far beyond the default socket send buffer (about 208 KiB), so the
	// datagram fails with EMSGSIZE and the memfd path must take over.
	big := strings.Repeat("A", 4096)
	ev.Arguments = nil
	for i := 0; i < 512; i++ {
		ev.Arguments = append(ev.Arguments, fmt.Sprintf("%d\n%s", i, big))
	}
	m, _, memfd := sendAndReceive(t, &ev, "")
	if !memfd {
		t.Fatal("a 2 MiB entry went as a datagram; want a memfd")
	}
	if got, want := m["EXECFAIL_ARGV"], notify.Log.ShellJoin(ev.Arguments); got != want {
		t.Errorf("EXECFAIL_ARGV: got %d bytes, want %d, equal=%v", len(got), len(want), got == want)
	}
	if m["EXECFAIL_ARGC"] != "512" {
		t.Errorf("EXECFAIL_ARGC = %q", m["EXECFAIL_ARGC"])
	}
}

func TestSendWithoutJournald(t *testing.T) {
	s := newSink(t, filepath.Join(t.TempDir(), "nobody-listens"), "")
	ev := event.Synthetic(fixedTime, "web-1")
	err := s.Send(context.Background(), &ev)
	if err == nil {
		t.Fatal("send to a missing socket succeeded")
	}
	if !errors.Is(err, unix.ENOENT) {
		t.Errorf("error %v does not wrap ENOENT", err)
	}
	if notify.IsPermanent(err) {
		t.Error("a missing journald is marked permanent; it may come back")
	}
	if !strings.HasPrefix(err.Error(), "journal: ") {
		t.Errorf("error %q lacks context", err)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"relative socket", func(c *Config) { c.Socket = "run/sock" }, `socket: "run/sock" is not an absolute path`},
		{"empty socket", func(c *Config) { c.Socket = "" }, "socket: must not be empty"},
		{"long socket", func(c *Config) { c.Socket = "/" + strings.Repeat("s", 120) }, "socket: path is 121 bytes"},
		{"bad priority", func(c *Config) { c.Priority = "loud" }, `priority: unknown level "loud"`},
		{"numeric priority", func(c *Config) { c.Priority = "4" }, `priority: unknown level "4"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.change(c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tc.want)
			}
			if _, err := c.New(notify.Env{}); err == nil {
				t.Error("New accepted an invalid config")
			}
		})
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
	c, ok := notify.NewSinkConfig("journal")
	if !ok {
		t.Fatal("journal sink not registered")
	}
	if jc, ok := c.(*Config); !ok || jc.Socket != DefaultSocket || jc.Priority != "warning" {
		t.Errorf("registered defaults = %#v", c)
	}
}

// TestGolden pins the full field list for the synthetic event and for a
// digest; run with -update after an intended change and review the diff.
func TestGolden(t *testing.T) {
	synthetic := event.Synthetic(fixedTime, "web-1")
	digest := sinktest.Repeats(event.Synthetic(fixedTime, "web-1"), fixedTime)
	for name, ev := range map[string]*event.Event{"synthetic": &synthetic, "digest": &digest} {
		t.Run(name, func(t *testing.T) {
			var b strings.Builder
			for _, f := range Entry(ev, Levels["warning"]) {
				fmt.Fprintf(&b, "%s=%s\n", f.Name, strconv.Quote(f.Value))
			}
			sinktest.Golden(t, filepath.Join("testdata", name+".golden"), []byte(b.String()))
		})
	}
}

// TestRealJournald sends entries to the host's journald, when there is
// one, and reads them back; TestPrivateJournald provides one where root can.
func TestRealJournald(t *testing.T) {
	if _, err := os.Stat(DefaultSocket); err != nil {
		t.Skipf("no journald here (%v); TestPrivateJournald and the booted-system test cover it", err)
	}
	journalctl, err := exec.LookPath("journalctl")
	if err != nil {
		t.Skip("journalctl not installed")
	}
	read := func(host string) map[string]any {
		t.Helper()
		var out []byte
		for i := 0; i < 50; i++ {
			// The query that selects every failed exec, whatever its cause.
			out, err = exec.Command(journalctl, "-o", "json", "--all", "EXECFAIL_MESSAGE_ID="+MessageID, "EXECFAIL_HOST="+host).Output()
			if err == nil && len(out) > 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if len(out) == 0 {
			t.Fatalf("entry not found in the journal (journalctl: %v)", err)
		}
		var got map[string]any
		if err := json.Unmarshal(bytes.SplitN(out, []byte("\n"), 2)[0], &got); err != nil {
			t.Fatalf("journalctl -o json: %v", err)
		}
		return got
	}
	marker := strconv.FormatInt(time.Now().UnixNano(), 10)
	s := newSink(t, DefaultSocket, "debug")

	ev := hostile()
	ev.Host = "test-" + marker
	if err := s.Send(context.Background(), &ev); err != nil {
		t.Fatal(err)
	}
	got := read(ev.Host)
	for k, want := range map[string]string{
		"EXECFAIL_PATH":     ev.Path,
		"EXECFAIL_ARGV":     notify.Log.ShellJoin(ev.Arguments),
		"EXECFAIL_COMM":     ev.Process.Comm,
		"MESSAGE":           Message(&ev),
		"PRIORITY":          "7",
		"SYSLOG_IDENTIFIER": "execfaild",
		"ERRNO":             "2",
		"MESSAGE_ID":        "e242a172922a4677a9154f087f458585",
		"EXECFAIL_CAUSE":    "interpreter-crlf",
	} {
		if got[k] != want {
			t.Errorf("journal %s = %#v, want %q", k, got[k], want)
		}
	}
	// The sentence holds a control character: journalctl shows its bytes.
	if text, _ := json.Marshal(got["EXECFAIL_CAUSE_TEXT"]); string(text) != byteArray(ev.CauseText) {
		t.Errorf("journal EXECFAIL_CAUSE_TEXT = %s, want the raw bytes of %q", text, ev.CauseText)
	}
	// journalctl shows a value that is not UTF-8 as its bytes.
	if exe, _ := json.Marshal(got["EXECFAIL_EXE"]); string(exe) != "[47,117,115,114,47,98,105,110,47,255,254,61,120]" {
		t.Errorf("journal EXECFAIL_EXE = %s, want the raw bytes of %q", exe, ev.Process.Exe)
	}

	// An entry too large for a datagram goes through the memfd, which
	// journald accepts only sealed.
	big := event.Synthetic(fixedTime, "test-big-"+marker)
	big.Arguments = []string{strings.Repeat("x", 1<<20), "end"}
	if err := s.Send(context.Background(), &big); err != nil {
		t.Fatal(err)
	}
	got = read(big.Host)
	if got["EXECFAIL_ARGC"] != "2" || got["EXECFAIL_ARGV"] != notify.Log.ShellJoin(big.Arguments) {
		t.Errorf("large entry: EXECFAIL_ARGC %v, EXECFAIL_ARGV of %d bytes", got["EXECFAIL_ARGC"], len(fmt.Sprint(got["EXECFAIL_ARGV"])))
	}
}

// byteArray is how journalctl -o json shows a value it does not print.
func byteArray(s string) string {
	b := make([]string, len(s))
	for i := range len(s) {
		b[i] = strconv.Itoa(int(s[i]))
	}
	return "[" + strings.Join(b, ",") + "]"
}

// TestPrivateJournald runs TestRealJournald against a journald of its own,
// started in a private mount namespace (tmpfs over /run and
// /var/log/journal), so the real daemon's parsing is checked wherever the
// systemd package is installed, even on a host without journald.
func TestPrivateJournald(t *testing.T) {
	if os.Getenv("EXECFAILD_PRIVATE_JOURNALD") != "" {
		t.Skip("already inside the private namespace")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for a private mount namespace")
	}
	var journald string
	for _, p := range []string{"/usr/lib/systemd/systemd-journald", "/lib/systemd/systemd-journald"} {
		if _, err := os.Stat(p); err == nil {
			journald = p
			break
		}
	}
	unshare, err := exec.LookPath("unshare")
	if journald == "" || err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-journald or unshare missing in CI: .ci/install-deps installs systemd")
		}
		t.Skip("systemd-journald or unshare not installed")
	}
	const script = `
mount -t tmpfs tmpfs /run || exit 97
mkdir -p /run/systemd/journal /run/log/journal
if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal; fi
mkdir -p /usr/lib/systemd/catalog /var/lib/systemd/catalog
mount -t tmpfs tmpfs /usr/lib/systemd/catalog || exit 1
mount -t tmpfs tmpfs /var/lib/systemd/catalog || exit 1
"$1" & j=$!
i=0
while [ ! -S /run/systemd/journal/socket ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
EXECFAILD_PRIVATE_JOURNALD=1 "$2" -test.run '^(TestRealJournald|TestJournalctlExplains)$' -test.count=1 -test.v
rc=$?
kill $j; wait $j
exit $rc
`
	cmd := exec.Command(unshare, "--mount", "--propagation", "private", "sh", "-c", script, "sh", journald, os.Args[0])
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) && (ee.ExitCode() == 97 || bytes.Contains(out, []byte("unshare failed"))) {
		// A container without CAP_SYS_ADMIN: nothing here is broken.
		t.Skipf("no private mount namespace here: %s", bytes.TrimSpace(out))
	}
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestRealJournald")) || !bytes.Contains(out, []byte("--- PASS: TestJournalctlExplains")) {
		t.Fatalf("TestRealJournald and TestJournalctlExplains against a private journald: %v\n%s", err, out)
	}
}

func TestDecodeTOML(t *testing.T) {
	c := DefaultConfig()
	sinktest.Decode(t, "name = \"local\"\nsocket = \"/run/container/journal.sock\"\npriority = \"notice\"\n", c)
	if c.Name != "local" || c.Socket != "/run/container/journal.sock" || c.Priority != "notice" {
		t.Errorf("decoded %+v", c)
	}
	s, err := c.New(notify.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if s.(*Sink).priority != 5 {
		t.Errorf("priority notice = %d, want 5", s.(*Sink).priority)
	}
}

func TestMessage(t *testing.T) {
	base := func() event.Event { return event.Synthetic(fixedTime, "web-1") }
	first, last := fixedTime.Add(-2*time.Second), fixedTime
	for _, tc := range []struct {
		name string
		ev   func() event.Event
		want string
	}{
		{"synthetic", base, `exec of /srv/app/deploy.sh by deployer[4242] (uid 1000, deployer.service) failed: ENOENT (no such file or directory): the script /srv/app/deploy.sh has Windows (CRLF) line endings, so its interpreter "/bin/bash\r" does not exist; convert it with dos2unix /srv/app/deploy.sh; interpreter "/bin/bash\r" not found`},
		{"path search", func() event.Event {
			ev := base()
			ev.Binary, ev.InterpreterPath = nil, ""
			ev.Path, ev.Count, ev.FirstSeen, ev.LastSeen = "/bin/deplyo", 3, &first, &last
			ev.Tried = []string{"/usr/local/bin", "/usr/bin", "/bin"}
			ev.Cause, ev.CauseText = event.CauseNotFoundInPath, "deplyo: not found in any of the 3 $PATH directories (/usr/local/bin, /usr/bin, /bin)"
			return ev
		}, `exec of deplyo by deployer[4242] (uid 1000, deployer.service) failed: ENOENT (no such file or directory): deplyo: not found in any of the 3 $PATH directories (/usr/local/bin, /usr/bin, /bin); searched PATH /usr/local/bin, /usr/bin, /bin`},
		{"sentence that quoted its values itself", func() event.Event {
			ev := base()
			ev.CauseText = `the interpreter "/bin/bash\r" of /srv/app/deploy.sh does not exist` + "\x1b"
			return ev
		}, `exec of /srv/app/deploy.sh by deployer[4242] (uid 1000, deployer.service) failed: ENOENT (no such file or directory): the interpreter "/bin/bash\r" of /srv/app/deploy.sh does not exist\x1b; interpreter "/bin/bash\r" not found`},
		{"kernel helper", func() event.Event {
			ev := base()
			ev.Binary, ev.InterpreterPath, ev.Path, ev.Syscall, ev.KernelInvoked = nil, "", "/sbin/modprobe", event.SyscallKernel, true
			ev.Process = event.Process{PID: 77, Comm: "kworker/u8:1"}
			ev.Cause, ev.CauseText = "", "" // undiagnosed: the sentence says no more than before
			ev.SetErrno(-13)
			return ev
		}, `exec of /sbin/modprobe started by the kernel in kworker/u8:1[77] (uid 0) failed: EACCES (permission denied)`},
		{"container, folded, truncated", func() event.Event {
			ev := base()
			ev.Binary, ev.InterpreterPath, ev.Path = nil, "", "/app/run me"
			ev.Process.Unit, ev.Process.ContainerID = "", "0123abcd"
			ev.ArgumentsTruncated = true
			ev.Count, ev.FirstSeen, ev.LastSeen = 5, &first, &last
			ev.Cause, ev.CauseText, ev.CauseInferred = event.CauseNotAProgram, "/app/run me\x1b[2J is neither ELF nor a #! script", true
			ev.SetErrno(-8)
			return ev
		}, `exec of "/app/run me" by deployer[4242] (uid 1000, container 0123abcd) failed: ENOEXEC (exec format error): /app/run me\x1b[2J is neither ELF nor a #! script (inferred); arguments truncated; 5 times between 2026-11-27 10:02:01 and 10:02:03 UTC`},
		{"digest over midnight", func() event.Event {
			ev := base()
			f, l := time.Date(2026, 11, 26, 23, 59, 0, 0, time.UTC), time.Date(2026, 11, 27, 0, 1, 0, 0, time.UTC)
			ev.Digest, ev.Count, ev.FirstSeen, ev.LastSeen, ev.PIDs = true, 2, &f, &l, []uint32{1, 2}
			return ev
		}, `exec of /srv/app/deploy.sh by deployer[4242] (uid 1000, deployer.service) failed: ENOENT (no such file or directory): the script /srv/app/deploy.sh has Windows (CRLF) line endings, so its interpreter "/bin/bash\r" does not exist; convert it with dos2unix /srv/app/deploy.sh; interpreter "/bin/bash\r" not found; 2 more times between 2026-11-26 23:59:00 and 2026-11-27 00:01:00 UTC (pids 1, 2)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := tc.ev()
			if got := Message(&ev); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// TestTestSinksEntry: the entry of execfaild test-sinks has its own
// MESSAGE_ID (its catalog entry says it is a test), EXECFAIL_TEST=true and
// a MESSAGE that begins with the test mark.
func TestTestSinksEntry(t *testing.T) {
	ev := event.Synthetic(time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC), "web-1")
	ev.Test = true
	got := map[string]string{}
	for _, f := range Entry(&ev, 4) {
		got[f.Name] = f.Value
	}
	if got["MESSAGE_ID"] != TestMessageID || got["EXECFAIL_TEST"] != "true" || !strings.HasPrefix(got["MESSAGE"], notify.TestMark) || got["EXECFAIL_MESSAGE_ID"] != MessageID {
		t.Errorf("test entry: MESSAGE_ID %q EXECFAIL_TEST %q MESSAGE %q EXECFAIL_MESSAGE_ID %q", got["MESSAGE_ID"], got["EXECFAIL_TEST"], got["MESSAGE"], got["EXECFAIL_MESSAGE_ID"])
	}
}
