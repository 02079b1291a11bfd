// SPDX-License-Identifier: Apache-2.0

// Package slacktest is a local stand-in for a Slack incoming webhook, for
// tests: Slack itself is not reachable from test machines. It checks what
// Slack checks before posting (a JSON body, text or blocks, the Block Kit
// limits) plus what execfaild promises on top (no unescaped &, <, > and no
// raw control characters in any text, mrkdwn sent verbatim), answers the
// way Slack does ("ok", 400 "invalid_blocks", 404 "no_service"), and can be
// told to answer 429 with Retry-After or any other status on demand.
package slacktest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf16"
)

// Limits documented in Slack's Block Kit reference.
const (
	MaxBlocks      = 50
	MaxHeaderText  = 150
	MaxSectionText = 3000
	MaxFields      = 10
	MaxFieldText   = 2000
	MaxContextElem = 10
	MaxText        = 40000
)

// Response is a scripted answer.
type Response struct {
	Status     int
	Body       string // Slack answers with a short code: "no_service"
	RetryAfter string // Retry-After header value, seconds or an HTTP-date
}

// Request is one delivery the stand-in saw.
type Request struct {
	Time     time.Time
	Body     []byte
	Status   int      // what the stand-in answered
	Problems []string // why it rejected the payload, if it did
}

// Server is the stand-in. Its webhook lives at a secret path, like Slack's.
type Server struct {
	*httptest.Server
	// Path is the secret part of the webhook URL.
	Path string

	mu       sync.Mutex
	script   []Response
	requests []Request
}

// New starts a stand-in; Close it when done.
func New() *Server {
	s := &Server{Path: "/services/T0EXECFAIL/B0STANDIN/s3cr3tW3bh00kT0k3nXYZ"}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// WebhookURL is the URL to configure as the sink's url.
func (s *Server) WebhookURL() string { return s.Server.URL + s.Path }

// Enqueue scripts the next answers, in order; once they are used up the
// stand-in validates and answers normally.
func (s *Server) Enqueue(r ...Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, r...)
}

// Requests returns what the stand-in received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Accepted returns the bodies answered with 200 "ok".
func (s *Server) Accepted() [][]byte {
	var out [][]byte
	for _, r := range s.Requests() {
		if r.Status == http.StatusOK {
			out = append(out, r.Body)
		}
	}
	return out
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	req := Request{Time: time.Now(), Body: body}
	answer := func(status int, text string) {
		req.Status = status
		s.mu.Lock()
		s.requests = append(s.requests, req)
		s.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(status)
		io.WriteString(w, text)
	}

	if r.URL.Path != s.Path {
		answer(http.StatusNotFound, "no_service")
		return
	}
	if r.Method != http.MethodPost {
		answer(http.StatusMethodNotAllowed, "invalid_method")
		return
	}
	s.mu.Lock()
	var scripted *Response
	if len(s.script) > 0 {
		scripted = &s.script[0]
		s.script = s.script[1:]
	}
	s.mu.Unlock()
	if scripted != nil {
		if scripted.RetryAfter != "" {
			w.Header().Set("Retry-After", scripted.RetryAfter)
		}
		answer(scripted.Status, scripted.Body)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		req.Problems = []string{"content type " + ct}
		answer(http.StatusBadRequest, "invalid_payload")
		return
	}
	if p := Check(body); len(p) > 0 {
		req.Problems = p
		code := "invalid_blocks"
		if strings.HasPrefix(p[0], "json:") {
			code = "invalid_payload"
		} else if strings.HasPrefix(p[0], "no text") {
			code = "no_text"
		}
		answer(http.StatusBadRequest, code)
		return
	}
	answer(http.StatusOK, "ok")
}

