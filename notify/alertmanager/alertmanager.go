// Package alertmanager posts failed execs to Prometheus Alertmanager's v2
// API (POST /api/v2/alerts).
//
// Labels are stable — alertname=ExecFailed, host, error, binary, unit,
// cause (the diagnosis code, for a fleet to group and route by) and any
// configured extras — so Alertmanager's own grouping, inhibition and
// silences work across a fleet, and a repeat of the same failure updates
// one alert instead of opening another. Everything that changes between
// repeats (pid, argv, counts, times) goes into annotations; the
// diagnosis's sentence is the cause_text annotation (and part of
// description). endsAt is set
// resolve_timeout ahead, so an alert resolves by itself once the failures
// stop and is extended while they continue.
package alertmanager

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/notify/httpsink"
	"github.com/execfaild/execfaild/probe/event"
)

// AlertName is the alertname label of every alert this sink sends.
const AlertName = "ExecFailed"

// DefaultResolveTimeout matches Alertmanager's own resolve_timeout.
const DefaultResolveTimeout = 5 * time.Minute

// maxResolveTimeout keeps an alert from firing for longer than a week
// after its last failure.
const maxResolveTimeout = 7 * 24 * time.Hour

// Annotation values longer than this are cut: Alertmanager keeps every
// active alert in memory and templates render them whole.
const maxAnnotation = 4096

const apiPath = "/api/v2/alerts"

// Config is one [[sink.alertmanager]] table.
type Config struct {
	notify.SinkCommon
	// URL is Alertmanager's base URL (http://alertmanager:9093, plus any
	// route prefix); /api/v2/alerts is appended unless already there.
	URL     notify.Secret `toml:"url"`
	URLFile string        `toml:"url_file"`
	// ResolveTimeout is how long after the last notification the alert
	// stays firing.
	ResolveTimeout notify.Duration `toml:"resolve_timeout"`
	// Labels are added to every alert (severity, team, environment).
	Labels map[string]string `toml:"labels"`
	// GeneratorURL links each alert back to a dashboard or runbook.
	GeneratorURL string `toml:"generator_url"`
	httpsink.Auth
	httpsink.Settings
}

func init() {
	notify.RegisterSink("alertmanager", func() notify.SinkConfig {
		return &Config{ResolveTimeout: notify.Duration(DefaultResolveTimeout)}
	})
}

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// builtinLabels are set from the event and cannot be configured.
var builtinLabels = []string{"alertname", "host", "error", "binary", "unit", "cause"}

