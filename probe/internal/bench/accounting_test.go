// SPDX-License-Identifier: Apache-2.0

package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

// The bench re-executes its own binary as the worker; under go test that
// binary is the test binary.
func TestMain(m *testing.M) {
	if w := os.Getenv(workerEnv); w != "" {
		os.Exit(worker(w))
	}
	os.Exit(m.Run())
}

// scriptedObserver stands for an observer whose loss counter reads as
// scripted, one value per read, and which - like a log read after the
// round - says what it counted of each workload and its loss over the
// whole round.
type scriptedObserver struct {
	reads     []uint64
	seen      map[string]uint64
	roundLost uint64
}

func (*scriptedObserver) name() string { return "scripted" }
func (*scriptedObserver) start() error { return nil }
func (*scriptedObserver) pid() int     { return 0 }
func (*scriptedObserver) stop() error  { return nil }

func (s *scriptedObserver) counted(w workload, _ int) (counts, error) {
	return counts{known: true, seen: s.seen[w.name], lost: s.roundLost}, nil
}

func (*scriptedObserver) lossLag() time.Duration { return 0 }

func (s *scriptedObserver) lostSoFar() (uint64, error) {
	v := s.reads[0]
	s.reads = s.reads[1:]
	return v, nil
}

// A round's losses are charged to the workload they happened in: counted
// plus lost then makes up each workload's provoked failures exactly, where
// charging the round's total to every workload made them exceed it.
func TestLostAttributedPerWorkload(t *testing.T) {
	const n = 3
	loads, err := setupWorkloads(t.TempDir(), n, 2, 1000)
	if err != nil {
		t.Fatal(err)
	}
	// Counter readings before and after each workload: the unique paths
	// lose 2 of 3, the PATH search 1; 5 more are lost between workloads,
	// other programs' doing, charged to none; the paced unique paths
	// lose none.
	o := &scriptedObserver{
		reads:     []uint64{0, 0, 0, 2, 2, 2, 5, 5, 5, 6, 10, 10, 10, 10},
		seen:      map[string]uint64{},
		roundLost: 10,
	}
	wantLost := map[string]uint64{"unique ENOENT": 2, "PATH search": 1}
	for _, w := range loads {
		if w.failing() {
			o.seen[w.name] = n - wantLost[w.name]
		}
	}
	res := newResults([]observer{o}, loads)
	if err := runRound(o, loads, res); err != nil {
		t.Fatal(err)
	}
	if len(o.reads) != 0 {
		t.Errorf("%d counter readings left unread", len(o.reads))
	}
	if !res.perWorkload[o.name()] {
		t.Error("losses not marked as per workload")
	}
	for i, w := range loads {
		if got := res.lost[o.name()][i]; got != wantLost[w.name] {
			t.Errorf("%s: lost %d, want %d", w.name, got, wantLost[w.name])
		}
		if !w.failing() {
			continue
		}
		tl := accounting(res.seen[o.name()][i], res.lost[o.name()][i], uint64(n))
		if tl.short() != "=" || !strings.HasSuffix(tl.String(), "all accounted") {
			t.Errorf("%s: %s (%s)", w.name, tl, tl.short())
		}
	}
}

// An observer whose losses can only be read after the round keeps the
// round's total, marked as such.
func TestLostOfRoundKeptWithoutCounter(t *testing.T) {
	c := counts{known: true, seen: 4, lost: 7}
	l := newLossLedger(&bare{}, 1)
	if err := l.begin(0); err != nil {
		t.Fatal(err)
	}
	if err := l.end(0); err != nil {
		t.Fatal(err)
	}
	if got := l.attribute(0, c); got != c {
		t.Errorf("attributed %+v, want %+v unchanged", got, c)
	}
}

func TestTallySaysHowFarOff(t *testing.T) {
	for _, tc := range []struct {
		counted, lost, provoked uint64
		short, long             string
	}{
		{71463, 78537, 150000, "=", "71463 + 78537 = 150000, all accounted"},
		{71463, 78000, 150000, "-537", "71463 + 78000 of 150000: 537 neither counted nor said lost"},
		{71463, 100088, 150000, "+21551", "71463 + 100088 of 150000: 21551 more than provoked (other programs' failures lost meanwhile)"},
	} {
		tl := accounting(tc.counted, tc.lost, tc.provoked)
		if tl.short() != tc.short || tl.String() != tc.long {
			t.Errorf("accounting(%d, %d, %d) = %q, %q; want %q, %q", tc.counted, tc.lost, tc.provoked, tl.short(), tl.String(), tc.short, tc.long)
		}
	}
}