// Check validates a payload and lists every problem; nil means Slack (and
// execfaild's own escaping rules) would accept it.
func Check(body []byte) []string {
	var msg struct {
		Text   *string           `json:"text"`
		Blocks []json.RawMessage `json:"blocks"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		return []string{"json: " + err.Error()}
	}
	c := &checker{}
	if msg.Text == nil || *msg.Text == "" {
		c.add("no text: the top-level text is the notification fallback")
	} else {
		if n := width(*msg.Text); n > MaxText {
			c.add("text: %d characters, limit %d", n, MaxText)
		}
		c.markup("text", *msg.Text)
	}
	if len(msg.Blocks) > MaxBlocks {
		c.add("blocks: %d, limit %d", len(msg.Blocks), MaxBlocks)
	}
	for i, raw := range msg.Blocks {
		c.block(fmt.Sprintf("blocks[%d]", i), raw)
	}
	return c.problems
}

type textObject struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	Verbatim *bool  `json:"verbatim"`
	Emoji    *bool  `json:"emoji"`
}

type checker struct{ problems []string }

func (c *checker) add(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func (c *checker) block(where string, raw json.RawMessage) {
	var b struct {
		Type     string       `json:"type"`
		Text     *textObject  `json:"text"`
		Fields   []textObject `json:"fields"`
		Elements []textObject `json:"elements"`
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		c.add("%s: %v", where, err)
		return
	}
	switch b.Type {
	case "header":
		if b.Text == nil || b.Text.Type != "plain_text" {
			c.add("%s: header text must be plain_text", where)
			return
		}
		c.text(where+".text", *b.Text, MaxHeaderText)
	case "section":
		if b.Text == nil && len(b.Fields) == 0 {
			c.add("%s: section needs text or fields", where)
		}
		if b.Text != nil {
			c.text(where+".text", *b.Text, MaxSectionText)
		}
		if len(b.Fields) > MaxFields {
			c.add("%s.fields: %d, limit %d", where, len(b.Fields), MaxFields)
		}
		for i, f := range b.Fields {
			c.text(fmt.Sprintf("%s.fields[%d]", where, i), f, MaxFieldText)
		}
	case "context":
		if len(b.Elements) == 0 || len(b.Elements) > MaxContextElem {
			c.add("%s.elements: %d, want 1..%d", where, len(b.Elements), MaxContextElem)
		}
		for i, e := range b.Elements {
			c.text(fmt.Sprintf("%s.elements[%d]", where, i), e, MaxSectionText)
		}
	case "divider":
	default:
		c.add("%s: unknown block type %q", where, b.Type)
	}
}

func (c *checker) text(where string, t textObject, limit int) {
	switch t.Type {
	case "plain_text":
		if t.Verbatim != nil {
			c.add("%s: verbatim is only for mrkdwn", where)
		}
	case "mrkdwn":
		if t.Emoji != nil {
			c.add("%s: emoji is only for plain_text", where)
		}
		// Not a Slack rule but execfaild's: without verbatim Slack links
		// URLs and #channels found in argv.
		if t.Verbatim == nil || !*t.Verbatim {
			c.add("%s: mrkdwn without verbatim", where)
		}
	default:
		c.add("%s: text type %q", where, t.Type)
	}
	if t.Text == "" {
		c.add("%s: empty text", where)
	}
	if n := width(t.Text); n > limit {
		c.add("%s: %d characters, limit %d", where, n, limit)
	}
	c.markup(where, t.Text)
}

// dateToken is the only markup execfaild emits: a date shown in the
// reader's time zone with a plain fallback.
var (
	dateToken     = regexp.MustCompile(`<!date\^[0-9]+\^[^|<>&]*\|[^<>&]*>`)
	dateTokenHere = regexp.MustCompile(`^` + dateToken.String())
)

// markup finds &, < and > that are not escapes or date tokens: user text
// that slipped through unescaped and could become a mention or a link.
func (c *checker) markup(where, s string) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '&':
			rest := s[i:]
			if !strings.HasPrefix(rest, "&amp;") && !strings.HasPrefix(rest, "&lt;") && !strings.HasPrefix(rest, "&gt;") {
				c.add("%s: unescaped & at byte %d", where, i)
			}
		case '<':
			m := dateTokenHere.FindString(s[i:])
			if m == "" {
				c.add("%s: unescaped < at byte %d: %.40q", where, i, s[i:])
				continue
			}
			i += len(m) - 1
		case '>':
			c.add("%s: unescaped > at byte %d", where, i)
		default:
			if s[i] < 0x20 && s[i] != '\n' || s[i] == 0x7f {
				c.add("%s: raw control character %#x at byte %d", where, s[i], i)
			}
		}
	}
}

func width(s string) int { return len(utf16.Encode([]rune(s))) }

// Unescape reverses Slack's three escapes and drops date tokens' markup
// (keeping their fallback), giving the text a reader sees.
func Unescape(s string) string {
	s = dateToken.ReplaceAllStringFunc(s, func(m string) string {
		return m[strings.IndexByte(m, '|')+1 : len(m)-1]
	})
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
}
