// SPDX-License-Identifier: Apache-2.0

package notify

// Fuzz targets for the escaping policies and the argument redactor: their
// input is whatever a failing process put in its path and argv.

import (
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

var hostileStrings = []string{
	"", "plain", `a\b`, "a\\nb", "line\nbreak", "cr\r", "tab\t", "\x1b[31mred", "\x00nul", "\x7f",
	"\xff\xfe", "\xe2\x80", "ü", "\u202eevil\u202c", "zero\u200bwidth", "\U0001F600", "it's", `$'x'`,
	"\\x41", `\u{41}`, "--x=<prod> & all", "@here <!channel>", "\ufeff", "\U000E0001",
}

// logUnescape reverses LogEscaping.Visible, written from its contract.
func logUnescape(t *testing.T, s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			t.Fatalf("lone backslash at the end of %q", s)
		}
		i++
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'x':
			v, err := strconv.ParseUint(s[i+1:min(i+3, len(s))], 16, 8)
			if err != nil || i+3 > len(s) {
				t.Fatalf("bad \\x escape in %q", s)
			}
			b.WriteByte(byte(v))
			i += 2
		case 'u':
			end := strings.IndexByte(s[i:], '}')
			if i+1 >= len(s) || s[i+1] != '{' || end < 0 {
				t.Fatalf("bad \\u escape in %q", s)
			}
			v, err := strconv.ParseUint(s[i+2:i+end], 16, 32)
			if err != nil {
				t.Fatalf("bad \\u escape in %q", s)
			}
			b.WriteRune(rune(v))
			i += end
		default:
			t.Fatalf("unknown escape \\%c in %q", s[i], s)
		}
	}
	return b.String()
}

// visibleOnly fails unless s is valid UTF-8 without control or
// non-printing characters.
func visibleOnly(t *testing.T, what, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Fatalf("%s %q is not UTF-8", what, s)
	}
	for _, r := range s {
		if r != ' ' && !unicode.IsPrint(r) {
			t.Fatalf("%s %q holds %U", what, s, r)
		}
	}
}

// FuzzLogVisible: the log rendering is printable and reads back as the
// original, byte for byte.
func FuzzLogVisible(f *testing.F) {
	for _, s := range hostileStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v := Log.Visible(s)
		for _, r := range v {
			if r < 0x20 || r == 0x7f || r >= 0x80 && !strconv.IsPrint(r) {
				t.Fatalf("Visible(%q) = %q holds %U", s, v, r)
			}
		}
		if !utf8.ValidString(v) {
			t.Fatalf("Visible(%q) = %q is not UTF-8", s, v)
		}
		if got := logUnescape(t, v); got != s {
			t.Fatalf("Visible(%q) = %q reads back as %q", s, v, got)
		}
		if Log.Plain(s) && v != s {
			t.Fatalf("Plain(%q) = %v, Visible = %q", s, Log.Plain(s), v)
		}
	})
}

