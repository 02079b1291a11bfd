// SPDX-License-Identifier: Apache-2.0

// Package config loads /etc/execfaild.toml: the [probe] settings, the
// global pipeline stages ([filter], [dedup], [rate_limit], [spool],
// [redact]), the optional [metrics] endpoint and any number of
// [[sink.<kind>]] tables for every registered sink kind.
//
// Loading follows one order: start from the defaults, decode over them,
// reject every key nothing decoded, then validate. Every error names the
// file, the line and the key; no error or printed config shows a secret.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/execfaild/execfaild/internal/field"
	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/probe"
)

// DefaultPath is where the daemon looks when no file is named.
const DefaultPath = "/etc/execfaild.toml"

// journalSocket tells whether journald runs here; tests point it elsewhere.
var journalSocket = "/run/systemd/journal/socket"

// Config is the effective configuration, and the one list of the file's
// sections: reading, defaults and printing all follow its fields, so a new
// section is a field here (with its default in defaults, when it is not
// the zero value, and its check in normalize).
type Config struct {
	// File is where it was loaded from; empty for the built-in defaults.
	File string `toml:"-"`

	Probe probe.Config `toml:"probe"`
	// The pipeline's sections: [filter], [dedup], [rate_limit], [spool],
	// [redact], and Sinks in file order within each kind, kinds sorted by
	// name.
	notify.Config
	Metrics MetricsConfig `toml:"metrics"`

	// deprecated holds a line for each key written under a former name.
	deprecated []string
}

// Error is a configuration problem at a place in a file.
type Error struct {
	File string
	Line int    // 0 when the key is not in the file (a default)
	Key  string // dotted, with array indexes: "sink.slack[1].url"
	Err  error
}

// Error is one line whatever a key or value holds: a quoted TOML key may
// contain a newline, and the journal and check-config show one line per
// error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(oneLine(e.File))
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(oneLine(e.Key) + ": ")
	}
	b.WriteString(oneLine(e.Err.Error()))
	return b.String()
}

// oneLine escapes the characters that would end a line.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(s)
}

func (e *Error) Unwrap() error { return e.Err }

// fileFormat is the file's shape: Config, with the sinks undecoded until
// their kind is known.
type fileFormat struct {
	Config
	Sink map[string]toml.Primitive `toml:"sink"`
}

// MetricsConfig is [metrics]: the Prometheus endpoint. It stays off unless
// an address is given, because an open port is a choice the operator makes.
type MetricsConfig struct {
	// Listen is a host:port for /metrics; empty disables the endpoint.
	Listen string `toml:"listen"`
}

func defaults() *Config {
	return &Config{Probe: probe.DefaultConfig(), Config: notify.DefaultConfig()}
}

// Default is the configuration without a file: the global defaults and one
// sink, the journal when journald runs here and stdout otherwise.
func Default() (*Config, error) {
	c := defaults()
	e, err := defaultSink()
	if err != nil {
		return nil, err
	}
	c.Sinks = []notify.SinkEntry{e}
	if err := c.normalize(); err != nil {
		return nil, fmt.Errorf("built-in defaults: %w", err)
	}
	return c, nil
}

// defaultSink is where failures go when no sink is configured: a daemon
// that reports to nobody would be a silent failure of its own.
func defaultSink() (notify.SinkEntry, error) {
	kind := "stdout"
	if _, err := os.Stat(journalSocket); err == nil {
		if _, ok := notify.NewSinkConfig("journal"); ok {
			kind = "journal"
		}
	}
	sc, ok := notify.NewSinkConfig(kind)
	if !ok {
		return notify.SinkEntry{}, fmt.Errorf("default sink kind %q is not built in (known: %s)", kind, strings.Join(notify.SinkKinds(), ", "))
	}
	return notify.SinkEntry{Kind: kind, Config: sc}, nil
}

// Load reads the file at path. With an empty path it reads DefaultPath, and
// falls back to Default when that does not exist.
func Load(path string) (*Config, error) {
	explicit := path != ""
	if !explicit {
		path = DefaultPath
	}
	data, err := notify.ReadFileCapped(path, maxConfigBytes)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return Default()
		}
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	// Parse reads no files, so tests can parse text alone; the daemon
	// must refuse at load whatever building the sinks would refuse later.
	nc := c.Notify()
	if err := nc.CheckFiles(); err != nil {
		return nil, locate(path, scanLines(string(data)), err)
	}
	return c, nil
}

// maxConfigBytes is far above any real configuration; it keeps a wrong
// path from being read whole.
const maxConfigBytes = 4 << 20

