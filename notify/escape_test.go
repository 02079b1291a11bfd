// SPDX-License-Identifier: Apache-2.0

package notify

import "testing"

func TestChatVisible(t *testing.T) {
	for in, want := range map[string]string{
		"/bin/bash\r":       `/bin/bash\r`,
		"a\tb\nc":           `a\tb\nc`,
		"\x1b[1m":           `\x1b[1m`,
		"x\u202ey":          `x\u202ey`,
		"bad\xff":           `bad\xff`,
		"C:\\dir":           `C:\dir`,
		"ünïcode ok 😀":      "ünïcode ok 😀",
		"zero\u200bwidth":   `zero\u200bwidth`,
		"del\x7f":           `del\x7f`,
		"nul\x00":           `nul\x00`,
		"plain & <simple>":  "plain & <simple>",
		"line\u2028sep":     `line\u2028sep`,
		"tag\U000E0041char": `tag\U000e0041char`,
	} {
		if got := Chat.Visible(in); got != want {
			t.Errorf("Chat.Visible(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestChatShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"./deploy.sh":      "./deploy.sh",
		"--target=prod":    "--target=prod",
		"two words":        "'two words'",
		"it's":             `'it'\''s'`,
		"":                 "''",
		"$HOME":            "'$HOME'",
		"a;rm -rf /":       "'a;rm -rf /'",
		"user@host:/path,": "user@host:/path,",
	} {
		if got := chatShellQuote(in); got != want {
			t.Errorf("chatShellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}