// shellWords splits a line into words the way bash does for the quoting
// ShellJoin uses: bare words, '…', $'…' with C escapes, and \x outside
// quotes. It fails on anything else (an expansion, an unclosed quote).
func shellWords(t *testing.T, line string) []string {
	var words []string
	var w strings.Builder
	in := false // a word has started
	for i := 0; i < len(line); {
		c := line[i]
		switch {
		case c == ' ':
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
			i++
		case c == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				t.Fatalf("unclosed ' in %q", line)
			}
			w.WriteString(line[i+1 : i+1+end])
			i += end + 2
			in = true
		case c == '$' && i+1 < len(line) && line[i+1] == '\'':
			i += 2
			for {
				if i >= len(line) {
					t.Fatalf("unclosed $' in %q", line)
				}
				if line[i] == '\'' {
					i++
					break
				}
				if line[i] != '\\' {
					w.WriteByte(line[i])
					i++
					continue
				}
				if i+1 >= len(line) {
					t.Fatalf("backslash at the end of %q", line)
				}
				e := line[i+1]
				i += 2
				switch e {
				case '\\', '\'':
					w.WriteByte(e)
				case 'n':
					w.WriteByte('\n')
				case 'r':
					w.WriteByte('\r')
				case 't':
					w.WriteByte('\t')
				case 'x', 'U':
					n := map[byte]int{'x': 2, 'U': 8}[e]
					if i+n > len(line) {
						t.Fatalf("short \\%c in %q", e, line)
					}
					v, err := strconv.ParseUint(line[i:i+n], 16, 32)
					if err != nil {
						t.Fatalf("bad \\%c in %q", e, line)
					}
					if e == 'x' {
						w.WriteByte(byte(v))
					} else {
						w.WriteRune(rune(v))
					}
					i += n
				default:
					t.Fatalf("escape \\%c in %q", e, line)
				}
			}
			in = true
		case c == '\\' && i+1 < len(line):
			w.WriteByte(line[i+1])
			i += 2
			in = true
		case strings.IndexByte("\"$`;&|<>()*?[]#~{}!\t\n", c) >= 0:
			t.Fatalf("unquoted %q in %q", c, line)
		default:
			w.WriteByte(c)
			i++
			in = true
		}
	}
	if in {
		words = append(words, w.String())
	}
	return words
}

// splitWords turns a fuzzed string into argv: NUL separates, as in the
// kernel's argv, so no word holds one.
func splitWords(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\x00")
}

// FuzzLogShellJoin: the joined argv is printable and a shell reads it back
// as the same words: no argument gains a word or an expansion.
func FuzzLogShellJoin(f *testing.F) {
	f.Add(strings.Join(hostileStrings[1:], "\x00"))
	f.Add("a\x00\x00b")
	f.Add("-v\x00-v")
	f.Add("'\x00''\x00\\'")
	f.Fuzz(func(t *testing.T, argv string) {
		words := splitWords(argv)
		line := Log.ShellJoin(words)
		for _, r := range line {
			if r < 0x20 || r == 0x7f || r >= 0x80 && !strconv.IsPrint(r) {
				t.Fatalf("ShellJoin(%q) = %q holds %U", words, line, r)
			}
		}
		got := shellWords(t, line)
		if len(got) != len(words) || strings.Join(got, "\x00") != strings.Join(words, "\x00") {
			t.Fatalf("ShellJoin(%q) = %q reads back as %q", words, line, got)
		}
	})
}

// FuzzChatVisible: the chat rendering shows nothing invisible, and
// leaves printable text alone.
func FuzzChatVisible(f *testing.F) {
	for _, s := range hostileStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v := Chat.Visible(s)
		visibleOnly(t, "Chat.Visible", v)
		printable := utf8.ValidString(s)
		for _, r := range s {
			if r != ' ' && !unicode.IsPrint(r) {
				printable = false
			}
		}
		if printable && v != s {
			t.Fatalf("printable %q became %q", s, v)
		}
	})
}

// FuzzChatShellJoin: each argument stays one word, shown as Chat.Visible
// shows it.
func FuzzChatShellJoin(f *testing.F) {
	f.Add(strings.Join(hostileStrings[1:], "\x00"))
	f.Add("a\x00\x00b")
	f.Add("it's\x00'\x00 ")
	f.Fuzz(func(t *testing.T, argv string) {
		words := splitWords(argv)
		line := Chat.ShellJoin(words)
		visibleOnly(t, "Chat.ShellJoin", line)
		got := shellWords(t, line)
		if len(got) != len(words) {
			t.Fatalf("ShellJoin(%q) = %q reads back as %d words %q", words, line, len(got), got)
		}
		for i := range words {
			if got[i] != Chat.Visible(words[i]) {
				t.Fatalf("word %d: %q reads back as %q, want %q", i, words[i], got[i], Chat.Visible(words[i]))
			}
		}
	})
}

