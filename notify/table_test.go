// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/execfaild/execfaild/internal/poll"
	"github.com/execfaild/execfaild/probe/event"
)

// bulky is a failure carrying what a hostile caller can: 64 arguments of
// 4 KiB and a large environment.
func bulky(now time.Time, tid uint32, p string) *event.Event {
	// EACCES: not held as a possible PATH search.
	ev := failure(now, tid, p, -13)
	ev.Arguments = nil
	for range 64 {
		ev.Arguments = append(ev.Arguments, strings.Repeat("a", 4096))
	}
	for i := range 64 {
		ev.Environment = append(ev.Environment, fmt.Sprintf("V%d=%s", i, strings.Repeat("e", 4000)))
	}
	return ev
}

// TestDedupSampleIsSmall: a key pins its first failure for the whole
// window; what it pins has no environment and bounded arguments, and the
// digest made from it says so.
func TestDedupSampleIsSmall(t *testing.T) {
	clk := &fakeClock{now: t0}
	sink := &recSink{}
	p := setup(t, clk, sink, func(c *Config, s *SinkCommon) {
		s.Dedup = DedupConfig{Window: Duration(time.Hour)}
	})
	p.Handle(bulky(clk.Now(), 1, "/opt/x"))
	p.Handle(bulky(clk.Now(), 2, "/opt/x"))
	p.mu.Lock()
	for _, h := range p.sinks[0].entries {
		if n := argBytes(h.sample); h.sample.Environment != nil || len(h.sample.Arguments) > sampleArgs || n > sampleArgBytes {
			t.Errorf("sample keeps %d env entries, %d arguments, %d bytes of them", len(h.sample.Environment), len(h.sample.Arguments), n)
		}
	}
	p.mu.Unlock()
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs := sink.events()
	if len(evs) != 2 || !evs[1].Digest {
		t.Fatalf("got %d notifications, want the first and a digest", len(evs))
	}
	if d := evs[1]; d.Environment != nil || !d.ArgumentsTruncated || argBytes(&d) > sampleArgBytes || !d.EnvironmentTruncated {
		t.Errorf("digest: %d env entries (truncated %v), %d argument bytes (truncated %v)", len(d.Environment), d.EnvironmentTruncated, argBytes(&d), d.ArgumentsTruncated)
	}
	if first := evs[0]; len(first.Environment) != 64 || len(first.Arguments) != 64 {
		t.Errorf("the first occurrence itself lost detail: %d env, %d args", len(first.Environment), len(first.Arguments))
	}
}

func argBytes(ev *event.Event) int {
	n := 0
	for _, a := range ev.Arguments {
		n += len(a)
	}
	return n
}

// TestDedupTableByteBudget: distinct failures with large arguments fill
// max_bytes long before max_keys; the table stays within its budget and
// every failure is still counted once.
func TestDedupTableByteBudget(t *testing.T) {
	clk := &fakeClock{now: t0}
	sink := &recSink{}
	p := setup(t, clk, sink, func(c *Config, s *SinkCommon) {
		s.Dedup = DedupConfig{Window: Duration(time.Hour), MaxKeys: MaxKeysLimit, MaxBytes: MinDedupBytes}
		s.QueueSize = 4096
	})
	const n = 1000
	for i := range n {
		p.Handle(bulky(clk.Now(), uint32(i+1), fmt.Sprintf("/opt/x%d", i)))
	}
	p.mu.Lock()
	s := p.sinks[0]
	var charged int64
	for _, h := range s.entries {
		charged += h.size
	}
	if charged != s.bytes || s.bytes > MinDedupBytes || len(s.entries) == 0 || len(s.entries) >= n {
		t.Errorf("table: %d keys, %d bytes charged (%d counted), budget %d", len(s.entries), charged, s.bytes, MinDedupBytes)
	}
	p.mu.Unlock()
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := sink.total(); got != n {
		t.Errorf("delivered %d failures, want %d", got, n)
	}
}

