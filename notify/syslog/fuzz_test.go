// SPDX-License-Identifier: Apache-2.0

package syslog

import (
	"fmt"
	"strings"
	"testing"

	"github.com/execfaild/execfaild/notify/journal"
	"github.com/execfaild/execfaild/probe/event"
)

// sdParam is one PARAM-NAME="PARAM-VALUE" as a receiver reads it.
type sdParam struct{ name, value string }

// message5424 is an RFC 5424 message as a strict receiver splits it.
type message5424 struct {
	header   []string // PRI+VERSION, TIMESTAMP, HOSTNAME, APP-NAME, PROCID, MSGID
	elements []string // SD-IDs, in order
	params   []sdParam
	msg      string
	hasMsg   bool
}

// parse5424 reads msg by the grammar of RFC 5424 §6, written from the
// RFC rather than from format5424: it fails on anything the grammar does
// not allow (an unescaped ']' or '"' in a value, a bad header field).
func parse5424(s string) (message5424, error) {
	var m message5424
	for range 6 {
		sp := strings.IndexByte(s, ' ')
		if sp <= 0 {
			return m, fmt.Errorf("header ends early at %q", s)
		}
		field := s[:sp]
		for i := 0; i < len(field); i++ {
			if field[i] < 33 || field[i] > 126 {
				return m, fmt.Errorf("header field %q holds %#x", field, field[i])
			}
		}
		m.header = append(m.header, field)
		s = s[sp+1:]
	}
	if s == "" || s[0] != '[' {
		return m, fmt.Errorf("no structured data at %q", s)
	}
	for len(s) > 0 && s[0] == '[' {
		s = s[1:]
		end := strings.IndexAny(s, " ]")
		if end <= 0 {
			return m, fmt.Errorf("bad SD-ID at %q", s)
		}
		if err := sdName(s[:end], 0); err != nil {
			return m, fmt.Errorf("SD-ID: %w", err)
		}
		m.elements = append(m.elements, s[:end])
		s = s[end:]
		for len(s) > 0 && s[0] == ' ' {
			s = s[1:]
			eq := strings.IndexByte(s, '=')
			if eq <= 0 {
				return m, fmt.Errorf("bad SD-PARAM at %q", s)
			}
			name := s[:eq]
			if err := sdName(name, 32); err != nil {
				return m, fmt.Errorf("PARAM-NAME: %w", err)
			}
			s = s[eq+1:]
			if s == "" || s[0] != '"' {
				return m, fmt.Errorf("PARAM-VALUE of %s not quoted", name)
			}
			s = s[1:]
			var v strings.Builder
			closed := false
			for i := 0; i < len(s); i++ {
				c := s[i]
				switch {
				case c == '\\' && i+1 < len(s) && strings.IndexByte(`"\]`, s[i+1]) >= 0:
					v.WriteByte(s[i+1])
					i++
				case c == '"':
					s, closed = s[i+1:], true
				case c == ']':
					return m, fmt.Errorf("unescaped ] in the value of %s", name)
				default:
					v.WriteByte(c)
				}
				if closed {
					break
				}
			}
			if !closed {
				return m, fmt.Errorf("value of %s never closed", name)
			}
			m.params = append(m.params, sdParam{name, v.String()})
		}
		if s == "" || s[0] != ']' {
			return m, fmt.Errorf("SD-ELEMENT not closed at %q", s)
		}
		s = s[1:]
	}
	if s != "" {
		if s[0] != ' ' {
			return m, fmt.Errorf("no space before MSG at %q", s)
		}
		m.msg, m.hasMsg = s[1:], true
	}
	return m, nil
}

