// SPDX-License-Identifier: Apache-2.0

package main

import (
	"testing"
	"time"
)

// Wake-ups in slices where other programs' failures came are work, not
// idling: the quiet rate leaves them out, the overall rate does not.
func TestIdleSampleQuietSlices(t *testing.T) {
	var round1, round2 idleSample
	round1.slice(time.Second, 0, 0, 0)
	round1.slice(time.Second, 40, 3, 0)
	round2.slice(time.Second, 2, 0, 0)
	round2.slice(time.Second, 0, 0, 0)
	round2.slice(time.Second, 12, 0, 1) // a PATH search's success: work too
	var s idleSample
	s.add(round1)
	s.add(round2)
	if s.slices != 5 || s.quietSlices != 3 || s.quietWakeups != 2 || s.wakeups != 54 || s.failures != 3 {
		t.Fatalf("summed %+v", s)
	}
	want := "0.7/s in the 3 of 5 one-second slices without a record; 10.8/s over all, 0.6 failures/s of other programs meanwhile"
	if got := s.String(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	var busy idleSample
	busy.slice(time.Second, 9, 1, 0)
	if got, want := busy.String(), "no quiet slice; 9.0/s over all, 1.0 failures/s of other programs meanwhile"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