// secretForm is one way a command line carries a secret: the arguments
// with the secret in place of "%s", for the programs it applies to.
type secretForm struct {
	prog string // "" for any program
	args []string
	long bool // needs a secret of at least 20 bytes
}

var secretForms = []secretForm{
	{args: []string{"--password=%s"}},
	{args: []string{"--password", "%s"}},
	{args: []string{"--api-key=%s"}},
	{args: []string{"--token", "%s"}},
	{args: []string{"--client-secret=%s"}},
	{args: []string{"--db-pass=%s"}},
	{args: []string{"https://user:%s@example.com/x"}},
	{args: []string{"git+ssh://u:%s@h"}},
	{args: []string{"https://%s@github.com/o/r"}, long: true},
	{args: []string{"https://h/x?token=%s&b=1"}},
	{args: []string{"https://h/x?a=1;access_token=%s#f"}},
	{args: []string{"Authorization: Bearer %s"}},
	{args: []string{"--header=X-Api-Key: %s"}},
	{args: []string{"Cookie: session=%s"}},
	{args: []string{"PGPASSWORD=%s"}},
	{args: []string{"db.password=%s"}},
	{args: []string{"--aws-secret-access-key=%s"}},
	{prog: "curl", args: []string{"-u", "me:%s"}},
	{prog: "curl", args: []string{"-ume:%s"}},
	{prog: "curl", args: []string{"--user=me:%s"}},
	{prog: "curl", args: []string{"--proxy-user", "me:%s"}},
	{prog: "mysql", args: []string{"-p%s"}},
	{prog: "sshpass", args: []string{"-p", "%s"}},
	{prog: "sshpass", args: []string{"-p%s"}},
}

// secretAlphabet spells secrets: long enough ones cannot occur in the
// forms' fixed text or in "<redacted>".
const secretAlphabet = "0123456789abcdefABCDEF"

// FuzzRedactArguments: whatever forms carry a secret, in whatever order,
// followed by whatever arguments, the redacted argv never shows it.
func FuzzRedactArguments(f *testing.F) {
	f.Add("", []byte("s3cretvalue"), []byte{0, 1, 2, 3}, "")
	f.Add("curl", []byte("0123456789abcdef0123456789"), []byte{17, 18, 19, 20, 8, 9}, "--\x00--password\x00x")
	f.Add("mysql", []byte("deadbeefcafe"), []byte{21, 11, 12}, "-p")
	f.Add("/usr/bin/sshpass", []byte("ABCDEF012345"), []byte{22, 23, 1}, "ssh\x00host")
	f.Fuzz(func(t *testing.T, prog string, raw, picks []byte, rest string) {
		if len(raw) < 8 || len(picks) == 0 {
			return
		}
		secret := make([]byte, len(raw))
		for i, c := range raw {
			secret[i] = secretAlphabet[int(c)%len(secretAlphabet)]
		}
		s := string(secret)
		prog, _, _ = strings.Cut(prog, "\x00")
		argv := []string{prog}
		base := prog[strings.LastIndexByte(prog, '/')+1:]
		for _, p := range picks {
			form := secretForms[int(p)%len(secretForms)]
			if form.prog != "" && form.prog != base || form.long && len(s) < 20 {
				continue
			}
			for _, a := range form.args {
				argv = append(argv, strings.ReplaceAll(a, "%s", s))
			}
		}
		withSecret := len(argv)
		argv = append(argv, splitWords(rest)...)
		out, _ := newRedactor(DefaultRedact()).args(argv)
		if len(out) != len(argv) {
			t.Fatalf("%d arguments became %d", len(argv), len(out))
		}
		for i := 1; i < withSecret; i++ {
			if strings.Contains(out[i], s) {
				t.Fatalf("secret %q survives redaction in argument %d: %q (argv %q)", s, i, out[i], argv)
			}
		}
	})
}
