package httpsink

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Visible spells out control and format characters (\r, ESC, bidi
// overrides) and invalid UTF-8, which would otherwise be invisible or
// reorder the text around them: the stray \r of a CRLF #! line is the whole
// diagnosis. Backslashes stay single: doubling them would make every regex
// in argv harder to read, and a literal "\r" in a path is rarer than CR.
func Visible(s string) string {
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
func ShellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(Visible(a))
	}
	return strings.Join(q, " ")
}

func shellQuote(s string) string {
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
