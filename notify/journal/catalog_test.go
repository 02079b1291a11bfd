// SPDX-License-Identifier: Apache-2.0

package journal

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/execfaild/execfaild/probe/event"
)

const catalogFile = "../../packaging/execfaild.catalog"

// catalogEntries reads the catalog's entries: id and Subject, in order.
func catalogEntries(t *testing.T) (ids []string, subject map[string]string) {
	t.Helper()
	f, err := os.Open(catalogFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	subject = map[string]string{}
	var cur string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if id, ok := strings.CutPrefix(line, "-- "); ok {
			cur = id
			ids = append(ids, id)
			continue
		}
		if s, ok := strings.CutPrefix(line, "Subject: "); ok && cur != "" {
			subject[cur] = s
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ids, subject
}

var id128 = regexp.MustCompile(`^[0-9a-f]{32}$`)

// Every cause has its own id and exactly one catalog entry, which names
// the cause; no id is used twice, and the catalog holds nothing else but
// the entry of failures without a cause.
func TestCatalogHasOneEntryPerCause(t *testing.T) {
	ids, subject := catalogEntries(t)
	entries := map[string]int{}
	for _, id := range ids {
		entries[id]++
		if !id128.MatchString(id) {
			t.Errorf("catalog id %q is not 32 lower-case hex digits", id)
		}
	}
	if entries[MessageID] != 1 {
		t.Errorf("the entry for failures without a cause (%s) appears %d times, want 1", MessageID, entries[MessageID])
	}
	if len(CauseMessageIDs) != len(event.Causes) {
		t.Errorf("%d cause ids for %d causes", len(CauseMessageIDs), len(event.Causes))
	}
	if entries[TestMessageID] != 1 {
		t.Errorf("the entry for test-sinks (%s) appears %d times, want 1", TestMessageID, entries[TestMessageID])
	}
	owner := map[string]string{MessageID: "no cause", TestMessageID: "test-sinks"}
	for _, code := range event.Causes {
		id, ok := CauseMessageIDs[code]
		if !ok {
			t.Errorf("cause %s has no MESSAGE_ID", code)
			continue
		}
		if prev, dup := owner[id]; dup {
			t.Errorf("causes %s and %s share id %s", prev, code, id)
		}
		owner[id] = code
		if entries[id] != 1 {
			t.Errorf("cause %s: id %s has %d catalog entries, want 1", code, id, entries[id])
		}
		if !strings.Contains(subject[id], "("+code+")") {
			t.Errorf("cause %s: catalog entry %s has Subject %q, which does not name it", code, id, subject[id])
		}
	}
	for id := range entries {
		if _, ok := owner[id]; !ok {
			t.Errorf("catalog entry %s belongs to no cause", id)
		}
	}
}

func journalctlOrSkip(t *testing.T) string {
	t.Helper()
	journalctl, err := exec.LookPath("journalctl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("journalctl missing in CI: .ci/install-deps installs systemd")
		}
		t.Skip("journalctl not installed")
	}
	return journalctl
}

// journalctl itself compiles the catalog and lists every entry: a
// malformed header or a duplicate would drop or merge some.
func TestCatalogCompiles(t *testing.T) {
	journalctl := journalctlOrSkip(t)
	root := t.TempDir()
	dir := filepath.Join(root, "usr/lib/systemd/catalog")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(catalogFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "execfaild.catalog"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(journalctl, "--root="+root, "--update-catalog").CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("journalctl --update-catalog: %v\n%s", err, out)
	}
	out, err := exec.Command(journalctl, "--root="+root, "--list-catalog").Output()
	if err != nil {
		t.Fatalf("journalctl --list-catalog: %v", err)
	}
	listed := strings.Count(string(out), "\n")
	ids, _ := catalogEntries(t)
	// One entry per cause, one for failures without a cause, one for
	// the synthetic failure of test-sinks.
	if listed != len(ids) || listed != len(event.Causes)+2 {
		t.Errorf("journalctl lists %d entries; the file has %d, the causes and the test need %d:\n%s", listed, len(ids), len(event.Causes)+2, out)
	}
	if !strings.Contains(string(out), TestMessageID+" execfaild: A test of execfaild's sinks, not a real failure") {
		t.Errorf("journalctl --list-catalog lacks the test entry %s", TestMessageID)
	}
	for _, id := range append([]string{MessageID}, ids...) {
		if id == TestMessageID {
			continue
		}
		if !strings.Contains(string(out), id+" execfaild: A program could not be executed") {
			t.Errorf("journalctl --list-catalog lacks %s", id)
		}
	}
}

// TestJournalctlExplains: journalctl -x shows a diagnosed entry's cause
// entry, with the entry's own sentence filled in and the fix. It changes
// the system's catalog, so it runs only inside TestPrivateJournald's
// namespace, where /usr/lib/systemd/catalog and /var/lib/systemd/catalog
// are private.
func TestJournalctlExplains(t *testing.T) {
	if os.Getenv("EXECFAILD_PRIVATE_JOURNALD") == "" {
		t.Skip("changes the system's journal catalog: runs inside TestPrivateJournald")
	}
	journalctl := journalctlOrSkip(t)
	data, err := os.ReadFile(catalogFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("/usr/lib/systemd/catalog/execfaild.catalog", data, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(journalctl, "--update-catalog").CombinedOutput(); err != nil {
		t.Fatalf("journalctl --update-catalog: %v\n%s", err, out)
	}
	ev := event.Synthetic(fixedTime, "explain-"+strconv.FormatInt(time.Now().UnixNano(), 10))
	if err := newSink(t, DefaultSocket, "warning").Send(context.Background(), &ev); err != nil {
		t.Fatal(err)
	}
	var out []byte
	for i := 0; i < 50; i++ {
		out, err = exec.Command(journalctl, "-x", "-q", "--no-pager", "--all", "MESSAGE_ID="+CauseMessageIDs[ev.Cause], "EXECFAIL_HOST="+ev.Host).Output()
		if err == nil && bytes.Contains(out, []byte("Subject: ")) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, want := range []string{
		"Subject: A program could not be executed (interpreter-crlf): the script has Windows (CRLF) line endings",
		Message(&ev),
		"The entry's message names the program, the process that tried to run it",
		"Fix: convert the file, with dos2unix FILE",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("journalctl -x lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "@EXECFAIL_") {
		t.Errorf("journalctl -x shows a field reference unexpanded:\n%s", out)
	}
}

// catalogReferences returns, per catalog entry, the fields its Subject and
// text name as @FIELD@: journalctl -x fills them from the entry, and shows
// a field the entry lacks as the literal @FIELD@.
func catalogReferences(t *testing.T) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(catalogFile)
	if err != nil {
		t.Fatal(err)
	}
	ref := regexp.MustCompile(`@([A-Za-z0-9_]+)@`)
	refs := map[string][]string{}
	cur := ""
	for _, line := range strings.Split(string(data), "\n") {
		if id, ok := strings.CutPrefix(line, "-- "); ok {
			cur = id
			refs[cur] = nil
			continue
		}
		if cur == "" {
			continue
		}
		for _, m := range ref.FindAllStringSubmatch(line, -1) {
			refs[cur] = append(refs[cur], m[1])
		}
	}
	return refs
}

// leanEvents are the barest entries each catalog id can be shown for: a
// failure with only what the probe always reports, and a digest of
// failures that shared nothing but what its MESSAGE_ID says (the cause).
func leanEvents(id string) []event.Event {
	if id == TestMessageID {
		ev := event.Synthetic(fixedTime, "h")
		ev.Test = true
		return []event.Event{ev}
	}
	cause := ""
	for code, cid := range CauseMessageIDs {
		if cid == id {
			cause = code
		}
	}
	single := event.Event{
		Time: fixedTime, Host: "h", Syscall: event.SyscallExecve, Cause: cause,
		Process: event.Process{PID: 7, TID: 7, Comm: "sh"},
	}
	single.SetErrno(-2)
	if cause != "" {
		single.CauseText = "a sentence"
	}
	first, last := fixedTime.Add(-time.Minute), fixedTime
	digest := event.Event{
		Time: fixedTime, Host: "h", Cause: cause, Digest: true, Count: 2,
		FirstSeen: &first, LastSeen: &last, PIDs: []uint32{7, 8},
	}
	return []event.Event{single, digest}
}

// TestCatalogNamesOnlyFieldsEveryEntryHas: a catalog text may name only
// fields every entry with its MESSAGE_ID carries, or journalctl -x shows
// an operator "@EXECFAIL_UNIT@" where a failure outside any unit has none.
func TestCatalogNamesOnlyFieldsEveryEntryHas(t *testing.T) {
	for id, fields := range catalogReferences(t) {
		for _, ev := range leanEvents(id) {
			if got := MessageIDOf(&ev); got != id {
				t.Fatalf("lean event for %s has MESSAGE_ID %s", id, got)
			}
			sent := map[string]bool{}
			for _, f := range Entry(&ev, 4) {
				sent[f.Name] = true
			}
			for _, name := range fields {
				if !sent[name] {
					t.Errorf("catalog entry %s names @%s@, which an entry (digest=%v) may lack: journalctl -x would show it literally", id, name, ev.Digest)
				}
			}
		}
	}
}