// Validate implements notify.SinkConfig.
func (c *Config) Validate() error {
	if err := httpsink.RequireURL(c.URL, c.URLFile); err != nil {
		return err
	}
	if c.ResolveTimeout == 0 {
		c.ResolveTimeout = notify.Duration(DefaultResolveTimeout)
	}
	if c.ResolveTimeout.D() > maxResolveTimeout {
		return notify.Errorf("resolve_timeout", "must be at most %s, not %s", maxResolveTimeout, c.ResolveTimeout.D())
	}
	if c.ResolveTimeout < 0 {
		return notify.Errorf("resolve_timeout", "must be a positive duration")
	}
	for name, v := range c.Labels {
		key := "labels." + name
		switch {
		case !labelNameRE.MatchString(name) || strings.HasPrefix(name, "__"):
			return notify.Errorf(key, "%q is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, no leading __)", name)
		case contains(builtinLabels, name):
			return notify.Errorf(key, "%s is set by execfaild", name)
		case v == "" || !utf8.ValidString(v):
			return notify.Errorf(key, "value must be non-empty UTF-8")
		}
	}
	if c.GeneratorURL != "" {
		if err := httpsink.CheckURL("generator_url", notify.Secret(c.GeneratorURL)); err != nil {
			return err
		}
	}
	if err := c.Auth.Validate(); err != nil {
		return err
	}
	return c.Settings.Validate()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// CheckFiles implements notify.FileChecker.
func (c *Config) CheckFiles() error {
	_, err := httpsink.Resolve(c.URL, c.URLFile, &c.Auth, &c.Settings)
	return err
}

// New implements notify.SinkConfig.
func (c *Config) New(env notify.Env) (notify.Sink, error) {
	t, err := httpsink.Resolve(c.URL, c.URLFile, &c.Auth, &c.Settings)
	if err != nil {
		return nil, err
	}
	rt := c.ResolveTimeout.D()
	if rt <= 0 {
		rt = DefaultResolveTimeout
	}
	return &Sink{
		url:            endpoint(t.URL.Reveal()),
		header:         t.Header,
		labels:         c.Labels,
		generatorURL:   c.GeneratorURL,
		resolveTimeout: rt,
		now:            time.Now,
		client: httpsink.New(httpsink.Options{
			Label:   httpsink.Label("alertmanager", c.Name),
			Timeout: c.Timeout.D(),
			TLS:     t.TLS,
			Secrets: t.Secrets,
			Logger:  env.Logger,
		}),
	}, nil
}

// endpoint appends the API path to a base URL, keeping any query.
func endpoint(base string) string {
	q := ""
	if i := strings.IndexByte(base, '?'); i >= 0 {
		base, q = base[:i], base[i:]
	}
	base = strings.TrimRight(base, "/")
	if !strings.HasSuffix(base, apiPath) {
		base += apiPath
	}
	return base + q
}

// Sink posts to one Alertmanager.
type Sink struct {
	url            string
	header         http.Header
	labels         map[string]string
	generatorURL   string
	resolveTimeout time.Duration
	client         *httpsink.Client
	now            func() time.Time
}

// Alert is a PostableAlert of the v2 API.
type Alert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// Alert builds the alert for ev at the sink's clock.
func (s *Sink) Alert(ev *event.Event) Alert {
	now := s.now().UTC()
	start := ev.Time
	if ev.FirstSeen != nil {
		start = *ev.FirstSeen
	}
	if start.IsZero() {
		start = now
	}
	start = start.UTC()
	// Alertmanager rejects endsAt before startsAt; a clock step back on
	// this host must not turn a failure into a rejected alert.
	end := now
	if start.After(end) {
		end = start
	}
	end = end.Add(s.resolveTimeout)

	labels := map[string]string{}
	for k, v := range s.labels {
		labels[k] = v
	}
	put := func(k, v string) {
		if v != "" {
			labels[k] = label(v)
		}
	}
	put("alertname", AlertName)
	put("host", ev.Host)
	put("error", ev.Error)
	put("binary", ev.ResolvedPath())
	put("unit", ev.Process.Unit)
	put("cause", ev.Cause)

	return Alert{
		Labels:       labels,
		Annotations:  annotations(ev),
		StartsAt:     start,
		EndsAt:       end,
		GeneratorURL: s.generatorURL,
	}
}

// label keeps a value valid for Alertmanager (UTF-8) and readable.
func label(v string) string { return notify.Chat.Visible(v) }

func annotations(ev *event.Event) map[string]string {
	a := map[string]string{}
	put := func(k, v string) {
		if v == "" {
			return
		}
		v = notify.Chat.Visible(v)
		if len(v) > maxAnnotation {
			cut := maxAnnotation
			for cut > 0 && !utf8.RuneStart(v[cut]) {
				cut--
			}
			v = v[:cut] + "…"
		}
		a[k] = v
	}
	p := &ev.Process
	d := notify.Describe(ev)
	what := d.Subject.Program
	if d.Subject.Several {
		what = "several programs"
	}
	errName := d.Error.Name
	if d.Error.Several {
		errName = "several errors"
	}
	summary := fmt.Sprintf("%s failed on %s: %s", path.Base(what), ev.Host, errName)
	if d.Error.Text != "" {
		summary += " (" + d.Error.Text + ")"
	}
	put("summary", summary)
	put("description", description(&d, what))
	put("cause_text", ev.CauseText)
	if ev.CauseInferred {
		put("cause_inferred", "true")
	}

	put("path", ev.Path)
	put("interpreter", ev.InterpreterPath)
	put("argv", notify.Chat.ShellJoin(ev.Arguments))
	if ev.ArgumentsTruncated {
		put("argv_truncated", "true")
	}
	if ev.ArgumentsRedacted {
		put("argv_redacted", "true")
	}
	put("comm", p.Comm)
	put("pid", strconv.FormatUint(uint64(p.PID), 10))
	put("uid", strconv.FormatUint(uint64(p.UID), 10))
	if p.LoginUID != nil {
		put("loginuid", strconv.FormatUint(uint64(*p.LoginUID), 10))
	}
	put("cwd", p.Cwd)
	put("cgroup", p.Cgroup)
	put("container_id", p.ContainerID)
	if ev.Parent != nil {
		put("parent", fmt.Sprintf("%s (pid %d)", ev.Parent.Comm, ev.Parent.PID))
	}
	put("syscall", ev.Syscall)
	put("stage", ev.Stage)
	put("errno", strconv.Itoa(int(-ev.ReturnValue)))
	put("count", strconv.FormatUint(max(ev.Count, 1), 10))
	if !ev.Time.IsZero() {
		put("time", ev.Time.UTC().Format(time.RFC3339Nano))
	}
	if ev.FirstSeen != nil {
		put("first_seen", ev.FirstSeen.UTC().Format(time.RFC3339Nano))
	}
	if ev.LastSeen != nil {
		put("last_seen", ev.LastSeen.UTC().Format(time.RFC3339Nano))
	}
	if len(ev.PIDs) > 0 {
		ps := make([]string, len(ev.PIDs))
		for i, pid := range ev.PIDs {
			ps[i] = strconv.FormatUint(uint64(pid), 10)
		}
		put("pids", strings.Join(ps, " "))
	}
	if len(ev.Tried) > 0 {
		put("path_search_tried", strings.Join(ev.Tried, ":"))
	}
	return a
}

// description is the annotation telling what happened in sentences; put
// makes it printable as a whole.
func description(d *notify.Description, what string) string {
	var b strings.Builder
	if d.Caller.Kernel {
		fmt.Fprintf(&b, "The kernel could not execute %s: %s", what, d.Error.Text)
	} else {
		comm := d.Caller.Comm
		if comm == "" {
			comm = "several commands"
		}
		if d.Caller.PID != 0 {
			fmt.Fprintf(&b, "%s (pid %d, uid %d", comm, d.Caller.PID, d.Who.UID)
		} else {
			fmt.Fprintf(&b, "%s (uid %d", comm, d.Who.UID)
		}
		if d.Who.Unit != "" {
			fmt.Fprintf(&b, ", %s", d.Who.Unit)
		}
		fmt.Fprintf(&b, ") could not execute %s: %s", what, d.Error.Text)
	}
	for _, dt := range d.Details {
		switch dt.Kind {
		case notify.DetailInterpreter:
			fmt.Fprintf(&b, "; its #! line names the interpreter %s", notify.Chat.Visible(d.Interpreter.Path))
			if strings.HasSuffix(d.Interpreter.Path, "\r") {
				b.WriteString(" (Windows line endings)")
			}
		case notify.DetailPathSearch:
			fmt.Fprintf(&b, "; searched %s", strings.Join(d.Tried, ":"))
		case notify.DetailArgumentsTruncated, notify.DetailRepeats:
			// The argv_truncated annotation says the first; the second
			// is a sentence of its own, below.
		default:
			b.WriteString("; " + dt.Join(notify.Chat.Visible))
		}
	}
	b.WriteString(".")
	if r := d.Repeats; r != nil {
		b.WriteString(" " + notify.Times(r.Count, r.More))
		if r.Count > 1 && r.First != nil && r.Last != nil {
			fmt.Fprintf(&b, " between %s and %s.", r.First.UTC().Format(time.RFC3339), r.Last.UTC().Format(time.RFC3339))
		} else {
			b.WriteString(".")
		}
	}
	return b.String()
}

// Payload is the request body for ev.
func (s *Sink) Payload(ev *event.Event) ([]byte, error) {
	b, err := json.Marshal([]Alert{s.Alert(ev)})
	if err != nil {
		return nil, fmt.Errorf("encode alert: %w", err)
	}
	return b, nil
}

// Send implements notify.Sink.
func (s *Sink) Send(ctx context.Context, ev *event.Event) error {
	body, err := s.Payload(ev)
	if err != nil {
		return notify.Permanent(err)
	}
	return s.client.Post(ctx, s.url, body, s.header, nil)
}

// Close implements notify.Sink.
func (s *Sink) Close() error {
	s.client.Close()
	return nil
}
