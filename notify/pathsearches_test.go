// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"slices"
	"testing"
	"time"

	"github.com/execfaild/execfaild/probe/event"
)

// Without a pipeline: a search that found its program shows nothing, one
// that found nothing shows once when its hold ends (by the timer, no
// further record needed), diagnosed; other failures go on at once.
func TestPathSearchesOutsideAPipeline(t *testing.T) {
	out := make(chan *event.Event, 10)
	s := NewPathSearches(time.Millisecond, nil, func(ev *event.Event) { out <- ev })
	s.Failure(failure(t0, 1, "/usr/local/bin/tool", -2))
	s.Failure(failure(t0, 1, "/usr/bin/tool", -2))
	s.Success(1)
	s.Failure(failure(t0, 2, "/srv/script", -13))
	if ev := <-out; ev.Error != "EACCES" {
		t.Fatalf("first out: %s %s, want the EACCES at once", ev.Error, ev.Path)
	}
	s.Failure(failure(t0, 3, "/usr/local/bin/gone", -2))
	s.Failure(failure(t0, 3, "/usr/bin/gone", -2))
	var ev *event.Event
	select {
	case ev = <-out:
	case <-time.After(10 * time.Second):
		t.Fatal("the search that found nothing never came out")
	}
	if ev.Cause != event.CauseNotFoundInPath || ev.Count != 2 || !slices.Equal(ev.Tried, []string{"/usr/local/bin", "/usr/bin"}) {
		t.Errorf("search: cause %q count %d tried %v", ev.Cause, ev.Count, ev.Tried)
	}
	s.Flush()
	if len(out) != 0 {
		t.Errorf("%d more out; the search that found its program must show nothing", len(out))
	}
}
