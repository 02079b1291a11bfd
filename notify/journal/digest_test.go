// SPDX-License-Identifier: Apache-2.0

package journal

import (
	"strings"
	"testing"
	"time"

	"github.com/execfaild/execfaild/probe/event"
)

// TestCombinedDigestSaysSeveral: a digest whose failures shared neither
// program, errno nor process says so, instead of an empty path, errno 0
// or pid 0; and one repeat is "1 more time".
func TestCombinedDigestSaysSeveral(t *testing.T) {
	first, last := time.Date(2026, 11, 27, 10, 2, 3, 0, time.UTC), time.Date(2026, 11, 27, 10, 12, 3, 0, time.UTC)
	ev := event.Event{
		Time: last, Host: "web-1", Digest: true, Count: 2, FirstSeen: &first, LastSeen: &last,
		Process: event.Process{UID: 1000, Comm: "sh"}, PIDs: []uint32{4, 5},
	}
	msg := Message(&ev)
	for _, want := range []string{"exec of several programs", "by sh (uid 1000)", "failed: several errors", "; 2 more times"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, `""`) || strings.Contains(msg, "[0]") {
		t.Errorf("message claims an empty path or pid 0: %q", msg)
	}
	for _, f := range Fields(&ev) {
		switch f.Name {
		case "path", "return_value", "pid", "tid", "ppid":
			t.Errorf("field %s=%q in a digest that did not share it", f.Name, f.Value)
		}
	}
	ev.Count = 1
	ev.Path, ev.ReturnValue, ev.Error = "/opt/x", -2, "ENOENT"
	if msg := Message(&ev); !strings.Contains(msg, "; 1 more time ") {
		t.Errorf("message %q does not say \"1 more time\"", msg)
	}
}
