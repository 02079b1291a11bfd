// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"math/rand"
	"regexp"
	"strings"
	"testing"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/notify/internal/sinktest"
)

var partialEntity = regexp.MustCompile(`&(?:a|am|amp|l|lt|g|gt)?$|&(?:a|am|l|g)?[^a-z;]`)

func TestFitKeepsMarkupWhole(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	// Atoms as Render produces them; the cut may fall anywhere inside.
	alphabet := []string{"a", "&amp;", "&lt;", "&gt;", "`co&lt;de`", "```blo\nck &amp;```", "é", "😀", "\n", " ", "<!date^1^{time}|10:00 UTC>"}
	for i := 0; i < 5000; i++ {
		var b strings.Builder
		n := rng.Intn(60)
		for j := 0; j < n; j++ {
			b.WriteString(alphabet[rng.Intn(len(alphabet))])
		}
		in := b.String()
		limit := 8 + rng.Intn(40)
		out := fit(in, limit)
		if width(out) > limit {
			t.Fatalf("fit(%q, %d) = %q: %d wide", in, limit, out, width(out))
		}
		if width(in) <= limit {
			if out != in {
				t.Fatalf("fit changed text within the limit: %q -> %q", in, out)
			}
			continue
		}
		if !strings.Contains(out, "…") {
			t.Fatalf("fit(%q, %d) = %q: cut not marked", in, limit, out)
		}
		if partialEntity.MatchString(strings.ReplaceAll(out, "…", "")) {
			t.Fatalf("fit(%q, %d) = %q: split an entity", in, limit, out)
		}
		if strings.Count(out, "<") != strings.Count(out, ">") {
			t.Fatalf("fit(%q, %d) = %q: split a date token", in, limit, out)
		}
		if strings.Count(out, "```")%2 != 0 || strings.Count(strings.ReplaceAll(out, "```", ""), "`")%2 != 0 {
			t.Fatalf("fit(%q, %d) = %q: code left open", in, limit, out)
		}
	}
}

// TestTestSinksHeader: the header and the push-notification text of
// execfaild test-sinks begin with the test mark.
func TestTestSinksHeader(t *testing.T) {
	ev := sinktest.Synthetic()
	ev.Test = true
	m := Render(ev)
	if !strings.HasPrefix(m.Blocks[0].Text.Text, notify.TestMark) || !strings.HasPrefix(m.Text, notify.TestMark) {
		t.Errorf("header %q, text %q: no test mark", m.Blocks[0].Text.Text, m.Text)
	}
	if m := Render(sinktest.Synthetic()); strings.Contains(m.Text, "TEST") {
		t.Errorf("a real failure marked as a test: %q", m.Text)
	}
}
