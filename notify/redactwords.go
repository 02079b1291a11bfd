// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"path"
	"strings"
)

// An argument may hold a whole command line: sh -c '…', su -c '…', ssh
// host '…', python3 -c '…', or any wrapper a script or an attacker chose.
// Its words are redacted like arguments of their own, so a secret does
// not escape by being quoted once more. Words are split the way a shell
// would, well enough for this: at unquoted blanks, with quotes removed
// and backslashes honoured outside single quotes.

// maxLineDepth bounds how many quoting levels are opened (bash -c "ssh
// host 'mysql -p…'" is two).
const maxLineDepth = 3

// shellWord is one word of a command line: its text in the line
// [start, end) and its value. sep tells that it ends a command.
type shellWord struct {
	start, end int
	val        string
	sep        bool
	// quoted: val came through quotes or backslashes.
	quoted bool
	marks  uint8
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// hasBlank tells whether a could hold more than one word.
func hasBlank(a string) bool { return strings.ContainsAny(a, " \t\n\r") }

// Marks of what a word holds, found while it is split: only a word with
// one of markMay can be or announce a secret (an option, key=value, a
// header, a URL), only one with markText can hold one text finds. The
// others cost a hostile argument of short words no more than the split.
const (
	markMay  = 1 << iota // - = : @ ?
	markText             // = : ? & ;
)

var wordMarks = func() (m [256]uint8) {
	for _, c := range "-=:@?" {
		m[c] |= markMay
	}
	for _, c := range "=:?&;" {
		m[c] |= markText
	}
	return m
}()

// nextWord returns the shell word of s that starts at or after i, where
// the next one starts looking, and buf for reuse; false when none is
// left. An unclosed quote runs to the end. A word without quotes or
// backslashes is a slice of s, with no allocation.
func nextWord(s string, i int, buf []byte) (shellWord, int, []byte, bool) {
	for i < len(s) && isBlank(s[i]) {
		i++
	}
	if i >= len(s) {
		return shellWord{}, i, buf, false
	}
	w := shellWord{start: i}
	plain := true
	var q, lastQ byte
	unplain := func() {
		if plain {
			plain, buf = false, append(buf[:0], s[w.start:i]...)
		}
	}
word:
	for i < len(s) {
		c := s[i]
		switch {
		case q == 0 && isBlank(c):
			break word
		case q == 0 && (c == '\'' || c == '"'):
			unplain()
			q = c
			i++
		case q != 0 && c == q:
			q = 0
			i++
		case c == '\\' && q != '\'' && i+1 < len(s):
			unplain()
			buf = append(buf, s[i+1])
			w.marks |= wordMarks[s[i+1]]
			lastQ = q
			i += 2
		default:
			if !plain {
				buf = append(buf, c)
			}
			w.marks |= wordMarks[c]
			lastQ = q
			i++
		}
	}
	w.end = i
	if plain {
		w.val = s[w.start:w.end]
	} else {
		w.val, w.quoted = string(buf), true
	}
	// ;, &&, ||, |, & alone or, unquoted, at its end.
	if n := len(w.val); n > 0 && lastQ == 0 {
		switch w.val[n-1] {
		case ';', '&', '|':
			w.sep = true
		}
	}
	return w, i, buf, true
}

// at returns where byte k of w's value stands in s and the quote open
// around it; for k past the value, the word's end.
func (w *shellWord) at(s string, k int) (int, byte) {
	var q byte
	n := 0
	for i := w.start; i < w.end; {
		c := s[i]
		switch {
		case q == 0 && (c == '\'' || c == '"'):
			q = c
			i++
			continue
		case q != 0 && c == q:
			q = 0
			i++
			continue
		case c == '\\' && q != '\'' && i+1 < w.end:
			i++
		}
		if n == k {
			return i, q
		}
		n++
		i++
	}
	return w.end, 0
}

// wrappers run the command that follows their options and assignments.
var wrappers = map[string]bool{
	"sudo": true, "doas": true, "env": true, "exec": true, "nohup": true, "time": true, "command": true,
	"nice": true, "ionice": true, "stdbuf": true, "timeout": true, "setsid": true, "xargs": true,
}

// isAssign tells whether v is NAME=value (an environment assignment in
// front of a command).
func isAssign(v string) bool {
	eq := strings.IndexByte(v, '=')
	if eq <= 0 {
		return false
	}
	for i := 0; i < eq; i++ {
		c := v[i]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// line redacts the secrets in the words of command line s and returns it
// with every other word as it was written, and whether anything changed.
func (r *redactor) line(s string, depth int) (string, bool) {
	const (
		none     = iota
		flagNext // the word is the value of flag
		header   // the word is a secret header's value, or its scheme
		value    // the word is secret
	)
	pending, flag := none, ""
	prog, command := "", true
	var b strings.Builder
	changed, last := false, 0
	var buf []byte
	for i := 0; ; {
		var w shellWord
		var ok bool
		w, i, buf, ok = nextWord(s, i, buf)
		if !ok {
			break
		}
		v := w.val
		nv, done := v, false
		switch pending {
		case flagNext:
			nv, done, pending = userValue(flag, v), true, none
		case header:
			if authSchemes[strings.ToLower(v)] {
				pending = value
			} else {
				nv, done, pending = Redacted, true, none
			}
		case value:
			nv, done, pending = Redacted, true, none
		default:
			may := w.marks&markMay != 0
			if name, ok := headerName(v); ok && r.secretHeader(name) {
				// "Authorization: Bearer …" split into words by
				// quoting a shell did not see (python's \', say).
				pending = header
				break
			}
			switch {
			case command && (isAssign(v) || wrappers[prog] && strings.HasPrefix(v, "-")):
			case command:
				prog = cmdName(v)
				command = wrappers[prog]
			case may:
				if rv, next, ok := r.flagValue(prog, v); ok && next {
					pending, flag = flagNext, v
				} else if ok {
					nv, done = rv, true
				}
			}
		}
		switch {
		case done:
		case w.quoted && depth+1 < maxLineDepth && hasBlank(nv):
			nv, _ = r.line(nv, depth+1)
			nv = r.textWord(nv)
		case w.marks&markText != 0:
			nv = r.textWord(nv)
		}
		if nv != v {
			changed = true
			b.WriteString(s[last:w.start])
			b.WriteString(replaceWord(s, &w, nv))
			last = w.end
		}
		if w.sep {
			prog, command, pending = "", true, none
		}
	}
	if !changed {
		return s, false
	}
	b.WriteString(s[last:])
	return b.String(), true
}

// cmdName is the program a command word names: a code word such as
// os.system(mysql or subprocess.run([deploy, names the program after its
// last bracket.
func cmdName(v string) string {
	v = strings.TrimRight(v, ";&|,)]}")
	if i := strings.LastIndexAny(v, "([{"); i >= 0 {
		v = v[i+1:]
	}
	return path.Base(v)
}

// headerName returns the header name a word ending in ':' is.
func headerName(v string) (string, bool) {
	if len(v) < 2 || v[len(v)-1] != ':' {
		return "", false
	}
	n := v[:len(v)-1]
	i := len(n)
	for i > 0 && len(n)-i < maxNameLen {
		c := n[i-1]
		if !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			break
		}
		i--
	}
	return n[i:], i < len(n)
}

// textWord is text for a word of a command line, which may be code: a
// key=value there can follow a bracket or a comma (f(password=…)).
func (r *redactor) textWord(v string) string {
	end := strings.IndexByte(v, '=')
	if end < 0 {
		end = len(v)
	}
	lead := strings.LastIndexAny(v[:end], "([{,") + 1
	return v[:lead] + r.textOf(v[lead:], false)
}

// replaceWord is the text that stands for w, whose value became nv. Where
// nv is the value cut at a secret (a prefix of it, then Redacted), the
// word is kept as written up to the secret, the secret and whatever
// followed it in the word replaced, and an open quote closed. Otherwise
// nv is written in the word's quotes, or quoted anew.
func replaceWord(s string, w *shellWord, nv string) string {
	if p, ok := strings.CutSuffix(nv, Redacted); ok && strings.HasPrefix(w.val, p) {
		off, q := w.at(s, len(p))
		t := s[w.start:off] + Redacted
		if q != 0 {
			t += string(q)
		}
		return t
	}
	switch q := s[w.start]; {
	case q == '\'' && !strings.Contains(nv, "'"):
		return "'" + nv + "'"
	case q == '"' && !strings.ContainsAny(nv, "\"\\$`"):
		return `"` + nv + `"`
	case !strings.ContainsAny(nv, " \t\n\r'\"\\$`;&|"):
		return nv
	}
	return "'" + strings.ReplaceAll(nv, "'", `'\''`) + "'"
}