var tomlLineErr = regexp.MustCompile(`^toml: (?:line (\d+) )?\(last key "([^"]*)"\): (.*)$`)

// Parse decodes and validates a configuration; file names it in errors.
func Parse(file string, data []byte) (*Config, error) {
	loc := scanLines(string(data))
	fail := func(key string, err error) error {
		return &Error{File: file, Line: loc.find(key), Key: key, Err: err}
	}
	raw := fileFormat{Config: *defaults()}
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&raw)
	if err != nil {
		return nil, decodeError(file, loc, "", err)
	}
	c := &raw.Config
	c.File = file
	if t := md.Type("sink"); t != "" && t != "Hash" {
		return nil, fail("sink", errors.New("must be tables: [[sink.<kind>]]"))
	}

	kinds := make([]string, 0, len(raw.Sink))
	for k := range raw.Sink {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, kind := range kinds {
		if _, ok := notify.NewSinkConfig(kind); !ok {
			return nil, fail("sink."+kind, fmt.Errorf("unknown sink kind (known: %s)", strings.Join(notify.SinkKinds(), ", ")))
		}
		if t := md.Type("sink", kind); t != "ArrayHash" {
			return nil, fail("sink."+kind, fmt.Errorf("write each sink as [[sink.%s]] (an array of tables), not %s", kind, tomlKind(t)))
		}
		var entries []toml.Primitive
		if err := md.PrimitiveDecode(raw.Sink[kind], &entries); err != nil {
			return nil, decodeError(file, loc, "sink."+kind, err)
		}
		for i, prim := range entries {
			sc, _ := notify.NewSinkConfig(kind)
			prefix := fmt.Sprintf("sink.%s[%d]", kind, i)
			if err := md.PrimitiveDecode(prim, sc); err != nil {
				return nil, decodeError(file, loc, prefix, err)
			}
			c.Sinks = append(c.Sinks, notify.SinkEntry{Kind: kind, Index: i, Config: sc})
		}
	}
	if len(c.Sinks) == 0 {
		e, err := defaultSink()
		if err != nil {
			return nil, &Error{File: file, Key: "sink", Err: err}
		}
		c.Sinks = []notify.SinkEntry{e}
	}
	if und := md.Undecoded(); len(und) > 0 {
		// Every misspelt key at once, one line each: an operator fixes
		// them in one edit, not one check-config run per key.
		errs := make([]error, len(und))
		for i, k := range und {
			errs[i] = fail(loc.indexed(k.String()), errors.New("unknown key"))
		}
		if len(errs) == 1 {
			return nil, errs[0]
		}
		return nil, errors.Join(errs...)
	}
	// Before validation: an example's placeholder is the one thing to
	// fix, whatever else its table lacks.
	if err := c.placeholders(file, loc); err != nil {
		return nil, err
	}
	if err := c.normalize(); err != nil {
		return nil, locate(file, loc, err)
	}
	c.deprecated = renamedKeys(file, loc, c.Sinks)
	return c, nil
}

// JournalNote is one sentence when the file's sinks leave the journal out,
// "" otherwise: a sink added to a file without a journal table takes the
// journal's place, which an operator reading journalctl would not expect.
// The configuration is legal; check-config and the start line say so.
func (c *Config) JournalNote() string {
	if c.File == "" {
		return ""
	}
	var kinds []string
	for _, e := range c.Sinks {
		if e.Kind == "journal" {
			return ""
		}
		if !slices.Contains(kinds, e.Kind) {
			kinds = append(kinds, e.Kind)
		}
	}
	return fmt.Sprintf("%s has no [[sink.journal]]: failures go to its %s sinks only, not to journalctl -u execfaild", c.File, strings.Join(kinds, ", "))
}

// Deprecated lists, one line each, the keys the file writes under a former
// name: they still work, and the daemon and check-config warn about them.
func (c *Config) Deprecated() []string { return c.deprecated }

func renamedKeys(file string, loc *lines, sinks []notify.SinkEntry) []string {
	var out []string
	for _, e := range sinks {
		kr, ok := e.Config.(notify.KeyRenamer)
		if !ok {
			continue
		}
		for _, r := range kr.RenamedKeys() {
			key := fmt.Sprintf("sink.%s[%d].%s", e.Kind, e.Index, r.Old)
			err := &Error{File: file, Line: loc.find(key), Key: key, Err: fmt.Errorf("former name of %s, still read: rename it", r.New)}
			out = append(out, err.Error())
		}
	}
	return out
}

func tomlKind(t string) string {
	if t == "Hash" || t == "" {
		return "a single [sink.<kind>] table"
	}
	return "a value of TOML type " + strings.ToLower(t)
}

