// SPDX-License-Identifier: Apache-2.0

package probe_test

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/execfaild/execfaild/probe"
	"github.com/execfaild/execfaild/probe/event"
	"github.com/execfaild/execfaild/probe/internal/provoke"
)

// TestKernelCallerGone: a caller that exits right after its failed exec
// must still be described in full. The probe's records are read only after
// every caller was reaped, so nothing of them is left in /proc: what the
// event says about the caller's executable, working directory, binary and
// interpreter comes from the kernel, or is resolved without the caller.
func TestKernelCallerGone(t *testing.T) {
	requireRoot(t)
	cfg := probe.DefaultConfig()
	if m := testMode(); m != "" {
		cfg.Mode = m
	}
	p := startProbe(t, cfg)
	mode := p.Mode()
	openHook := false
	for _, h := range p.Report().Hooks {
		openHook = openHook || h.Name == "open" && h.Attached
	}
	lab, err := provoke.NewLab(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })

	cases := lab.Gone()
	outcomes := make([]*provoke.Outcome, len(cases))
	for i, c := range cases {
		o, err := c.Run(lab)
		if err != nil {
			t.Fatal(err)
		}
		// Reaped: not even a zombie is left.
		if err := o.Release(); err != nil {
			t.Fatalf("%s: helper: %v", c.Name, err)
		}
		if o.Got != o.Errno {
			t.Fatalf("%s: kernel returned %s, case is built for %s", c.Name, unix.ErrnoName(o.Got), unix.ErrnoName(o.Errno))
		}
		outcomes[i] = o
	}
	col := collect(p)
	t.Cleanup(func() { closeAndCheck(t, p, col) })
	for i, c := range cases {
		o := outcomes[i]
		t.Run(c.Name, func(t *testing.T) {
			ev, err := col.wait(eventTimeout, func(e *event.Event) bool {
				return e.Process.TID == o.Caller.TID && e.Path == o.Path
			})
			if err != nil || ev == nil {
				t.Fatalf("no event for tid %d path %q (err %v)", o.Caller.TID, o.Path, err)
			}
			checkEvent(t, mode, openHook, cfg, lab, o, ev)
		})
	}
}