// sdName checks an SD-NAME: 1 to max printable US-ASCII bytes without
// '=', ' ', ']' or '"' (max 0: any length, as for an SD-ID).
func sdName(s string, max int) error {
	if s == "" || max > 0 && len(s) > max {
		return fmt.Errorf("%q is empty or too long", s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 33 || c > 126 || c == '=' || c == ']' || c == '"' {
			return fmt.Errorf("%q holds %q", s, c)
		}
	}
	return nil
}

// cutOrWhole: got is want, or a cut of want marked with truncMark.
func cutOrWhole(got, want string) (whole, ok bool) {
	if got == want {
		return true, true
	}
	cut, marked := strings.CutSuffix(got, truncMark)
	return false, marked && strings.HasPrefix(want, cut)
}

// FuzzFormat5424: a message built from a hostile event parses back, by
// the RFC's grammar, into one SD element whose parameters are the event's
// fields with their values (or a marked cut of them), and nothing else.
func FuzzFormat5424(f *testing.F) {
	ev := hostile("/srv")
	f.Add("web-1", ev.Path, strings.Join(ev.Arguments, "\x00"), ev.Process.Comm, ev.InterpreterPath, ev.CauseText, "/", uint16(8192))
	f.Add("", `x] [evil@1 a="b"]`, `"]\`+"\x00"+`a="b"`, `] [`, "", "\n<13>1 - - - - - - forged", `\"`, uint16(480))
	f.Add("h o\x00st\xff", "/p", strings.Repeat("\xff]", 3000), "c", "/bin/sh\r", "", strings.Repeat("/d\n", 400), uint16(600))
	f.Add("h", "\u202e/x", "ü\x00\U0001F600", "", "\\", "\\\\]]", "", uint16(1024))
	f.Fuzz(func(t *testing.T, host, path, argv, comm, interp, cause, cwd string, max uint16) {
		ev := event.Synthetic(fixedTime, host)
		ev.Path, ev.InterpreterPath, ev.CauseText = path, interp, cause
		ev.Arguments = strings.Split(argv, "\x00")
		ev.Process.Comm, ev.Process.Cwd = comm, cwd
		limit := 480 + int(max)%8000
		h := header{Priority: 28, Hostname: host, AppName: AppName, ProcID: 77, MsgID: MsgID, SDID: DefaultSDID}
		out := format5424(h, fixedTime, &ev, limit)
		if len(out) > limit {
			t.Fatalf("%d bytes, bound %d", len(out), limit)
		}
		for i := 0; i < len(out); i++ {
			if out[i] < 0x20 || out[i] == 0x7f {
				t.Fatalf("control byte %#x at %d of %q", out[i], i, out)
			}
		}
		m, err := parse5424(out)
		if err != nil {
			t.Fatalf("%v\nin %q", err, out)
		}
		if m.header[0] != "<28>1" || m.header[2] != headerField(host, 255) || m.header[3] != AppName || m.header[5] != MsgID {
			t.Fatalf("header %q", m.header)
		}
		if len(m.elements) != 1 || m.elements[0] != DefaultSDID {
			t.Fatalf("SD elements %q, want one %s", m.elements, DefaultSDID)
		}
		want := params(&ev)
		got := m.params
		truncated := false
		if n := len(got); n > 0 && got[n-1] == (sdParam{"truncated", "true"}) {
			got, truncated = got[:n-1], true
		}
		if len(got) > len(want) || !truncated && len(got) != len(want) {
			t.Fatalf("%d parameters, the event has %d (truncated %v)", len(got), len(want), truncated)
		}
		for i, p := range got {
			if p.name != want[i].name {
				t.Fatalf("parameter %d is %q, want %q", i, p.name, want[i].name)
			}
			whole, ok := cutOrWhole(p.value, want[i].value)
			if !ok || !whole && !truncated {
				t.Fatalf("%s=%q, want %q (truncated %v)", p.name, p.value, want[i].value, truncated)
			}
		}
		msg := journal.Message(&ev)
		if whole, ok := cutOrWhole(m.msg, msg); !ok && !(m.msg == "" && truncated) || !whole && !truncated {
			t.Fatalf("MSG %q, want %q", m.msg, msg)
		}
	})
}

// FuzzEscapeParamValue: an escaped value reads back as itself and ends
// nowhere but at its closing quote.
func FuzzEscapeParamValue(f *testing.F) {
	for _, s := range []string{"", `"`, `\`, `]`, `a\"b`, `\]`, `x"] [y@1 k="v"]`, "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		m, err := parse5424(`<1>1 - - - - - [x@1 k="` + escapeParamValue(v) + `"]`)
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if len(m.elements) != 1 || len(m.params) != 1 || m.params[0] != (sdParam{"k", v}) {
			t.Fatalf("%q reads back as %q %q", v, m.elements, m.params)
		}
		if m.hasMsg {
			t.Fatalf("%q leaked %q into MSG", v, m.msg)
		}
	})
}

// FuzzHeaderField: a header field is one token of printable US-ASCII
// within its bound, one byte for each byte it replaces.
func FuzzHeaderField(f *testing.F) {
	for _, s := range []string{"", "web-1", "a b", "ü", "\x00", strings.Repeat("h", 300)} {
		f.Add(s, uint8(254))
	}
	f.Fuzz(func(t *testing.T, s string, bound uint8) {
		n := int(bound) + 1
		got := headerField(s, n)
		if got == "" || len(got) > n || s != "" && len(got) != min(len(s), n) {
			t.Fatalf("headerField(%q, %d) = %q", s, n, got)
		}
		for i := 0; i < len(got); i++ {
			if got[i] < 33 || got[i] > 126 {
				t.Fatalf("headerField(%q) = %q holds %#x", s, got, got[i])
			}
		}
	})
}
