// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/execfaild/execfaild/probe/event"
)

func spoolEvent(i int, argBytes int) *event.Event {
	ev := failure(t0.Add(time.Duration(i)*time.Second), uint32(i+1), fmt.Sprintf("/opt/job%d", i), -13)
	if argBytes > 0 {
		ev.Arguments = append(ev.Arguments, strings.Repeat("x", argBytes))
	}
	ev.Count = 1
	return ev
}

// diskCount sums the counts of the entries a fresh start would deliver,
// after the start's own cleanup.
func diskCount(t *testing.T, dir string) (uint64, int) {
	t.Helper()
	sp, err := openSpool(dir, 1<<40, 1<<30, 16)
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.rescan(true); err != nil {
		t.Fatal(err)
	}
	var n uint64
	entries := 0
	for _, name := range sp.names {
		ev, err := sp.read(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		n += count(ev)
		entries++
	}
	return n, entries
}

func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestSpoolFullDisk: on a file system that runs out of space, a put
// either lands whole or reports an error and leaves nothing behind, and
// what is on disk is exactly what was acknowledged.
func TestSpoolFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	sp, err := openSpool(dir, 1<<30, 1<<20, 16)
	if err != nil {
		t.Fatal(err)
	}
	var acked uint64
	var enospc int
	for i := range 200 {
		merged, err := sp.put(spoolEvent(i, 3000))
		if merged != 0 {
			t.Fatalf("merged %d entries below the configured bounds", merged)
		}
		if err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("put %d: %v", i, err)
			}
			enospc++
			continue
		}
		acked++
	}
	if enospc == 0 {
		t.Fatal("200 entries of 3 KB fit into 64 KiB")
	}
	if tmp := tempFiles(t, dir); len(tmp) != 0 {
		t.Errorf("temporary files left behind: %v", tmp)
	}
	if n, _ := diskCount(t, dir); n != acked {
		t.Errorf("disk holds %d failures, %d were acknowledged", n, acked)
	}
}

