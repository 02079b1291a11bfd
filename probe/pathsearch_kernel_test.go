// SPDX-License-Identifier: Apache-2.0

package probe_test

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/probe"
	"github.com/execfaild/execfaild/probe/event"
)

// pathSearchCases runs real execvp searches (env's) under TestKernelProbe's
// probe and folds the records as the daemon does: a $PATH naming a
// directory twice is still one search, reported once with each directory
// listed once, and a search that found a short-lived program is not
// reported at all.
func pathSearchCases(t *testing.T, p *probe.Probe, col *collector) {
	env, err := exec.LookPath("env")
	if err != nil {
		t.Skip("no env program")
	}
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no true program")
	}
	dir := t.TempDir()

	// search runs env with path as $PATH to exec prog and returns what
	// folding its records gave, once its failures (want of them) and, when
	// found, its success have arrived.
	search := func(t *testing.T, path []string, prog string, found bool) []*event.Event {
		t.Helper()
		cmd := exec.Command(env, "PATH="+strings.Join(path, ":"), prog)
		err := cmd.Run()
		if found != (err == nil) {
			t.Fatalf("env %s: %v", prog, err)
		}
		tid := uint32(cmd.Process.Pid)
		var fails []*event.Event
		var succ *event.Success
		deadline := time.Now().Add(eventTimeout)
		for time.Now().Before(deadline) {
			fails = nil
			for _, f := range col.failuresOf(tid) {
				if filepath.Base(f.Path) == prog {
					fails = append(fails, f)
				}
			}
			if found {
				succ = col.waitSuccess(0, tid)
			}
			if found && len(fails) == len(path)-1 && succ != nil || !found && len(fails) == len(path) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		// Nothing to fold proves nothing: the walk must have happened.
		want := len(path)
		if found {
			want--
		}
		if len(fails) != want || found && succ == nil {
			t.Fatalf("env %s: %d of the walk's %d failures and success %v arrived", prog, len(fails), want, succ)
		}
		var out []*event.Event
		fold := notify.NewPathSearches(time.Hour, p.LostMarkers, func(ev *event.Event) { out = append(out, ev) })
		for _, f := range fails {
			ev := *f
			fold.Failure(&ev)
		}
		if succ != nil {
			fold.Success(succ)
		}
		fold.Flush()
		return out
	}

	t.Run("repeated_dir", func(t *testing.T) {
		path := []string{dir + "/a", dir + "/b", dir + "/b", "/nonexistent-execfaild", dir + "/a", dir + "/c"}
		out := search(t, path, "execfaild-no-such-tool", false)
		once := []string{dir + "/a", dir + "/b", "/nonexistent-execfaild", dir + "/c"}
		if len(out) != 1 {
			for _, ev := range out {
				t.Logf("%d× %s", ev.Count, ev.CauseText)
			}
			t.Fatalf("%d reports of one search, want 1", len(out))
		}
		if ev := out[0]; !slices.Equal(ev.Tried, once) || ev.Count != uint64(len(path)) {
			t.Errorf("tried %v count %d, want %v count %d", ev.Tried, ev.Count, once, len(path))
		}
	})

	t.Run("other_program_after_absolute", func(t *testing.T) {
		// An absolute path that is not there, then another program,
		// one that exits at once (the kernel names it in the success
		// marker, no /proc read races its exit): the failure is
		// reported.
		bash, err := exec.LookPath("bash")
		if err != nil {
			t.Skip("no bash")
		}
		missing := dir + "/x/evil"
		cmd := exec.Command(bash, "-c", "shopt -s execfail; exec "+missing+"; exec "+truePath)
		if err := cmd.Run(); err != nil {
			t.Fatalf("bash: %v", err)
		}
		tid := uint32(cmd.Process.Pid)
		succ := col.waitSuccess(eventTimeout, tid)
		fails := col.failuresOf(tid)
		if succ == nil || len(fails) != 1 || fails[0].Path != missing {
			t.Fatalf("records of tid %d: success %v, %d failures", tid, succ, len(fails))
		}
		if succ.Name != filepath.Base(truePath) {
			t.Fatalf("success named %q, want %s", succ.Name, filepath.Base(truePath))
		}
		var out []*event.Event
		fold := notify.NewPathSearches(time.Hour, p.LostMarkers, func(ev *event.Event) { out = append(out, ev) })
		ev := *fails[0]
		fold.Failure(&ev)
		fold.Success(succ)
		fold.Flush()
		if len(out) != 1 || out[0].Path != missing {
			t.Errorf("%d reports, want the ENOENT of %s", len(out), missing)
		}
	})

	t.Run("found_short_lived", func(t *testing.T) {
		// true exits at once: its name must still be learned, or every
		// search that found a quick program would be reported.
		if target, err := filepath.EvalSymlinks(env); err == nil && filepath.Base(target) == "busybox" {
			// The test guests' env: it runs true as an applet, no exec.
			t.Skip("env is busybox's, which runs true without exec: no search to fold")
		}
		path := []string{dir + "/a", dir + "/b", filepath.Dir(truePath)}
		reported := 0
		const n = 40
		for range n {
			for _, ev := range search(t, path, "true", true) {
				reported++
				t.Logf("reported: %s count %d", ev.Path, ev.Count)
			}
		}
		if reported != 0 {
			t.Errorf("%d of %d searches that found true were reported", reported, n)
		}
	})
}
