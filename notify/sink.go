// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"

	"github.com/execfaild/execfaild/probe/event"
)

// Sink delivers notifications to one destination. Send is called from the
// sink's own worker goroutine only, never concurrently. A notification with
// ev.Count > 1 (ev.Digest) stands for several failures and must say so.
//
// Send returns nil when the destination accepted the notification, an error
// wrapped with Permanent when retrying cannot help (HTTP 400/404/410, a
// message the destination rejects), and any other error when a later retry
// may succeed (the worker spools or retries it). A destination that refuses
// the sink's credentials (HTTP 401/403) is the sink's fault, not the
// notification's: such an error is also wrapped with Unauthorized, and the
// worker keeps the notification spooled until the credentials work again
// (a reload). Errors must never contain a secret (webhook URL, token):
// redact before wrapping.
//
// Send returns soon after ctx ends, whatever it is blocked on (dial, write,
// reconnect, a destination that never reads): the shutdown gives the sinks
// a drain deadline within systemd's stop timeout, and only a Send that
// returns lets the worker spool what is still queued.
type Sink interface {
	Send(ctx context.Context, ev *event.Event) error
	Close() error
}

// SinkConfig is one [[sink.<kind>]] entry of the configuration. Each sink
// package defines its own type and registers it with RegisterSink.
type SinkConfig interface {
	// Common returns the settings every sink has (name, filter, limits).
	Common() *SinkCommon
	// Validate checks the entry after decoding and defaults; errors name
	// the key ("url: scheme must be http or https").
	Validate() error
	// New builds the sink. It may read secret files but must not contact
	// the destination (that is what test-sinks is for).
	New(env Env) (Sink, error)
}

// FileChecker is implemented by sink configs whose New reads files
// (secrets, TLS material). CheckFiles reads them the way New would without
// building anything, so check-config and a reload refuse what New would.
type FileChecker interface {
	CheckFiles() error
}

// KeyRenamer is implemented by sink configs that still read keys under a
// former name. RenamedKeys lists the former names the entry used, so
// loading can warn about each.
type KeyRenamer interface {
	RenamedKeys() []RenamedKey
}

// RenamedKey is a key read under its former name Old; New is its name now.
type RenamedKey struct{ Old, New string }

// CheckFiles reads every file the sinks name, as building them would.
// Errors are *SinkError, like Normalize's.
func (c *Config) CheckFiles() error {
	for _, e := range c.Sinks {
		if fc, ok := e.Config.(FileChecker); ok {
			if err := fc.CheckFiles(); err != nil {
				return &SinkError{Kind: e.Kind, Index: e.Index, Err: err}
			}
		}
	}
	return nil
}

// Env is what a sink gets from the daemon.
type Env struct {
	Host   string       // hostname reported in events
	Logger *slog.Logger // never log a secret through it
}

// SinkCommon is embedded (flattened) into every sink's config type.
type SinkCommon struct {
	Name string `toml:"name"`
	// The per-sink pipeline stages; zero values mean the global defaults.
	Filter    FilterConfig    `toml:"filter"`
	Dedup     DedupConfig     `toml:"dedup"`
	RateLimit RateLimitConfig `toml:"rate_limit"`
	QueueSize int             `toml:"queue_size"`
}

// Common implements SinkConfig for every type that embeds SinkCommon.
func (c *SinkCommon) Common() *SinkCommon { return c }

var (
	registryMu sync.Mutex
	registry   = map[string]func() SinkConfig{}
)

// RegisterSink makes a sink kind available as [[sink.<kind>]]. newConfig
// returns a fresh config holding the kind's defaults. Sink packages call it
// from init.
func RegisterSink(kind string, newConfig func() SinkConfig) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[kind]; dup {
		panic("notify: sink kind registered twice: " + kind)
	}
	registry[kind] = newConfig
}

// NewSinkConfig returns the defaults of a registered kind.
func NewSinkConfig(kind string) (SinkConfig, bool) {
	registryMu.Lock()
	defer registryMu.Unlock()
	f, ok := registry[kind]
	if !ok {
		return nil, false
	}
	return f(), true
}

// SinkKinds lists the registered kinds, sorted.
func SinkKinds() []string {
	registryMu.Lock()
	defer registryMu.Unlock()
	kinds := make([]string, 0, len(registry))
	for k := range registry {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return kinds
}

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth a retry.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent tells whether err (or anything it wraps) was marked Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

type unauthorizedError struct{ err error }

func (e unauthorizedError) Error() string { return e.err.Error() }
func (e unauthorizedError) Unwrap() error { return e.err }

// Unauthorized marks err as the destination refusing the sink's
// credentials. Such a failure repeats until an operator fixes the
// configuration, but the notification itself is fine: the worker keeps it
// and everything after it spooled, and shows the sink as failing, so the
// reload that fixes the credentials delivers the backlog.
func Unauthorized(err error) error {
	if err == nil {
		return nil
	}
	return unauthorizedError{err}
}

// IsUnauthorized tells whether err (or anything it wraps) was marked
// Unauthorized.
func IsUnauthorized(err error) bool {
	var u unauthorizedError
	return errors.As(err, &u)
}