// TestSpoolEntryThatCannotBeRemoved: a delivered entry whose file cannot be
// deleted (chattr +i) is logged and not handed out again by this run.
func TestSpoolEntryThatCannotBeRemoved(t *testing.T) {
	if _, err := exec.LookPath("chattr"); err != nil {
		t.Skip("chattr not installed")
	}
	dir := t.TempDir()
	sp, err := openSpool(dir, 1<<30, 100, 16)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := sp.put(spoolEvent(i, 0)); err != nil {
			t.Fatal(err)
		}
	}
	first := filepath.Join(dir, sp.names[0])
	if out, err := exec.Command("chattr", "+i", first).CombinedOutput(); err != nil {
		t.Skipf("chattr +i unsupported here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("chattr", "-i", first).Run() })
	ev, err := sp.head()
	if err != nil || ev.Path != "/opt/job0" {
		t.Fatalf("head: %v %v", ev, err)
	}
	sp.pop()
	if _, err := os.Stat(first); err != nil {
		t.Fatalf("the immutable entry went away: %v", err)
	}
	ev, err = sp.head()
	if err != nil || ev == nil || ev.Path != "/opt/job1" {
		t.Fatalf("after a failed removal head returned %v, %v; want the next entry", ev, err)
	}
	sp.pop()
	if ev, err := sp.head(); ev != nil || err != nil {
		t.Errorf("the undeletable entry is handed out again: %v %v", ev, err)
	}
	if err := sp.rescan(true); err != nil || sp.len() != 0 {
		t.Errorf("a rescan in the same run brings it back: %d entries, %v", sp.len(), err)
	}
}

// TestSpoolMergedEntryThatCannotBeRemoved: an entry merged away whose file
// cannot be deleted (chattr +i) stays listed as absorbed by whatever entry
// its count moves into, through further merges and a restart, so no start
// reports it a second time.
func TestSpoolMergedEntryThatCannotBeRemoved(t *testing.T) {
	if _, err := exec.LookPath("chattr"); err != nil {
		t.Skip("chattr not installed")
	}
	for _, maxEntries := range []int{2, 1} {
		dir := t.TempDir()
		sp, err := openSpool(dir, 1<<30, maxEntries, 16)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sp.put(spoolEvent(0, 0)); err != nil {
			t.Fatal(err)
		}
		first := filepath.Join(dir, sp.names[0])
		if out, err := exec.Command("chattr", "+i", first).CombinedOutput(); err != nil {
			t.Skipf("chattr +i unsupported here: %v %s", err, out)
		}
		t.Cleanup(func() { exec.Command("chattr", "-i", first).Run() })
		puts := uint64(1)
		for run := range 2 {
			if run > 0 {
				if sp, err = openSpool(dir, 1<<30, maxEntries, 16); err != nil {
					t.Fatal(err)
				}
				if err := sp.rescan(true); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 4 {
				if _, err := sp.put(spoolEvent(i+1, 0)); err != nil {
					t.Fatal(err)
				}
				puts++
			}
			if _, err := os.Stat(first); err != nil {
				t.Fatalf("the immutable entry went away: %v", err)
			}
			if got, entries := diskCount(t, dir); got != puts {
				t.Errorf("max_entries %d, run %d: %d puts, the next start finds %d failures in %d entries", maxEntries, run, puts, got, entries)
			}
		}
	}
}

// TestSpoolImplausibleEntries: null, an event without a time, a count no
// run can have written, a count neither a digest nor a folded search (no
// time range) and a name that would make the sequence wrap are set aside
// and counted, never sent as an all-zero failure.
func TestSpoolImplausibleEntries(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("00000000000000000001.json", "null")
	write("00000000000000000002.json", `{"path":"/x","return_value":-2}`)
	write("00000000000000000003.json", `{"time":"2026-01-01T00:00:00Z","return_value":-2,"count":18446744073709551615,"digest":true}`)
	write("00000000000000000004.json", `{"time":"2026-01-01T00:00:00Z","return_value":-2,"path":"/ok"}`)
	write("00000000000000000005.json", `{"time":"2026-01-01T00:00:00Z","return_value":-2,"path":"/x","count":7}`)
	write("18446744073709551615.json", `{"time":"2026-01-01T00:00:00Z","return_value":-2,"path":"/planted"}`)
	sp, err := openSpool(dir, 1<<30, 100, 16)
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.rescan(true); err != nil {
		t.Fatal(err)
	}
	var good []string
	bad := 0
	for sp.len() > 0 {
		ev, err := sp.head()
		if err != nil {
			bad++
			continue
		}
		good = append(good, ev.Path)
		sp.pop()
	}
	if bad != 4 || len(good) != 1 || good[0] != "/ok" {
		t.Errorf("set aside %d, delivered %q; want 4 set aside and /ok", bad, good)
	}
	if n := sp.takeDropped(); n != 1 {
		t.Errorf("%d entries dropped at the rescan, want the planted name", n)
	}
	if _, err := sp.put(spoolEvent(9, 0)); err != nil {
		t.Fatal(err)
	}
	if sp.names[0] <= "00000000000000000004.json" {
		t.Errorf("next entry %s is numbered below entries already sent", sp.names[0])
	}
	for _, n := range []string{"00000000000000000001.json.bad", "18446744073709551615.json.bad"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Errorf("not set aside: %v", err)
		}
	}
}

// spoolChildEnv makes the test binary a spool writer killed by the parent;
// spoolCrashEnv, "point|hit|maxEntries|puts", makes it kill itself at the
// hit-th pass through a crash point.
const (
	spoolChildEnv = "EXECFAILD_SPOOL_CHILD"
	spoolCrashEnv = "EXECFAILD_SPOOL_CRASH"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(spoolChildEnv); dir != "" {
		spoolChild(dir, os.Getenv(spoolCrashEnv))
		return
	}
	os.Exit(m.Run())
}

// spoolChild puts entries into a small spool (every put merges) and
// prints the number of each acknowledged put. Killing itself at a crash
// point, it first prints "crash"; after its last put it prints "done".
func spoolChild(dir, crash string) {
	w := bufio.NewWriter(os.Stdout)
	fail := func(err error) {
		fmt.Fprintln(w, "error", err)
		w.Flush()
		os.Exit(1)
	}
	maxEntries, puts := 5, -1
	if crash != "" {
		var point string
		var hit int
		f := strings.Split(crash, "|")
		if len(f) != 4 {
			fail(fmt.Errorf("%s=%q: want point|hit|maxEntries|puts", spoolCrashEnv, crash))
		}
		point = f[0]
		for i, v := range []*int{&hit, &maxEntries, &puts} {
			n, err := strconv.Atoi(f[i+1])
			if err != nil {
				fail(fmt.Errorf("%s: %w", spoolCrashEnv, err))
			}
			*v = n
		}
		crashAt = func(p string) {
			if p != point {
				return
			}
			if hit--; hit == 0 {
				fmt.Fprintln(w, "crash")
				w.Flush()
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {}
			}
		}
	}
	sp, err := openSpool(dir, 1<<30, maxEntries, 16)
	if err != nil {
		fail(err)
	}
	if err := sp.rescan(true); err != nil {
		fail(err)
	}
	for i := 0; i != puts; i++ {
		if _, err := sp.put(spoolEvent(i, 200)); err != nil {
			fail(err)
		}
		fmt.Fprintln(w, i)
		w.Flush()
	}
	fmt.Fprintln(w, "done")
	w.Flush()
}

// runSpoolChild runs a spool writer on dir, kills it once it has
// acknowledged killAfter+1 puts (never when killAfter < 0), and reads its
// output to the end. It returns every put the child acknowledged, those
// that were still in the pipe when the kill was sent included, and the
// child's last word: "crash", "done", or "" when killed from here.
func runSpoolChild(t *testing.T, dir, crash string, killAfter int) (acked uint64, last string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), spoolChildEnv+"="+dir, spoolCrashEnv+"="+crash)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		last = line
		if line == "crash" || line == "done" {
			continue
		}
		n, err := strconv.Atoi(line)
		if err != nil {
			cmd.Process.Kill()
			t.Fatalf("child: %s", line)
		}
		acked = uint64(n + 1)
		if n == killAfter {
			cmd.Process.Kill()
		}
	}
	if last != "crash" && last != "done" {
		last = ""
	}
	return acked, last
}

