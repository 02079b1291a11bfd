// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"strings"
	"testing"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/probe/event"
)

// A part Slack has no wording of its own for still gets a line, its
// process-controlled words as escaped code, so a new part needs no change
// here.
func TestWhatLineNewDetail(t *testing.T) {
	ev := event.Event{Path: "/bin/x", Error: "EACCES", ReturnValue: -13}
	d := notify.Describe(&ev)
	d.Details = append(d.Details, notify.Detail{Kind: 1000, Words: []notify.Word{{Text: "cause "}, {Text: "<a>\n", Value: true}}})
	if got, want := whatLine(&ev, &d, "/bin/x", "EACCES"), "\ncause `&lt;a&gt;\\n`"; !strings.HasSuffix(got, want) {
		t.Errorf("whatLine = %q, want it to end %q", got, want)
	}
}
