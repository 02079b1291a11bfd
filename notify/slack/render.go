// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/probe/event"
)

// Block Kit limits (docs.slack.dev, block and composition object
// references), counted in characters as Slack counts them (UTF-16 units).
const (
	maxBlocks      = 50
	maxHeaderText  = 150
	maxSectionText = 3000
	maxFields      = 10
	maxFieldText   = 2000
	maxContextElem = 10
	// The fallback text shows in notifications and screen readers; Slack
	// truncates at 40,000 but a notification line is only useful short.
	maxFallback = 300
	// Argument lists beyond this many entries are cut before rendering so a
	// huge argv cannot make rendering slow.
	maxArgs = 200
)

// Message is an incoming-webhook payload.
type Message struct {
	Text      string  `json:"text"`
	Blocks    []Block `json:"blocks"`
	Channel   string  `json:"channel,omitempty"`
	Username  string  `json:"username,omitempty"`
	IconEmoji string  `json:"icon_emoji,omitempty"`
	IconURL   string  `json:"icon_url,omitempty"`
}

// Block is the subset of Block Kit this sink sends: header, section
// (text or fields), context.
type Block struct {
	Type     string `json:"type"`
	Text     *Text  `json:"text,omitempty"`
	Fields   []Text `json:"fields,omitempty"`
	Elements []Text `json:"elements,omitempty"`
}

// Text is a composition text object.
type Text struct {
	Type string `json:"type"`
	Text string `json:"text"`
	// Verbatim stops Slack from turning plain URLs, #channel and @here in
	// argv or paths into links and mentions.
	Verbatim bool  `json:"verbatim,omitempty"`
	Emoji    *bool `json:"emoji,omitempty"`
}

func mrkdwn(s string) Text { return Text{Type: "mrkdwn", Text: s, Verbatim: true} }

// Render builds the message for ev. It never fails: whatever the event
// holds, the result is within Slack's limits.
func Render(ev *event.Event) Message {
	d := notify.Describe(ev)
	what := d.Subject.Program
	base := path.Base(what)
	switch {
	case d.Subject.Several:
		what, base = "several programs", "several programs"
	case what == "":
		what, base = "(empty path)", "(empty path)"
	}
	host := ev.Host
	if host == "" {
		host = "unknown host"
	}
	errName := d.Error.Name
	switch {
	case d.Error.Several:
		errName = "several errors"
	case errName == "":
		errName = "E" + strconv.Itoa(d.Error.Errno)
	}

	var m Message
	n := uint64(1)
	if d.Repeats != nil {
		n = d.Repeats.Count
	}

	// Header: plain text, what and where at a glance.
	head := fmt.Sprintf("Exec failed on %s: %s (%s)", host, base, errName)
	if d.Repeats != nil {
		head = fmt.Sprintf("Exec failed %s on %s: %s (%s)", notify.Times(n, d.Repeats.More), host, base, errName)
	}
	if d.Test {
		head = notify.TestMark + head
	}
	no := false
	m.Blocks = append(m.Blocks, Block{Type: "header", Text: &Text{Type: "plain_text", Text: plain(head, maxHeaderText), Emoji: &no}})

	// Why, and the fix: the first thing read after the header. Plain
	// text, so a path's "_" or "*" cannot turn into markup.
	cause := causeLine(&d)
	if cause != "" {
		m.Blocks = append(m.Blocks, Block{Type: "section", Text: &Text{Type: "plain_text", Text: plain(cause, maxSectionText), Emoji: &no}})
	}

	// What failed and why, in words.
	m.Blocks = append(m.Blocks, section(whatLine(ev, &d, what, errName)))

	// How many times, for aggregates.
	if d.Repeats != nil {
		m.Blocks = append(m.Blocks, section(countLine(d.Repeats)))
	}

	// Who and where.
	m.Blocks = append(m.Blocks, Block{Type: "section", Fields: fields(ev, host)})

	// The command line, as a shell would show it.
	if len(ev.Arguments) > 0 {
		label := "*Command*"
		if d.ArgumentsTruncated {
			label = "*Command* (argument list truncated by the probe)"
		}
		if ev.ArgumentsRedacted {
			label += " (secrets redacted)"
		}
		m.Blocks = append(m.Blocks, section(label+"\n```"+codeBlock(argv(ev.Arguments), maxSectionText-len(label)-7)+"```"))
	}

	// Technical footer, after the fleet's labels of the host.
	var ctxElems []Text
	if len(ev.Labels) > 0 {
		var ls []string
		for _, name := range slices.Sorted(maps.Keys(ev.Labels)) {
			ls = append(ls, name+"="+ev.Labels[name])
		}
		ctxElems = append(ctxElems, mrkdwn(plain(strings.Join(ls, " · "), maxSectionText)))
	}
	var ctx []string
	if ev.Syscall != "" {
		ctx = append(ctx, esc(ev.Syscall))
	}
	if ev.Stage != "" {
		ctx = append(ctx, "stage "+esc(ev.Stage))
	}
	if !ev.Time.IsZero() {
		ctx = append(ctx, slackDate(ev.Time, "{date_short} {time_secs}", "2006-01-02 15:04:05 MST"))
	}
	ctx = append(ctx, "execfaild")
	ctxElems = append(ctxElems, mrkdwn(strings.Join(ctx, " · ")))
	m.Blocks = append(m.Blocks, Block{Type: "context", Elements: ctxElems})

	// Fallback for notifications: one line.
	fb := fmt.Sprintf("%s failed on %s: %s", what, host, errName)
	if d.Error.Text != "" {
		fb += " (" + d.Error.Text + ")"
	}
	if cause != "" {
		fb += ": " + cause
	}
	if d.Repeats != nil {
		fb = notify.Times(n, d.Repeats.More) + ": " + fb
	}
	if d.Test {
		// The push notification is all a phone shows.
		fb = notify.TestMark + fb
	}
	m.Text = plain(fb, maxFallback)

	if len(m.Blocks) > maxBlocks {
		m.Blocks = m.Blocks[:maxBlocks]
	}
	return m
}

