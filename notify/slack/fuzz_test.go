// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/execfaild/execfaild/probe/event"
)

// ownMarkup is the only '<…>' markup the renderer writes itself: a date
// token whose fallback text is its own.
var ownMarkup = regexp.MustCompile(`<!date\^[0-9]+\^\{[a-z_]+\}(?: \{[a-z_]+\})*\|[0-9: A-Z+-]+>`)

// entity is what a '&' may start in escaped text.
var entity = regexp.MustCompile(`^&(?:amp|lt|gt);`)

// noMarkup fails when text holds a '<' or '>' of its own (a mention,
// link, channel or date token of the sender's choosing) or an '&' that
// starts no entity.
func noMarkup(t *testing.T, where, text string) {
	t.Helper()
	if !utf8.ValidString(text) {
		t.Fatalf("%s is not UTF-8: %q", where, text)
	}
	rest := ownMarkup.ReplaceAllString(text, "")
	if i := strings.IndexAny(rest, "<>"); i >= 0 {
		t.Fatalf("%s holds markup at %q: %q", where, rest[i:min(len(rest), i+20)], text)
	}
	for i := strings.IndexByte(rest, '&'); i >= 0; i = strings.IndexByte(rest, '&') {
		if !entity.MatchString(rest[i:]) {
			t.Fatalf("%s holds a bare & at %q", where, rest[i:min(len(rest), i+10)])
		}
		rest = rest[i+1:]
	}
}

// FuzzEsc: escaped text has no markup and unescapes to the original.
func FuzzEsc(f *testing.F) {
	for _, s := range []string{"", "<@U123>", "<!here>", "<!channel|x>", "<#C1>", "<https://evil|click>", "&lt;", "a & b", "&amp;amp;", "<!date^1^{date}|x>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return // esc ranges over runes; invalid UTF-8 is Visible's to spell out
		}
		e := esc(s)
		noMarkup(t, "esc", e)
		if back := strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(e); back != s {
			t.Fatalf("esc(%q) = %q unescapes to %q", s, e, back)
		}
	})
}

// FuzzRender: whatever the process-controlled strings hold, no text of the
// message carries markup it did not write, and every mrkdwn object is
// verbatim (no auto-linked URLs, @here or #channel).
func FuzzRender(f *testing.F) {
	f.Add("web-1", "/srv/<!here>", "run\x00<@U123>\x00&\x00`x`", "<#C1>", "/bin/sh\r", "see <https://evil|here>", "env=<!channel>")
	f.Add("", "", "", "", "", "", "")
	f.Add("h&", "\xff\u202e*bold*_it_~s~", strings.Repeat("<", 4000), "```", "&amp;", strings.Repeat("é&", 3000), "a=\x00=b")
	f.Fuzz(func(t *testing.T, host, path, argv, comm, interp, cause, labels string) {
		ev := event.Synthetic(time.Date(2026, 11, 27, 10, 2, 3, 0, time.UTC), host)
		ev.Path, ev.InterpreterPath, ev.CauseText = path, interp, cause
		ev.Arguments = strings.Split(argv, "\x00")
		ev.Process.Comm, ev.Process.Cwd = comm, path
		ev.Labels = map[string]string{}
		for _, kv := range strings.Split(labels, "\x00") {
			k, v, _ := strings.Cut(kv, "=")
			ev.Labels[k] = v
		}
		m := Render(&ev)
		noMarkup(t, "fallback text", m.Text)
		texts := 0
		check := func(where string, tx *Text) {
			texts++
			noMarkup(t, where, tx.Text)
			if tx.Type == "mrkdwn" && !tx.Verbatim {
				t.Fatalf("%s: mrkdwn without verbatim", where)
			}
		}
		for _, b := range m.Blocks {
			if b.Text != nil {
				check(b.Type+" text", b.Text)
			}
			for j := range b.Fields {
				check(b.Type+" field", &b.Fields[j])
			}
			for j := range b.Elements {
				check(b.Type+" element", &b.Elements[j])
			}
		}
		if texts == 0 || len(m.Blocks) > maxBlocks {
			t.Fatalf("%d blocks, %d texts", len(m.Blocks), texts)
		}
	})
}
