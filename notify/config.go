// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/execfaild/execfaild/internal/field"
)

// Config is what a Pipeline is built from: the global stages and the sinks,
// as the [filter], [dedup], [rate_limit], [spool], [redact] and [[sink.<kind>]]
// sections of the configuration file describe them. The file's loader
// embeds it, so a global stage's section is named here alone.
type Config struct {
	// Host names this machine in every notification (syslog HOSTNAME, the
	// host field and label); empty means Env.Host, else the hostname. A
	// top-level key of the file.
	Host string `toml:"host,omitempty"`
	// Labels are the [labels] section: static labels (site, role, …)
	// every notification carries.
	Labels    map[string]string     `toml:"labels,omitempty"`
	Filter    FilterConfig          `toml:"filter"`
	Dedup     DedupConfig           `toml:"dedup"`
	RateLimit GlobalRateLimitConfig `toml:"rate_limit"`
	Spool     SpoolConfig           `toml:"spool"`
	Redact    RedactConfig          `toml:"redact"`
	// Sinks come from [[sink.<kind>]] tables, decoded by kind.
	Sinks []SinkEntry `toml:"-"`
}

// SinkEntry is one [[sink.<kind>]] table.
type SinkEntry struct {
	Kind string
	// Index is the entry's position among the tables of its kind, from 0.
	Index  int
	Config SinkConfig
}

// ID names the sink in logs, stats and the spool directory: "<kind>-<name>".
func (e SinkEntry) ID() string { return e.Kind + "-" + e.Config.Common().Name }

// DefaultConfig returns the global stages a fresh install runs with and no
// sinks.
func DefaultConfig() Config {
	return Config{
		Filter:    DefaultFilter(),
		Dedup:     DefaultDedup(),
		RateLimit: DefaultRateLimit(),
		Spool:     DefaultSpool(),
		Redact:    DefaultRedact(),
	}
}

// SinkError is a problem with one sink entry. Err is often a *FieldError
// whose key is relative to the entry's table.
type SinkError struct {
	Kind  string
	Index int
	Err   error
}

func (e *SinkError) Error() string {
	return fmt.Sprintf("sink.%s[%d]: %v", e.Kind, e.Index, e.Err)
}
func (e *SinkError) Unwrap() error { return e.Err }

var sinkNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Normalize validates the configuration and fills every unset per-sink
// setting from the global sections (or from the sink kind's own default
// rate limit), so the result is the effective configuration. Errors about
// a global section are *FieldError with the section in the key
// ("dedup.window"); errors about a sink are *SinkError.
func (c *Config) Normalize() error {
	if err := c.validateIdentity(); err != nil {
		return err
	}
	if err := c.validateGlobal(); err != nil {
		return err
	}
	names := newSinkNames(c.Sinks)
	for i := range c.Sinks {
		e := &c.Sinks[i]
		if err := c.normalizeSink(e, names); err != nil {
			return &SinkError{Kind: e.Kind, Index: e.Index, Err: err}
		}
	}
	return nil
}

// validateGlobal checks the global sections, each error keyed by its
// section.
func (c *Config) validateGlobal() error {
	for _, s := range []struct {
		key string
		v   interface{ Validate() error }
	}{
		{"filter", &c.Filter},
		{"dedup", &c.Dedup},
		{"rate_limit", &c.RateLimit},
		{"spool", &c.Spool},
		{"redact", &c.Redact},
	} {
		if err := s.v.Validate(); err != nil {
			return prefixKey(s.key, err)
		}
	}
	return nil
}

// normalizeSink names one sink, fills what it leaves unset from the
// global sections and validates it; errors are relative to its table.
func (c *Config) normalizeSink(e *SinkEntry, names *sinkNames) error {
	if e.Config == nil {
		return errors.New("no configuration")
	}
	com := e.Config.Common()
	if err := names.assign(e); err != nil {
		return err
	}
	if err := com.Filter.Validate(); err != nil {
		return prefixKey("filter", err)
	}
	inheritDedup(&com.Dedup, c.Dedup)
	if err := com.Dedup.Validate(); err != nil {
		return prefixKey("dedup", err)
	}
	def := c.RateLimit.RateLimitConfig
	if rd, ok := e.Config.(RateLimitDefaulter); ok {
		def = rd.DefaultRateLimit()
	}
	inheritRateLimit(&com.RateLimit, def)
	if err := com.RateLimit.Validate(); err != nil {
		return prefixKey("rate_limit", err)
	}
	if com.QueueSize == 0 {
		com.QueueSize = DefaultQueueSize
	}
	// The queue is allocated whole at start: an absurd size would
	// panic or exhaust memory in run after check-config accepted it.
	if err := inRange("queue_size", int64(com.QueueSize), 1, MaxQueueSize); err != nil {
		return err
	}
	if d, ok := e.Config.(Defaulter); ok {
		d.ApplyDefaults()
	}
	return e.Config.Validate()
}

// sinkNames gives sinks without a name one and refuses a name used twice
// within a kind.
type sinkNames struct {
	perKind map[string]int // sinks of each kind
	seen    map[string]int // index of the sink holding each ID
}

func newSinkNames(sinks []SinkEntry) *sinkNames {
	n := &sinkNames{perKind: map[string]int{}, seen: map[string]int{}}
	for _, e := range sinks {
		n.perKind[e.Kind]++
	}
	return n
}

// assign names e after its kind when it has no name: "journal", or
// "journal-2" when the kind has several.
func (n *sinkNames) assign(e *SinkEntry) error {
	com := e.Config.Common()
	if com.Name == "" {
		com.Name = e.Kind
		if n.perKind[e.Kind] > 1 {
			com.Name = e.Kind + "-" + strconv.Itoa(e.Index+1)
		}
	}
	if !sinkNameRE.MatchString(com.Name) {
		return Errorf("name", "%q: use letters, digits, '.', '_' and '-' (it names the spool directory)", com.Name)
	}
	if prev, dup := n.seen[e.ID()]; dup {
		return Errorf("name", "%q is already used by sink.%s[%d]", com.Name, e.Kind, prev)
	}
	n.seen[e.ID()] = e.Index
	return nil
}

// inheritDedup fills the dedup settings a sink leaves unset from the
// global ones.
func inheritDedup(d *DedupConfig, global DedupConfig) {
	if d.Window == 0 {
		d.Window = global.Window
	}
	if d.Keys == nil {
		d.Keys = append([]string(nil), global.Keys...)
	}
	if d.MaxPIDs == 0 {
		d.MaxPIDs = global.MaxPIDs
	}
	if d.MaxKeys == 0 {
		d.MaxKeys = global.MaxKeys
	}
	if d.MaxBytes == 0 {
		d.MaxBytes = global.MaxBytes
	}
}

// inheritRateLimit fills the rate limit a sink leaves unset from def.
func inheritRateLimit(r *RateLimitConfig, def RateLimitConfig) {
	if r.Rate == 0 {
		r.Rate = def.Rate
	}
	if r.Burst == 0 {
		r.Burst = def.Burst
	}
}

// FieldError is the one validation error type, field.Error, under notify's
// name, so a sink imports notify alone.
type FieldError = field.Error

// Errorf returns a FieldError for key.
func Errorf(key, format string, args ...any) error { return field.Errorf(key, format, args...) }

// prefixKey puts a table prefix in front of the key of a FieldError, so
// nested validation reports the full relative key ("dedup.window").
func prefixKey(prefix string, err error) error {
	if err == nil {
		return nil
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return &FieldError{Key: prefix + "." + fe.Key, Err: fe.Err}
	}
	return &FieldError{Key: prefix, Err: err}
}