// whatLine is the section saying what failed and why, one line per part.
func whatLine(ev *event.Event, d *notify.Description, what, errName string) string {
	var b strings.Builder
	if d.Subject.Several {
		fmt.Fprintf(&b, "*several programs* could not be executed: *%s*", esc(errName))
	} else {
		fmt.Fprintf(&b, "*%s* could not be executed: *%s*", code(what), esc(errName))
	}
	if d.Error.Text != "" {
		fmt.Fprintf(&b, " (%s)", esc(notify.Chat.Visible(d.Error.Text)))
	}
	if ev.Path != "" && ev.Path != what {
		fmt.Fprintf(&b, "\ncalled as %s", code(ev.Path))
	}
	for _, dt := range d.Details {
		switch dt.Kind {
		case notify.DetailInterpreter:
			b.WriteString("\n" + interpreterLine(d))
		case notify.DetailPathSearch:
			dirs := make([]string, 0, len(d.Tried))
			for _, dir := range d.Tried {
				dirs = append(dirs, code(dir))
			}
			fmt.Fprintf(&b, "\nnot found in any $PATH directory tried: %s", strings.Join(dirs, ", "))
		case notify.DetailArgumentsTruncated, notify.DetailRepeats, notify.DetailCause:
			// Said with the command and in sections of their own.
		default:
			b.WriteString("\n" + dt.Join(code))
		}
	}
	if d.Caller.Kernel {
		b.WriteString("\nstarted by the kernel (usermode helper), not by a process")
	}
	return b.String()
}

// causeLine is the diagnosis as plain text (plain escapes it), "" when
// there is none.
func causeLine(d *notify.Description) string {
	for _, dt := range d.Details {
		if dt.Kind == notify.DetailCause {
			return dt.Join(func(s string) string { return s })
		}
	}
	return ""
}

func interpreterLine(d *notify.Description) string {
	ip := d.Interpreter.Path
	line := "interpreter " + code(ip) + " (from the script's `#!` line)"
	switch d.Error.Name {
	case "ENOENT":
		line += " does not exist"
	case "EACCES":
		line += " is not executable"
	case "ENOEXEC":
		line += " is not an executable format"
	}
	if strings.HasSuffix(ip, "\r") {
		line += " — the script has Windows (CRLF) line endings"
	}
	return line
}

func countLine(r *notify.Repeats) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%s*", notify.Times(r.Count, r.More))
	if r.First != nil && r.Last != nil {
		layout, tok := "15:04", "{time}"
		if !sameDay(*r.First, *r.Last) {
			layout, tok = "2006-01-02 15:04", "{date_short} {time}"
		}
		fmt.Fprintf(&b, " between %s and %s", slackDate(*r.First, tok, layout+" MST"), slackDate(*r.Last, tok, layout+" MST"))
	}
	if len(r.PIDs) > 0 {
		b.WriteString(", pids " + r.PIDList(", "))
	}
	return b.String()
}

func sameDay(a, b time.Time) bool {
	a, b = a.UTC(), b.UTC()
	return a.YearDay() == b.YearDay() && a.Year() == b.Year()
}

