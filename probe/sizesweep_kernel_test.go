// SPDX-License-Identifier: Apache-2.0

package probe_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/execfaild/execfaild/probe"
	"github.com/execfaild/execfaild/probe/event"
	"github.com/execfaild/execfaild/probe/internal/provoke"
)

// sizeSweepCases provokes failures whose argv and environment grow from
// nothing to past the record's capacity, in steps that put the end of the
// record on each side of every power-of-two boundary, and checks what two
// probes attached at once report: TestKernelProbe's, with the default
// capture bounds (strings cut at 256 bytes), and one with the widest (64
// entries of up to 4094 bytes, environment unredacted), which runs out of
// record before it runs out of entries. Every failure must arrive and
// decode, keep an exact prefix of what was passed, and say truncated
// exactly when it cut.
func sizeSweepCases(t *testing.T, p *probe.Probe, col *collector, small probe.Config) {
	wide := small
	wide.MaxArgs, wide.MaxEnv, wide.MaxArgLen, wide.Environment = 64, 64, 4094, "full"
	pw := startProbe(t, wide)
	colw := collect(pw)
	t.Cleanup(func() { closeAndCheck(t, pw, colw) })
	cols := []*collector{col, colw}
	cfgs := []probe.Config{small, wide}

	lab, err := provoke.NewLab(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })

	// The first case is the one that lost records between 8 and 16 KiB.
	type size struct {
		name       string
		argN, argL int // argv: argN strings of argL bytes
		envN, envL int // environment added to provoke.Env
	}
	sizes := []size{{"issue_40x300_env3000", 40, 300, 1, 3000}, {"empty", 0, 0, 0, 0}}
	for _, total := range []int{1024, 4095, 4096, 4097, 8191, 8192, 8193, 12288, 16383, 16384, 16385,
		20480, 24575, 24576, 24577, 32768, 65536} {
		// Mostly argv, some environment, with strings long enough to be
		// cut by the default bound and short enough to fit the wide one.
		const l = 1000
		sizes = append(sizes,
			size{fmt.Sprintf("argv_%d", total), max(1, total/(l+1)), l, 0, 0},
			size{fmt.Sprintf("env_%d", total), 1, 7, max(1, total/(l+1)), l})
	}
	for _, sz := range sizes {
		t.Run(sz.name, func(t *testing.T) {
			o, err := lab.Execve(sz.name, lab.Path("does-not-exist"), unix.ENOENT, provoke.ReachNone, "", func(argv, env []string) ([]string, []string) {
				argv = argv[:1]
				argv = append(argv, sweepStrings("a", sz.argN, sz.argL)...)
				env = append(env, sweepStrings("EXECFAILD_SWEEP_", sz.envN, sz.envL)...)
				return argv, env
			})
			if err != nil {
				t.Fatal(err)
			}
			defer o.Release()
			if o.Got != o.Errno {
				t.Fatalf("kernel returned %s, case is built for %s", unix.ErrnoName(o.Got), unix.ErrnoName(o.Errno))
			}
			for i, col := range cols {
				ev, err := col.wait(eventTimeout, func(e *event.Event) bool {
					return e.Process.TID == o.Caller.TID && e.Path == o.Path
				})
				if err != nil {
					t.Fatal(err)
				}
				if ev == nil {
					t.Fatalf("probe %d (max_args %d, max_arg_len %d): no event for tid %d", i, cfgs[i].MaxArgs, cfgs[i].MaxArgLen, o.Caller.TID)
				}
				checkSweep(t, cfgs[i], o, ev)
			}
		})
	}
}

// sweepStrings makes n strings of exactly l bytes each, distinct so that a
// misplaced one cannot pass for another.
func sweepStrings(prefix string, n, l int) []string {
	out := make([]string, n)
	for i := range out {
		s := fmt.Sprintf("%s%d=", prefix, i)
		out[i] = s + strings.Repeat(string(rune('a'+i%26)), max(0, l-len(s)))
	}
	return out
}

// checkSweep: each list is an exact prefix of what the bounds allow, and is
// marked truncated exactly when it is shorter than the input or an entry
// was cut. A list that stopped early must have run out of record: what was
// kept of both lists fills at least the record's data minus one maximal
// string and a path.
func checkSweep(t *testing.T, cfg probe.Config, o *provoke.Outcome, ev *event.Event) {
	t.Helper()
	lists := []struct {
		name     string
		got      []string
		gotTrunc bool
		real     []string
		max      int
	}{
		{"arguments", ev.Arguments, ev.ArgumentsTruncated, o.Argv, cfg.MaxArgs},
		{"environment", ev.Environment, ev.EnvironmentTruncated, o.Env, cfg.MaxEnv},
	}
	kept := 0
	short := false
	for _, l := range lists {
		want, wantTrunc := expectStrings(l.real, l.max, cfg.MaxArgLen)
		if cfg.Environment == "redact" && l.name == "environment" {
			// Redaction happens in userspace, after the kernel's cut.
			for i, kv := range want {
				name, _, _ := strings.Cut(kv, "=")
				if !slices.Contains(cfg.KeepEnv, name) {
					want[i] = name + "=<redacted>"
				}
			}
		}
		if len(l.got) > len(want) || !slices.Equal(l.got, want[:len(l.got)]) {
			t.Errorf("%s: %d entries are not a prefix of the %d expected; first difference: %s",
				l.name, len(l.got), len(want), firstDiff(l.got, want[:min(len(l.got), len(want))]))
			continue
		}
		if len(l.got) < len(want) {
			short = true
			wantTrunc = true
		}
		eq(t, l.name+"_truncated", l.gotTrunc, wantTrunc)
		for _, s := range l.got {
			kept += len(s) + 1
		}
	}
	if floor := probe.RecordDataSize - 2*4096; short && kept < floor {
		t.Errorf("a list stopped early with only %d bytes kept; the record holds %d (at least %d expected before it is full)",
			kept, probe.RecordDataSize, floor)
	}
}
