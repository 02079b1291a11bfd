// SPDX-License-Identifier: Apache-2.0

package journal

import (
	"strings"
	"testing"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/probe/event"
)

// A part the journal has no wording of its own for still reaches the
// sentence, in order and with its process-controlled words escaped, so a
// new part needs no change here.
func TestSentenceNewDetail(t *testing.T) {
	ev := event.Event{Path: "/bin/x", Error: "EACCES", ErrorText: "permission denied", ReturnValue: -13,
		Process: event.Process{PID: 1, Comm: "sh"}}
	d := notify.Describe(&ev)
	d.Details = append(d.Details, notify.Detail{Kind: 1000, Words: []notify.Word{{Text: "cause "}, {Text: "/a b\n", Value: true}}})
	if got, want := sentence(d), `failed: EACCES (permission denied); cause "/a b\n"`; !strings.HasSuffix(got, want) {
		t.Errorf("sentence = %q, want it to end %q", got, want)
	}
}