// slackDate shows t in each reader's own time zone; the fallback (UTC) is
// what clients that cannot format dates display.
func slackDate(t time.Time, tokens, fallback string) string {
	return fmt.Sprintf("<!date^%d^%s|%s>", t.Unix(), tokens, t.UTC().Format(fallback))
}

func fields(ev *event.Event, host string) []Text {
	p := &ev.Process
	var fs []Text
	add := func(label, value string) {
		if len(fs) < maxFields && value != "" {
			fs = append(fs, mrkdwn(fit("*"+label+"*\n"+value, maxFieldText)))
		}
	}
	user := "uid " + strconv.FormatUint(uint64(p.UID), 10)
	if p.EUID != p.UID {
		user += ", euid " + strconv.FormatUint(uint64(p.EUID), 10)
	}
	if p.LoginUID != nil {
		user += " (login uid " + strconv.FormatUint(uint64(*p.LoginUID), 10) + ")"
	}
	if ev.KernelInvoked {
		user = "kernel"
	}
	add("User", user)
	proc := ""
	if p.Comm != "" || p.PID != 0 {
		proc = code(p.Comm) + " pid " + strconv.FormatUint(uint64(p.PID), 10)
	}
	if ev.Parent != nil {
		proc += "\nparent " + code(ev.Parent.Comm) + " pid " + strconv.FormatUint(uint64(ev.Parent.PID), 10)
	}
	add("Process", proc)
	add("Host", esc(notify.Chat.Visible(host)))
	switch {
	case p.Unit != "":
		add("Unit", code(p.Unit))
	case p.Cgroup != "":
		add("Cgroup", code(p.Cgroup))
	}
	if p.Cwd != "" {
		add("Working directory", code(p.Cwd))
	}
	if p.ContainerID != "" {
		add("Container", code(p.ContainerID))
	}
	return fs
}

func section(s string) Block {
	t := mrkdwn(fit(s, maxSectionText))
	return Block{Type: "section", Text: &t}
}

// esc escapes the three characters Slack treats as markup, so user text
// (argv, paths, comm) can never become a mention, link or date token.
func esc(s string) string {
	if !strings.ContainsAny(s, "&<>") {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// code renders user text as inline code: markup characters (* _ ~) stay
// literal inside it. A backtick would end the span, so it is shown as a
// look-alike (U+02CB).
func code(s string) string {
	if s == "" {
		return "`(none)`"
	}
	return "`" + esc(strings.ReplaceAll(notify.Chat.Visible(s), "`", "ˋ")) + "`"
}

func codeBlock(s string, limit int) string {
	return fit(esc(strings.ReplaceAll(s, "`", "ˋ")), limit)
}

// argv joins arguments as a shell would need them quoted.
func argv(args []string) string {
	if len(args) > maxArgs {
		args = args[:maxArgs]
	}
	return notify.Chat.ShellJoin(args)
}

// plain is for plain_text objects and the fallback: escaped, control
// characters spelled out, cut to limit.
func plain(s string, limit int) string { return fit(esc(notify.Chat.Visible(s)), limit) }

// width counts like Slack: UTF-16 code units.
func width(s string) int {
	n := 0
	for _, r := range s {
		if r > 0xffff {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// fit cuts already-escaped text to limit, marking the cut with "…". It
// never splits an entity (&amp;) or a date token (<!date^…>), and closes
// a code span or block the cut left open.
func fit(s string, limit int) string {
	if width(s) <= limit {
		return s
	}
	const ell = "…"
	budget := limit - 1
	cut, w := 0, 0
	for i, r := range s {
		rw := 1
		if r > 0xffff {
			rw = 2
		}
		if w+rw > budget {
			break
		}
		w += rw
		cut = i + utf8.RuneLen(r)
	}
	out := s[:cut]
	closer := ""
	for {
		// Back off to before a partial entity or date token, and drop a
		// trailing backtick run that may be half an opener.
		if amp := strings.LastIndexByte(out, '&'); amp >= 0 && !strings.Contains(out[amp:], ";") {
			out = out[:amp]
		}
		if lt := strings.LastIndexByte(out, '<'); lt >= 0 && !strings.Contains(out[lt:], ">") {
			out = out[:lt]
		}
		out = strings.TrimRight(out, "`")
		// Close a code block or span the cut left open.
		closer = ""
		if strings.Count(out, "```")%2 == 1 {
			closer = "```"
		} else if strings.Count(strings.ReplaceAll(out, "```", ""), "`")%2 == 1 {
			closer = "`"
		}
		if width(out)+1+len(closer) <= limit || out == "" {
			break
		}
		_, size := utf8.DecodeLastRuneInString(out)
		out = out[:len(out)-size]
	}
	return out + ell + closer
}
