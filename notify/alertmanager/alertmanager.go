// SPDX-License-Identifier: Apache-2.0

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
	"errors"
	"fmt"
	"net/http"
	"path"
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

// testResolve is how long the alert of execfaild test-sinks stays active.
const testResolve = time.Minute

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
	// URLs (or URLFiles, one URL per file) name the replicas of one
	// Alertmanager cluster: every alert goes to each (notify.Replicas).
	URLs     []notify.Secret `toml:"urls"`
	URLFiles []string        `toml:"url_files"`
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

// Validate implements notify.SinkConfig.
func (c *Config) Validate() error {
	if err := c.validateURLs(); err != nil {
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
		if err := notify.CheckLabel("labels."+name, name, v); err != nil {
			return err
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

// validateURLs checks that exactly one of url, url_file, urls and
// url_files is set, and the inline URLs, without quoting any of them.
func (c *Config) validateURLs() error {
	set := 0
	for _, n := range []int{len(c.URL), len(c.URLFile), len(c.URLs), len(c.URLFiles)} {
		if n > 0 {
			set++
		}
	}
	switch {
	case set > 1:
		return notify.Errorf("url", "set one of url, url_file, urls and url_files")
	case set == 0 && (c.URLs != nil || c.URLFiles != nil):
		return notify.Errorf("urls", "empty: list at least one Alertmanager")
	case set == 0:
		return notify.Errorf("url", "missing: set url, url_file, urls or url_files")
	case c.URL != "":
		return httpsink.CheckURL("url", c.URL)
	case len(c.URLs) > notify.MaxReplicas || len(c.URLFiles) > notify.MaxReplicas:
		return notify.Errorf("urls", "at most %d replicas", notify.MaxReplicas)
	}
	seen := map[notify.Secret]int{}
	for i, u := range c.URLs {
		if err := httpsink.CheckURL("urls", u); err != nil {
			return c.replicaError(i, err)
		}
		if j, dup := seen[u]; dup {
			return notify.Errorf("urls", "entries %d and %d are the same", j+1, i+1)
		}
		seen[u] = i
	}
	for i, f := range c.URLFiles {
		if f == "" {
			return notify.Errorf("url_files", "entry %d is empty", i+1)
		}
	}
	return nil
}

// targets resolves every replica's URL with the shared credentials.
func (c *Config) targets() ([]*httpsink.Target, error) {
	type source struct {
		url  notify.Secret
		file string
	}
	var srcs []source
	switch {
	case len(c.URLs) > 0:
		for _, u := range c.URLs {
			srcs = append(srcs, source{url: u})
		}
	case len(c.URLFiles) > 0:
		for _, f := range c.URLFiles {
			srcs = append(srcs, source{file: f})
		}
	default:
		srcs = []source{{c.URL, c.URLFile}}
	}
	var out []*httpsink.Target
	for i, s := range srcs {
		t, err := httpsink.Resolve(s.url, s.file, &c.Auth, &c.Settings)
		if err != nil {
			return nil, c.replicaError(i, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// replicaError renames the key of a replica's error: url_files entry 2
// rather than the url_file its file was read as.
func (c *Config) replicaError(i int, err error) error {
	var fe *notify.FieldError
	if len(c.URLs)+len(c.URLFiles) == 0 || !errors.As(err, &fe) {
		return err
	}
	key := "urls"
	if len(c.URLFiles) > 0 {
		key = "url_files"
	}
	if fe.Key != "url" && fe.Key != "url_file" && fe.Key != key {
		return err
	}
	return &notify.FieldError{Key: key, Err: fmt.Errorf("entry %d: %w", i+1, fe.Err)}
}

// CheckFiles implements notify.FileChecker.
func (c *Config) CheckFiles() error {
	_, err := c.targets()
	return err
}

// New implements notify.SinkConfig. Several URLs make notify.Replicas,
// one Sink per replica.
func (c *Config) New(env notify.Env) (notify.Sink, error) {
	ts, err := c.targets()
	if err != nil {
		return nil, err
	}
	if len(ts) == 1 {
		return c.sink(ts[0], httpsink.Label("alertmanager", c.Name), env), nil
	}
	rs := make(notify.Replicas, len(ts))
	for i, t := range ts {
		rs[i] = c.sink(t, fmt.Sprintf("%s replica %d", httpsink.Label("alertmanager", c.Name), i+1), env)
	}
	return rs, nil
}

func (c *Config) sink(t *httpsink.Target, label string, env notify.Env) *Sink {
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
		hold:           max(c.Dedup.Window.D(), 0),
		now:            time.Now,
		client: httpsink.New(httpsink.Options{
			Label:   label,
			Timeout: c.Timeout.D(),
			TLS:     t.TLS,
			Secrets: t.Secrets,
			Logger:  env.Logger,
		}),
	}
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
	// hold is the sink's dedup window: repeats of a failure within it
	// come as one digest when it ends, so an alert must stay active that
	// long past each notification, or it resolves mid-storm and fires
	// again with the digest.
	hold   time.Duration
	client *httpsink.Client
	now    func() time.Time
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
	// No notification comes for repeats until the dedup window ends:
	// endsAt covers that wait, then resolve_timeout as Alertmanager's own
	// clients give it, so an alert resolves only once its failures have
	// stopped, never in the middle of a storm.
	end = end.Add(s.hold + s.resolveTimeout)
	if ev.Test {
		// A test alert resolves itself soon, whatever resolve_timeout.
		end = start.Add(testResolve)
	}

	// The fleet's labels first; a sink's own labels win over them.
	labels := map[string]string{}
	for k, v := range ev.Labels {
		labels[k] = label(v)
	}
	for k, v := range s.labels {
		labels[k] = v
	}
	put := func(k, v string) {
		if v != "" {
			labels[k] = label(v)
		}
	}
	put("alertname", AlertName)
	if ev.Test {
		// A label a route or an inhibit rule can match on.
		put("test", "true")
	}
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
	if d.Test {
		summary = notify.TestMark + summary
	}
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