// TestOneUserCannotSwallowAnother: one user floods the table with
// distinct failures; another user's failure still goes out at once, as
// itself, and no notification mixes the two users.
func TestOneUserCannotSwallowAnother(t *testing.T) {
	clk := &fakeClock{now: t0}
	sink := &recSink{}
	p := setup(t, clk, sink, func(c *Config, s *SinkCommon) {
		s.Dedup = DedupConfig{Window: Duration(time.Hour), MaxKeys: 10}
	})
	for i := range 50 {
		p.Handle(failure(clk.Now(), uint32(100+i), fmt.Sprintf("/tmp/flood%d", i), -13))
	}
	victim := failure(clk.Now(), 7, "/usr/local/bin/backup", -13)
	victim.Process.UID = 1001
	p.Handle(victim)
	poll.Until(t, "the other user's notification", func() bool {
		for _, e := range sink.events() {
			if e.Process.UID == 1001 {
				return true
			}
		}
		return false
	})
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	perUID := map[uint32]uint64{}
	for _, e := range sink.events() {
		perUID[e.Process.UID] += count(&e)
		if e.Process.UID == 1001 && (e.Digest || e.Path != victim.Path || e.Error != "EACCES") {
			t.Errorf("the other user's failure went out as digest=%v path %q error %q", e.Digest, e.Path, e.Error)
		}
	}
	if perUID[1000] != 50 || perUID[1001] != 1 || len(perUID) != 2 {
		t.Errorf("failures per uid %v, want 1000:50 1001:1", perUID)
	}
}

// TestCombinedDigestClaimsNothingUnshared: failures of different programs,
// errors and processes folded together leave those fields out of the
// JSON instead of writing "path": "", "return_value": 0, "error": "".
func TestCombinedDigestClaimsNothingUnshared(t *testing.T) {
	clk := &fakeClock{now: t0}
	sink := &recSink{}
	p := setup(t, clk, sink, func(c *Config, s *SinkCommon) {
		s.Dedup = DedupConfig{Window: Duration(time.Hour), MaxKeys: 1}
	})
	// No ENOENT: an absolute-path ENOENT waits as a possible PATH search.
	p.Handle(failure(clk.Now(), 1, "/opt/first", -1))
	a := failure(clk.Now(), 2, "/opt/a", -13)
	a.Process.UserUnit = "a.service"
	b := failure(clk.Now(), 3, "/opt/b", -8)
	b.Process.UserUnit = "b.service"
	b.Syscall = event.SyscallExecveat
	p.Handle(a)
	p.Handle(b)
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs := sink.events()
	if len(evs) != 2 || evs[1].Count != 2 {
		t.Fatalf("got %d notifications, want the first and a combined digest of 2", len(evs))
	}
	d := &evs[1]
	if d.Process.UserUnit != "" || d.Process.PID != 0 {
		t.Errorf("combined digest claims user_unit %q, pid %d", d.Process.UserUnit, d.Process.PID)
	}
	raw, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	out, err := OmitUnshared(d, raw)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, k := range []string{"path", "return_value", "error", "error_text", "syscall"} {
		if v, ok := m[k]; ok {
			t.Errorf("combined digest has %s = %v", k, v)
		}
	}
	if m["count"] != float64(2) || m["digest"] != true {
		t.Errorf("combined digest lost its count: %s", out)
	}
	// A single failure keeps every field, even one that is empty.
	single := failure(t0, 1, "", -2)
	single.PathTruncated = true
	raw, _ = json.Marshal(single)
	if out, _ := OmitUnshared(single, raw); string(out) != string(raw) {
		t.Errorf("single failure changed:\n%s\n%s", raw, out)
	}
}

func TestTimes(t *testing.T) {
	for _, tc := range []struct {
		n      uint64
		digest bool
		want   string
	}{{1, true, "1 more time"}, {2, true, "2 more times"}, {37, false, "37 times"}, {1, false, "1 time"}} {
		if got := Times(tc.n, tc.digest); got != tc.want {
			t.Errorf("Times(%d, %v) = %q, want %q", tc.n, tc.digest, got, tc.want)
		}
	}
}