// TestSpoolKilledWhileWriting kills a process at random points while it
// spools (every put merges the oldest entries) and checks, after the next
// start's cleanup, that the disk holds exactly the acknowledged failures,
// or one more: the put in flight may have landed without its
// acknowledgement. The child runs ahead of the kill: the puts it
// acknowledged before the kill landed count too.
func TestSpoolKilledWhileWriting(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for round := range 8 {
		dir := t.TempDir()
		acked, _ := runSpoolChild(t, dir, "", 20+r.Intn(200))
		got, entries := diskCount(t, dir)
		if got != acked && got != acked+1 {
			t.Errorf("round %d: killed after %d acknowledged puts, the disk holds %d failures in %d entries", round, acked, got, entries)
		}
		if tmp := tempFiles(t, dir); len(tmp) != 0 {
			t.Errorf("round %d: temporary files survive a start: %v", round, tmp)
		}
	}
}

// TestSpoolKilledAtEachStep kills a spool writer at every crash point of a
// merge into the next entry (maxEntries 5) and of a merge into the new
// entry (maxEntries 1): early, and once the entries are digests of
// earlier merges; then a second writer is started on what the first left
// and killed the same way. After each kill the disk holds exactly the
// acknowledged failures, plus the put in flight once its entry was
// renamed into place.
func TestSpoolKilledAtEachStep(t *testing.T) {
	landed := map[string]bool{crashNewRenamed: true, crashNewAbsorbed: true}
	for _, c := range []struct {
		maxEntries int
		points     []string
	}{
		{5, []string{crashNewTemp, crashNewRenamed, crashMergeTemp, crashMergeRenamed, crashMergeDropped}},
		{1, []string{crashNewTemp, crashNewRenamed, crashNewAbsorbed}},
	} {
		for _, point := range c.points {
			for _, hit := range []int{1, 4, 13} {
				dir := t.TempDir()
				var want uint64
				for gen := range 2 {
					acked, last := runSpoolChild(t, dir, fmt.Sprintf("%s|%d|%d|%d", point, hit, c.maxEntries, 40), -1)
					if last != "crash" {
						t.Fatalf("max_entries %d, %q, pass %d, writer %d: 40 puts went by without a crash there (last word %q)", c.maxEntries, point, hit, gen, last)
					}
					want += acked
					if landed[point] {
						want++
					}
					got, entries := diskCount(t, dir)
					if got != want {
						t.Errorf("max_entries %d, killed at %q, pass %d, writer %d: the disk holds %d failures in %d entries, want %d", c.maxEntries, point, hit, gen, got, entries, want)
					}
					if tmp := tempFiles(t, dir); len(tmp) != 0 {
						t.Errorf("max_entries %d, killed at %q, pass %d, writer %d: temporary files survive a start: %v", c.maxEntries, point, hit, gen, tmp)
					}
					want = got
				}
			}
		}
	}
}

