// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"time"
)

// lossLedger reads an observer's loss counter around each workload of a
// round, so each workload is charged what was lost while it ran and
// nothing else. Observers without such a counter keep their round total.
type lossLedger struct {
	lc           lossCounter // nil: not readable per workload
	before, lost []uint64
}

func newLossLedger(o observer, n int) *lossLedger {
	lc, _ := o.(lossCounter)
	return &lossLedger{lc: lc, before: make([]uint64, n), lost: make([]uint64, n)}
}

func (l *lossLedger) begin(i int) error {
	if l.lc == nil {
		return nil
	}
	v, err := l.lc.lostSoFar()
	l.before[i] = v
	return err
}

func (l *lossLedger) end(i int) error {
	if l.lc == nil {
		return nil
	}
	v, err := l.lc.lostSoFar()
	for lag := l.lc.lossLag(); err == nil && lag > 0; {
		time.Sleep(lag)
		var again uint64
		if again, err = l.lc.lostSoFar(); again == v {
			break
		}
		v = again
	}
	if err != nil {
		return err
	}
	if v < l.before[i] {
		return fmt.Errorf("loss counter went back from %d to %d", l.before[i], v)
	}
	l.lost[i] = v - l.before[i]
	return nil
}

// attribute replaces the round's loss in c with workload i's own.
func (l *lossLedger) attribute(i int, c counts) counts {
	if l.lc == nil || !c.known {
		return c
	}
	c.lost, c.perWorkload = l.lost[i], true
	return c
}

// tally compares what an observer counted and said it lost with what was
// provoked.
type tally struct{ counted, lost, provoked uint64 }

func accounting(counted, lost, provoked uint64) tally { return tally{counted, lost, provoked} }

// short is "=" when counted and lost make up provoked exactly, else the
// difference: -N missing, +N too many.
func (t tally) short() string {
	sum := t.counted + t.lost
	switch {
	case sum == t.provoked:
		return "="
	case sum < t.provoked:
		return fmt.Sprintf("-%d", t.provoked-sum)
	default:
		return fmt.Sprintf("+%d", sum-t.provoked)
	}
}

// String says whether the counts add up, and how far off they are.
func (t tally) String() string {
	sum := t.counted + t.lost
	switch {
	case sum == t.provoked:
		return fmt.Sprintf("%d + %d = %d, all accounted", t.counted, t.lost, t.provoked)
	case sum < t.provoked:
		return fmt.Sprintf("%d + %d of %d: %d neither counted nor said lost", t.counted, t.lost, t.provoked, t.provoked-sum)
	default:
		return fmt.Sprintf("%d + %d of %d: %d more than provoked (other programs' failures lost meanwhile)", t.counted, t.lost, t.provoked, sum-t.provoked)
	}
}