// typicalFailure is the i-th of a storm of distinct failures shaped as a
// deploy's are, every string its own as decoding makes them.
func typicalFailure(now time.Time, i int) *event.Event {
	ev := failure(now, uint32(10000+i), fmt.Sprintf("/srv/app/releases/%06d/bin/worker", i), -13)
	ev.Arguments = []string{fmt.Sprintf("/srv/app/releases/%06d/bin/worker", i), fmt.Sprintf("--id=%d", i)}
	ev.ErrorText = fmt.Sprint("permission denied")
	ev.CauseText = fmt.Sprintf("%s is not executable for uid 1000 (mode 0644, owner 0:0): run chmod +x on it, or run it through its interpreter", ev.Path)
	ev.Cause = event.CauseNotExecutable
	ev.Process.Exe = fmt.Sprint("/usr/bin/bash")
	ev.Process.Cwd = fmt.Sprintf("/home/deploy/%d", i%7)
	ev.Process.Cgroup = fmt.Sprint("/system.slice/deploy.service")
	ev.Process.Unit = fmt.Sprint("deploy.service")
	ev.StdinPath = fmt.Sprint("/dev/null")
	ev.Binary = &event.Binary{Path: ev.Path, InodeNumber: uint64(i + 1)}
	ev.Parent = &event.Parent{PID: 1, Comm: fmt.Sprint("deployer"), Exe: fmt.Sprint("/usr/local/bin/deployer")}
	return ev
}

// TestDedupChargeCoversHeap: what the table charges a key against
// max_bytes covers the heap the key really holds - its sample, the digest
// of failures the rate limit kept back, the key itself and the table's
// bookkeeping - so that max_bytes, and check-config's memory bound built
// on it, bound the daemon's memory in a storm of distinct failures.
func TestDedupChargeCoversHeap(t *testing.T) {
	clk := &fakeClock{now: t0}
	sink := &recSink{}
	p := setup(t, clk, sink, func(c *Config, s *SinkCommon) {
		s.Dedup = DedupConfig{Window: Duration(time.Hour), MaxKeys: MaxKeysLimit, MaxBytes: 1 << 30}
		// One notification: every later key is held with a digest.
		s.RateLimit = RateLimitConfig{Rate: 0.001, Burst: 1}
	})
	const n = 4000
	// Every string its own, as decoding makes them; the heap is measured
	// from before the failures were made, so it holds what the table
	// keeps of them.
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		ev := typicalFailure(clk.Now(), i)
		p.Handle(ev)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	p.mu.Lock()
	s := p.sinks[0]
	keys, charged := len(s.entries), s.bytes
	held := 0
	for _, h := range s.entries {
		if h.digest != nil {
			held++
		}
	}
	p.mu.Unlock()
	if keys != n || held < n-1 {
		t.Fatalf("%d keys, %d with a digest; want %d, all but the first held back", keys, held, n)
	}
	real := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d keys: heap %d bytes (%d a key), charged %d (%d a key)", keys, real, real/n, charged, charged/n)
	if charged < real {
		t.Errorf("the table charges %d bytes a key, the heap holds %d: max_bytes does not bound it", charged/n, real/n)
	}
}

// A burst of distinct failures at the defaults - a deploy, a broken
// upgrade's post-install scripts - must leave room in the table: a user's
// next, different failure still gets its own notification, not a place in
// the user's combined digest that names no path. 4 MiB held about 1,800
// keys, and the booted-system test's 2,000-failure storm hid the failure
// after it for the rest of the window.
func TestDefaultDedupHoldsABurstOfDistinctFailures(t *testing.T) {
	clk := &fakeClock{now: t0}
	sink := &recSink{}
	p := setup(t, clk, sink, nil)
	const burst = 3000
	for i := range burst {
		p.Handle(typicalFailure(clk.Now(), i))
	}
	after := typicalFailure(clk.Now(), burst)
	after.Path = "/srv/app/after-the-burst"
	after.Binary = &event.Binary{Path: after.Path, InodeNumber: 1}
	p.Handle(after)
	p.mu.Lock()
	s := p.sinks[0]
	keys, charged, combined := len(s.entries), s.bytes, len(s.overflowUIDs)
	p.mu.Unlock()
	if keys != burst+1 || combined != 0 {
		t.Fatalf("after %d distinct failures at the defaults (max_bytes %d, %d charged): %d keys, %d combined digests; want every failure its own key",
			burst+1, DefaultDedup().MaxBytes, charged, keys, combined)
	}
}
