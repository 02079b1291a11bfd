// SPDX-License-Identifier: Apache-2.0

package alertmanager

import (
	"testing"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/probe/event"
)

// A part the description has no wording of its own for still reaches it,
// before the closing full stop, so a new part needs no change here.
func TestDescriptionNewDetail(t *testing.T) {
	ev := event.Event{Path: "/bin/x", Error: "EACCES", ErrorText: "permission denied", ReturnValue: -13,
		Process: event.Process{PID: 1, Comm: "sh"}}
	d := notify.Describe(&ev)
	d.Details = append(d.Details, notify.Detail{Kind: 1000, Words: []notify.Word{{Text: "cause "}, {Text: "/a\x1b", Value: true}}})
	want := `sh (pid 1, uid 0) could not execute /bin/x: permission denied; cause /a\x1b.`
	if got := description(&d, "/bin/x"); got != want {
		t.Errorf("description = %q, want %q", got, want)
	}
}
