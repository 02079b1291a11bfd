// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Every string a failing process controls (path, argv, comm, unit) reaches
// a reader through one of two escaping policies, chosen by where the text
// goes. Each sink takes the one for its format instead of escaping on its
// own, so the same byte is spelled the same way by every sink of a kind.

// Escaping is what a renderer needs of a policy: a string made printable
// and unambiguous, and a list of words quoted the way a shell reads them.
type Escaping interface {
	Visible(s string) string
	ShellJoin(words []string) string
}

// LogEscaping is for log formats (journal, syslog): reversible, since a
// log is evidence. A backslash doubles, so "\n" in a path and a newline
// stay distinct, and argv pastes back into bash ($'…') as the same words.
type LogEscaping struct{}

// ChatEscaping is for text people read in chat and alerts (Slack,
// Alertmanager): readable first. A backslash stays single, and argv is
// quoted for a shell after Visible.
type ChatEscaping struct{}

// The two policies.
var (
	Log  LogEscaping
	Chat ChatEscaping
)

// Visible renders s so that every byte is printable and the original can
// be recovered: backslash doubles, \n \r \t and other control characters
// become C escapes, bytes that are not UTF-8 become \xHH, and non-printing
// Unicode (bidi overrides, zero-width joiners) becomes \u{HHHH}.
func (LogEscaping) Visible(s string) string {
	if Log.Plain(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x80 || strconv.IsPrint(r):
			b.WriteString(s[i : i+size])
		default:
			fmt.Fprintf(&b, `\u{%04x}`, r)
		}
		i += size
	}
	return b.String()
}

// Plain reports whether Visible returns s unchanged because it is all
// printable ASCII without a backslash.
func (LogEscaping) Plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

// ShellJoin quotes each word for a POSIX shell (bash $'…' for words with
// control characters or invalid UTF-8) and joins them with spaces. The
// result is printable, pastes back into bash as the same argv, and keeps
// "-v -v" and empty arguments distinct.
func (LogEscaping) ShellJoin(words []string) string {
	var b strings.Builder
	for i, w := range words {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(logShellQuote(w))
	}
	return b.String()
}

func logShellQuote(w string) string {
	if w == "" {
		return "''"
	}
	safe, printable := true, true
	for i := 0; i < len(w); {
		r, size := utf8.DecodeRuneInString(w[i:])
		switch {
		case r == utf8.RuneError && size <= 1, r < 0x20, r == 0x7f, r >= 0x80 && !strconv.IsPrint(r):
			printable = false
			safe = false
		case !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./_-", r)):
			safe = false
		}
		i += size
	}
	if safe {
		return w
	}
	if printable {
		return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	var b strings.Builder
	b.WriteString("$'")
	for i := 0; i < len(w); {
		r, size := utf8.DecodeRuneInString(w[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, w[i])
		case r == '\\' || r == '\'':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x80 || strconv.IsPrint(r):
			b.WriteString(w[i : i+size])
		default:
			// bash's \u takes up to four hex digits, \U up to eight.
			fmt.Fprintf(&b, `\U%08x`, r)
		}
		i += size
	}
	b.WriteString("'")
	return b.String()
}

// Sentence renders a diagnosis's sentence (event.CauseText) for every
// sink. The diagnosis writes prose and has already quoted the values it
// names ("/bin/bash\r" with its backslash), so backslashes stay single,
// as in ChatEscaping, rather than doubling as LogEscaping would; anything
// still unprintable is spelled out. The exact bytes stay in the event's
// cause_text and in the fields of the values themselves.
func Sentence(s string) string { return Chat.Visible(s) }

// Visible spells out control and format characters (\r, ESC, bidi
// overrides) and invalid UTF-8, which would otherwise be invisible or
// reorder the text around them: the stray \r of a CRLF #! line is the whole
// diagnosis. Backslashes stay single: doubling them would make every regex
// in argv harder to read, and a literal "\r" in a path is rarer than CR.
func (ChatEscaping) Visible(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case !unicode.IsPrint(r) && r != ' ':
			if r > 0xffff {
				fmt.Fprintf(&b, `\U%08x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

// ShellJoin joins arguments the way a shell would need them quoted, so
// "--target=<prod> & all" reads as one argument, with invisible characters
// spelled out (Visible).
func (ChatEscaping) ShellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = chatShellQuote(Chat.Visible(a))
	}
	return strings.Join(q, " ")
}

func chatShellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r == '/' || r == '.' || r == '-' || r == '_' || r == '=' || r == ':' || r == ',' || r == '+' || r == '@' || r == '%' ||
			unicode.IsLetter(r) || unicode.IsDigit(r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