// decodeError turns a decoder error into an *Error. prefix is the indexed
// table a Primitive was decoded from, because the decoder reports keys
// without indexes.
func decodeError(file string, loc *lines, prefix string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		key := pe.LastKey
		line := pe.Position.Line
		if prefix != "" {
			key = qualify(prefix, key)
			if n := loc.find(key); n > 0 && key != "" {
				line = n
			}
		} else if k := loc.keyAt(line); k != "" && indexRE.ReplaceAllString(k, "") == key {
			// A syntax error inside [[sink.x]]: name the entry.
			key = k
		}
		return &Error{File: file, Line: line, Key: key, Err: errors.New(scrub(key, strings.TrimPrefix(pe.Message, "toml: ")))}
	}
	if m := tomlLineErr.FindStringSubmatch(err.Error()); m != nil {
		key := m[2]
		if prefix != "" {
			key = qualify(prefix, key)
		}
		line, _ := strconv.Atoi(m[1])
		if n := loc.find(key); n > 0 && (line == 0 || prefix != "") {
			line = n
		}
		return &Error{File: file, Line: line, Key: key, Err: errors.New(scrub(key, m[3]))}
	}
	return &Error{File: file, Key: prefix, Err: errors.New(strings.TrimPrefix(err.Error(), "toml: "))}
}

var (
	secretKey = regexp.MustCompile(`(^|[._])(urls?|token|password|secret)($|[._])|(^|\.)headers\.`)
	quoted    = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'[^']*'`)
)

// scrub removes quoted text from a decoder message about a key that may
// hold a secret: a syntax error quotes the offending value, and a webhook
// URL with a typo is still a webhook URL.
func scrub(key, msg string) string {
	if !secretKey.MatchString(key) {
		return msg
	}
	return quoted.ReplaceAllString(msg, "<redacted>")
}

// qualify replaces the unindexed table part of a decoder key
// ("sink.slack.url") with the indexed one ("sink.slack[1].url").
func qualify(prefix, key string) string {
	plain := indexRE.ReplaceAllString(prefix, "")
	if rest, ok := strings.CutPrefix(key, plain); ok {
		return prefix + rest
	}
	if key == "" {
		return prefix
	}
	return prefix + "." + key
}

// locate turns a validation error into an *Error with file and line. Every
// validator names its key with a *field.Error; an error without one is about
// the table it came from, so it is placed at the table's line.
func locate(file string, loc *lines, err error) error {
	var se *notify.SinkError
	prefix := ""
	inner := err
	if errors.As(err, &se) {
		prefix = fmt.Sprintf("sink.%s[%d]", se.Kind, se.Index)
		inner = se.Err
	}
	key, msg := prefix, inner
	var fe *field.Error
	if errors.As(inner, &fe) {
		key, msg = join(prefix, fe.Key), fe.Err
	}
	return &Error{File: file, Line: loc.find(key), Key: key, Err: msg}
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// normalize validates and fills the per-sink settings from the global ones.
func (c *Config) normalize() error {
	// The probe's keys are already rooted at the file ("probe.mode").
	if err := c.Probe.Validate(); err != nil {
		return err
	}
	if err := validateMetrics(c.Metrics); err != nil {
		return err
	}
	return c.Config.Normalize()
}

// Notify returns the part of the configuration the pipeline is built from.
func (c *Config) Notify() notify.Config { return c.Config }

// validateMetrics checks [metrics] here rather than at listen time, so
// check-config and a reload reject a bad address before the daemon uses it.
func validateMetrics(m MetricsConfig) error {
	if m.Listen == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(m.Listen)
	if err != nil {
		return notify.Errorf("metrics.listen", "must be host:port, e.g. \"127.0.0.1:9577\": %w", err)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return notify.Errorf("metrics.listen", "port must be a number from 1 to 65535, not %q", port)
	}
	return nil
}

// WriteTOML prints the effective configuration; secrets print as
// <redacted>.
func (c *Config) WriteTOML(w io.Writer) error {
	type out struct {
		Config
		Sink map[string][]notify.SinkConfig `toml:"sink"`
	}
	o := out{Config: *c, Sink: map[string][]notify.SinkConfig{}}
	// The effective host, a defaulted one included: what every sink will
	// name this machine.
	o.Host = c.Hostname(notify.Env{})
	for _, e := range c.Sinks {
		o.Sink[e.Kind] = append(o.Sink[e.Kind], e.Config)
	}
	if err := toml.NewEncoder(w).Encode(o); err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	return nil
}
