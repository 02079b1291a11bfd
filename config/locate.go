// SPDX-License-Identifier: Apache-2.0

package config

import (
	"regexp"
	"strconv"
	"strings"
)

// lines maps every key and table of a TOML file to the line it is on.
// BurntSushi/toml reports positions for syntax and type errors only, while
// unknown keys and validation errors need a line too, so the loader finds
// them itself. Keys are written with array-of-table indexes
// ("sink.slack[1].url"); plain holds the same keys without indexes
// ("sink.slack.url", as toml.Key prints them) mapped to their first
// indexed form.
type lines struct {
	at    map[string]int
	plain map[string]string
}

var (
	arrayHeader = regexp.MustCompile(`^\[\[\s*([^\]]+?)\s*\]\]`)
	tableHeader = regexp.MustCompile(`^\[\s*([^\]]+?)\s*\]`)
	keyLine     = regexp.MustCompile(`^((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=`)
	indexRE     = regexp.MustCompile(`\[\d+\]`)
)

func scanLines(data string) *lines {
	l := &lines{at: map[string]int{}, plain: map[string]string{}}
	table := ""
	counts := map[string]int{}
	depth := 0     // open brackets/braces of a multi-line value
	inString := "" // closing delimiter of a multi-line string
	for i, raw := range strings.Split(data, "\n") {
		n := i + 1
		line := strings.TrimSpace(raw)
		if inString != "" {
			if strings.Contains(line, inString) {
				inString = ""
			}
			continue
		}
		if depth > 0 {
			depth += bracketDelta(line)
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		if m := arrayHeader.FindStringSubmatch(line); m != nil {
			name := normKey(m[1])
			table = resolveArrays(name, counts) + "[" + strconv.Itoa(counts[name]) + "]"
			counts[name]++
			l.add(name, n)
			l.add(table, n)
			continue
		}
		if m := tableHeader.FindStringSubmatch(line); m != nil {
			// [a.b] after [[a]] is a sub-table of a's last element.
			table = resolveArrays(normKey(m[1]), counts)
			l.add(table, n)
			continue
		}
		m := keyLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		key := normKey(m[1])
		if table != "" {
			key = table + "." + key
		}
		l.add(key, n)
		value := strings.TrimSpace(line[len(m[0]):])
		for _, q := range []string{`"""`, `'''`} {
			if strings.HasPrefix(value, q) && !strings.Contains(value[3:], q) {
				inString = q
			}
		}
		if inString == "" {
			depth = bracketDelta(value)
		}
	}
	return l
}

func (l *lines) add(key string, n int) {
	if _, ok := l.at[key]; !ok {
		l.at[key] = n
	}
	p := indexRE.ReplaceAllString(key, "")
	if _, ok := l.plain[p]; !ok {
		l.plain[p] = key
	}
}

// find returns the line of key or, failing that, of the nearest enclosing
// table or key that is in the file (a key set in an inline table, a
// default that was never written); 0 when none is.
func (l *lines) find(key string) int {
	for k := key; k != ""; k = parentKey(k) {
		if n, ok := l.at[k]; ok {
			return n
		}
	}
	return 0
}

// indexed turns a toml.Key string without indexes into the first matching
// indexed key in the file, or returns it unchanged.
func (l *lines) indexed(plain string) string {
	if k, ok := l.plain[plain]; ok {
		return k
	}
	return plain
}

func parentKey(k string) string {
	i := strings.LastIndexAny(k, ".[")
	if i <= 0 {
		return ""
	}
	return k[:i]
}

// normKey removes quotes and blanks around the parts of a dotted key.
func normKey(s string) string {
	parts := strings.Split(s, ".")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if len(p) >= 2 && (p[0] == '"' || p[0] == '\'') && p[len(p)-1] == p[0] {
			p = p[1 : len(p)-1]
		}
		parts[i] = p
	}
	return strings.Join(parts, ".")
}

// bracketDelta counts [ and { minus ] and } outside strings and comments.
func bracketDelta(s string) int {
	d := 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' && quote == '"' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#':
			return d
		case c == '[' || c == '{':
			d++
		case c == ']' || c == '}':
			d--
		}
	}
	return d
}

// resolveArrays indexes the parts of a table name that are arrays of
// tables seen so far with their current (last) element.
func resolveArrays(name string, counts map[string]int) string {
	parts := strings.Split(name, ".")
	out := ""
	plain := ""
	for i, p := range parts {
		if i > 0 {
			out += "."
			plain += "."
		}
		out += p
		plain += p
		if c, ok := counts[plain]; ok && i < len(parts)-1 {
			out += "[" + strconv.Itoa(c-1) + "]"
		}
	}
	return out
}

// keyAt returns the longest key that starts on line n, or "".
func (l *lines) keyAt(n int) string {
	best := ""
	for k, at := range l.at {
		if at == n && len(k) > len(best) {
			best = k
		}
	}
	return best
}