// A folded PATH search counts its steps without being a digest: the spool
// must give it back whole, not set it aside as implausible (its count was
// lost that way when a sink failed during a search).
func TestSpoolKeepsFoldedPathSearch(t *testing.T) {
	sp, err := openSpool(t.TempDir(), 1<<20, 10, 16)
	if err != nil {
		t.Fatal(err)
	}
	ev := spoolEvent(7, 0)
	ev.Count, ev.Digest, ev.Tried = 2, false, []string{"/usr/local/bin", "/usr/bin"}
	if _, err := sp.put(ev); err != nil {
		t.Fatal(err)
	}
	got, err := sp.head()
	if err != nil {
		t.Fatalf("folded search set aside: %v", err)
	}
	if got == nil || got.Count != 2 || len(got.Tried) != 2 {
		t.Errorf("spool gave back %+v, want the search with count 2", got)
	}
	if n := sp.takeDropped(); n != 0 {
		t.Errorf("%d entries dropped", n)
	}
}

// Every shape of folded PATH search the coalescer reports — a directory
// list, a $PATH naming one directory twice, an outcome a lost success
// marker made unknowable — comes back from the spool with its count, read
// alone or merged when the spool is full. The searches come from the
// coalescer itself, so a new shape it learns is checked here too.
func TestSpoolKeepsEveryFoldedSearch(t *testing.T) {
	for _, tc := range []struct {
		name string
		dirs []string
		lost bool // a success marker is lost while the search is pending
	}{
		{name: "not found in path", dirs: []string{"/usr/local/bin", "/usr/bin"}},
		{name: "repeated directory", dirs: []string{"/usr/bin", "/usr/bin"}},
		{name: "outcome unknown", dirs: []string{"/usr/local/bin", "/usr/bin"}, lost: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCoalescer(PathSearchHold)
			var lost uint64
			c.lostMarkers = func() uint64 { return lost }
			for _, d := range tc.dirs {
				if out := c.add(failure(t0, 9, d+"/tool", -2), t0); out != nil {
					t.Fatalf("step in %s not folded: %v", d, out)
				}
			}
			if tc.lost {
				lost++
			}
			out := c.expire(t0.Add(PathSearchHold), false)
			if len(out) != 1 || count(out[0]) != uint64(len(tc.dirs)) {
				t.Fatalf("coalescer reported %d notifications, want one search of %d", len(out), len(tc.dirs))
			}
			search := out[0]

			// Read back alone.
			sp, err := openSpool(t.TempDir(), 1<<20, 2, 16)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sp.put(search); err != nil {
				t.Fatal(err)
			}
			if got, err := sp.head(); err != nil {
				t.Errorf("search (count %d, digest %v, tried %v) set aside: %v", search.Count, search.Digest, search.Tried, err)
			} else if count(got) != count(search) {
				t.Errorf("spool gave back count %d, want %d", count(got), count(search))
			}
			if d := sp.takeDropped(); d != 0 {
				t.Errorf("%d entries dropped as unreadable", d)
			}

			// Merged: two more entries overflow a spool of two, and the
			// search's count goes into the entry it is merged with.
			sp, err = openSpool(t.TempDir(), 1<<20, 2, 16)
			if err != nil {
				t.Fatal(err)
			}
			want := count(search)
			if _, err := sp.put(search); err != nil {
				t.Fatal(err)
			}
			for i := range 2 {
				if _, err := sp.put(spoolEvent(i, 0)); err != nil {
					t.Fatal(err)
				}
				want++
			}
			var n uint64
			for sp.len() > 0 {
				ev, err := sp.head()
				if err != nil {
					t.Fatal(err)
				}
				n += count(ev)
				sp.pop()
			}
			if n != want {
				t.Errorf("spool holds %d failures after merging, want %d", n, want)
			}
			if d := sp.takeDropped(); d != 0 {
				t.Errorf("%d entries dropped as unreadable", d)
			}
		})
	}
}
