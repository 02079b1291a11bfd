// SPDX-License-Identifier: Apache-2.0

package syslog

import (
	"strconv"
	"strings"
	"time"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/notify/journal"
	"github.com/execfaild/execfaild/probe/event"
)

// header is what every message of one sink shares apart from the event.
type header struct {
	Priority int // facility<<3 | severity
	Hostname string
	AppName  string
	ProcID   int
	MsgID    string
	SDID     string
}

// truncMark ends every value or MSG the size bound cut, in ASCII so even
// an RFC 3164 receiver shows it.
const truncMark = "...(truncated)"

// minKeep is how much of a value survives truncation, so a cut argv still
// shows what was run.
const minKeep = 48

type param struct{ name, value string }

// inMSG are the fields MSG already says: the cause's sentence follows the
// error there, so a copy in the structured data would only spend the
// message's size bound twice.
var inMSG = map[string]bool{"cause_text": true}

// params renders the event fields as PARAM-NAME/PARAM-VALUE pairs, every
// value printable (notify.Log.Visible) before SD escaping.
func params(ev *event.Event) []param {
	fs := journal.Fields(ev)
	ps := make([]param, 0, len(fs))
	for _, f := range fs {
		if inMSG[f.Name] {
			continue
		}
		v := f.Value
		if !f.Quoted {
			v = notify.Log.Visible(v)
		}
		ps = append(ps, param{f.Name, v})
	}
	return ps
}

// format5424 renders one RFC 5424 message of at most max bytes:
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD-ID name="value" ...] MSG
//
// MSG is sent without a BOM (the MSG-ANY form): it is printable, and a BOM
// ends up inside the message text of receivers that do not strip it.
func format5424(h header, ts time.Time, ev *event.Event, max int) string {
	ps := params(ev)
	msg := journal.Message(ev)
	var b strings.Builder
	b.WriteByte('<')
	b.WriteString(strconv.Itoa(h.Priority))
	b.WriteString(">1 ")
	b.WriteString(ts.Format("2006-01-02T15:04:05.000000Z07:00"))
	b.WriteByte(' ')
	b.WriteString(headerField(h.Hostname, 255))
	b.WriteByte(' ')
	b.WriteString(headerField(h.AppName, 48))
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(h.ProcID))
	b.WriteByte(' ')
	b.WriteString(headerField(h.MsgID, 32))
	b.WriteByte(' ')
	head := b.String()

	cut := false // something was truncated: say so in the SD as well
	render := func() string {
		var b strings.Builder
		b.WriteString(head)
		b.WriteByte('[')
		b.WriteString(h.SDID)
		for _, p := range ps {
			b.WriteByte(' ')
			b.WriteString(p.name)
			b.WriteString(`="`)
			b.WriteString(escapeParamValue(p.value))
			b.WriteByte('"')
		}
		if cut {
			b.WriteString(` truncated="true"`)
		}
		b.WriteByte(']')
		if msg != "" {
			b.WriteByte(' ')
			b.WriteString(msg)
		}
		return b.String()
	}
	out := render()
	if len(out) > max {
		cut = true
		out = render()
	}
	// Cut the longest value first (argv, environment), down to minKeep
	// each, then the sentence, so what stays is the most useful part of
	// every field.
	for len(out) > max {
		over := len(out) - max
		longest := -1
		for i, p := range ps {
			if len(p.value) > minKeep+len(truncMark) && (longest < 0 || len(p.value) > len(ps[longest].value)) {
				longest = i
			}
		}
		if longest >= 0 {
			// Budget in escaped bytes, since that is what goes out.
			v := ps[longest].value
			keep := len(escapeParamValue(v)) - over - len(truncMark)
			if keep < minKeep {
				keep = minKeep
			}
			ps[longest].value = cutEscaped(v, keep, sdWeight) + truncMark
			out = render()
			continue
		}
		if len(msg) > 0 {
			keep := len(msg) - over - len(truncMark)
			if keep <= 0 {
				msg = ""
			} else {
				msg = cutEscaped(msg, keep, nil) + truncMark
			}
			out = render()
			continue
		}
		if len(ps) == 0 {
			break // Validate keeps max above any header
		}
		ps = ps[:len(ps)-1]
		out = render()
	}
	return out
}

// format3164 renders an RFC 3164 message for receivers that predate RFC
// 5424: <PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG. The fields go only as
// the sentence. Over a local socket the hostname is left out, as syslog(3)
// does, because local daemons read the word after the time as the tag.
func format3164(h header, ts time.Time, ev *event.Event, local bool, max int) string {
	var b strings.Builder
	b.WriteByte('<')
	b.WriteString(strconv.Itoa(h.Priority))
	b.WriteByte('>')
	b.WriteString(ts.Format(time.Stamp))
	b.WriteByte(' ')
	if !local {
		b.WriteString(headerField(h.Hostname, 255))
		b.WriteByte(' ')
	}
	b.WriteString(headerField(h.AppName, 32))
	b.WriteByte('[')
	b.WriteString(strconv.Itoa(h.ProcID))
	b.WriteString("]: ")
	msg := journal.Message(ev)
	if room := max - b.Len(); len(msg) > room {
		keep := room - len(truncMark)
		if keep < 0 {
			keep = 0
		}
		msg = cutEscaped(msg, keep, nil) + truncMark
	}
	b.WriteString(msg)
	return b.String()
}

// headerField makes s a valid RFC 5424 header field: printable US-ASCII
// without spaces, at most max bytes, "-" (NILVALUE) when empty.
func headerField(s string, max int) string {
	if s == "" {
		return "-"
	}
	b := []byte(s)
	for i, c := range b {
		if c < 33 || c > 126 {
			b[i] = '_'
		}
	}
	if len(b) > max {
		b = b[:max]
	}
	return string(b)
}

// escapeParamValue applies RFC 5424 §6.3.3: '"', '\' and ']' get a
// backslash inside a PARAM-VALUE.
func escapeParamValue(v string) string {
	if !strings.ContainsAny(v, `"\]`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '"', '\\', ']':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// sdWeight is how many bytes c takes inside an escaped PARAM-VALUE.
func sdWeight(c byte) int {
	if c == '"' || c == '\\' || c == ']' {
		return 2
	}
	return 1
}

// cutEscaped returns the longest prefix of s, a notify.Log.Visible or
// shell-quoted rendering, that weighs at most n (weight per byte, nil for
// one each) and splits neither a UTF-8 sequence nor an escape (\\, \n,
// \xHH, \u{HHHH}, \UHHHHHHHH), so the cut value still decodes.
func cutEscaped(s string, n int, weight func(byte) int) string {
	i, w := 0, 0
	for i < len(s) {
		size := 1
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			switch s[i+1] {
			case 'x':
				size = 4
			case 'U':
				size = 10
			case 'u':
				if end := strings.IndexByte(s[i:], '}'); end > 0 {
					size = end + 1
				} else {
					size = 2
				}
			default:
				size = 2
			}
		case c >= 0xc0:
			size = 2
			if c >= 0xe0 {
				size = 3
			}
			if c >= 0xf0 {
				size = 4
			}
		}
		if i+size > len(s) {
			size = len(s) - i
		}
		tw := size
		if weight != nil {
			tw = 0
			for j := i; j < i+size; j++ {
				tw += weight(s[j])
			}
		}
		if w+tw > n {
			break
		}
		i += size
		w += tw
	}
	return s[:i]
}
