// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/execfaild/execfaild/probe/event"
	"golang.org/x/sys/unix"
)

// Duration is a time.Duration written as in Go ("500ms", "10m"). Zero means
// "not set, use the default"; Off ("off" in the file) disables the stage.
type Duration time.Duration

// Off disables a stage whose setting is a Duration or a Rate.
const Off = -1

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) MarshalText() ([]byte, error) {
	if d == Off {
		return []byte("off"), nil
	}
	return []byte(time.Duration(d).String()), nil
}

func (d *Duration) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "off" {
		*d = Off
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q (want e.g. \"500ms\", \"10m\" or \"off\")", s)
	}
	if v < 0 {
		return fmt.Errorf("duration %q must be positive (or \"off\")", s)
	}
	// "0s" is how an unset Duration prints; it reads back as unset.
	*d = Duration(v)
	return nil
}

// Rate is a number of notifications per second, written "10/s", "30/m",
// "100/h". Zero means "not set, use the default"; Off disables the limit.
type Rate float64

// PerSecond returns the rate in notifications per second.
func (r Rate) PerSecond() float64 { return float64(r) }

func (r Rate) MarshalText() ([]byte, error) {
	if r == Off {
		return []byte("off"), nil
	}
	// The unit in which the count is a whole number reads best ("100/h"
	// rather than "1.666667/m"); otherwise the largest count below 1/s.
	for _, u := range []struct {
		per  float64
		name string
	}{{1, "s"}, {60, "m"}, {3600, "h"}} {
		n := float64(r) * u.per
		if math.Abs(n-math.Round(n)) < 1e-6 {
			return []byte(strconv.FormatFloat(math.Round(n), 'g', -1, 64) + "/" + u.name), nil
		}
	}
	switch {
	case r >= 1:
		return []byte(strconv.FormatFloat(float64(r), 'g', 6, 64) + "/s"), nil
	case r*60 >= 1:
		return []byte(strconv.FormatFloat(float64(r)*60, 'g', 6, 64) + "/m"), nil
	}
	return []byte(strconv.FormatFloat(float64(r)*3600, 'g', 6, 64) + "/h"), nil
}

func (r *Rate) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "off" {
		*r = Off
		return nil
	}
	num, unit, ok := strings.Cut(s, "/")
	if !ok {
		return fmt.Errorf("invalid rate %q (want e.g. \"1/s\", \"30/m\", \"100/h\" or \"off\")", s)
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	// "0/s" is how an unset Rate prints; it reads back as unset.
	if err != nil || n < 0 || math.IsInf(n, 0) || math.IsNaN(n) {
		return fmt.Errorf("invalid rate %q: count must be a positive number", s)
	}
	switch strings.TrimSpace(unit) {
	case "s":
	case "m":
		n /= 60
	case "h":
		n /= 3600
	default:
		return fmt.Errorf("invalid rate %q: unit must be s, m or h", s)
	}
	*r = Rate(n)
	return nil
}

// FilterConfig selects which failures are reported. A failure passes when,
// for every include list that is set, one entry matches, and no exclude
// entry matches. Globs use path.Match syntax; a pattern ending in "/**"
// matches everything below that directory, and a path pattern without a "/"
// matches the program's base name. The global [filter] runs first; a sink's
// filter can only narrow what reaches that sink.
type FilterConfig struct {
	// Errors are errno names ("ENOENT", "EACCES").
	Errors        []string `toml:"errors"`
	ExcludeErrors []string `toml:"exclude_errors"`
	// Paths match the resolved program path (the binary exec opened, else
	// the caller's path resolved against its cwd).
	Paths        []string `toml:"paths"`
	ExcludePaths []string `toml:"exclude_paths"`
	// Comms match the caller's comm (its 15-byte task name).
	Comms        []string `toml:"comms"`
	ExcludeComms []string `toml:"exclude_comms"`
	UIDs         []uint32 `toml:"uids"`
	ExcludeUIDs  []uint32 `toml:"exclude_uids"`
	// Units match the caller's systemd unit ("cron.service").
	Units        []string `toml:"units"`
	ExcludeUnits []string `toml:"exclude_units"`
	// Cgroups match the caller's cgroup path ("/system.slice/*").
	Cgroups        []string `toml:"cgroups"`
	ExcludeCgroups []string `toml:"exclude_cgroups"`
	// Causes are diagnosis codes (event.Causes: "interpreter-crlf",
	// "not-found-in-path"). A failure without a cause matches no entry.
	Causes        []string `toml:"causes"`
	ExcludeCauses []string `toml:"exclude_causes"`
	// KernelInvoked is "include" (default: report both), "only" (just
	// failed usermode helpers) or "exclude".
	KernelInvoked string `toml:"kernel_invoked"`
}

// DedupConfig folds repeats of the same failure. The first occurrence of a
// key is sent at once; repeats within Window are counted, and when the
// window ends one digest (Digest, Count, FirstSeen, LastSeen, PIDs) goes out.
type DedupConfig struct {
	Window Duration `toml:"window"`
	// Keys are the fields two failures must share to be repeats; see
	// DedupKeys for the names.
	Keys []string `toml:"keys"`
	// MaxPIDs bounds the pid list of a digest.
	MaxPIDs int `toml:"max_pids"`
	// MaxKeys and MaxBytes bound how many distinct failures are tracked per
	// sink and the memory their samples take. When the table is full, a
	// new key of a user holding fewer keys than the biggest holder ends
	// one of that holder's windows early (its digest goes out); otherwise
	// the failure is folded into its user's combined digest.
	MaxKeys  int   `toml:"max_keys"`
	MaxBytes int64 `toml:"max_bytes"`
}

// RateLimitConfig is a token bucket: Rate notifications per second on
// average, Burst at once. What it holds back is folded into the next digest.
type RateLimitConfig struct {
	Rate  Rate `toml:"rate"`
	Burst int  `toml:"burst"`
}

// GlobalRateLimitConfig is the [rate_limit] section: the default bucket of
// every sink plus a cap on all sinks together.
type GlobalRateLimitConfig struct {
	RateLimitConfig
	GlobalRate  Rate `toml:"global_rate"`
	GlobalBurst int  `toml:"global_burst"`
}

// SpoolConfig is the [spool] section: where notifications a sink could not
// deliver wait for its recovery, across restarts.
type SpoolConfig struct {
	Dir string `toml:"dir"`
	// MaxBytes and MaxEntries bound each sink's spool; when full, the oldest
	// entries are merged into the next one so their counts survive.
	MaxBytes   int64 `toml:"max_bytes"`
	MaxEntries int   `toml:"max_entries"`
	// RetryInitial and RetryMax bound the backoff between delivery attempts
	// while a sink is failing.
	RetryInitial Duration `toml:"retry_initial"`
	RetryMax     Duration `toml:"retry_max"`
}

// DedupKeys are the field names DedupConfig.Keys accepts.
var DedupKeys = []string{
	"uid", "euid", "gid", "error", "binary", "path", "interpreter", "comm", "exe",
	"unit", "cgroup", "container", "syscall", "stage", "parent_comm", "kernel_invoked", "host", "cause",
}

// RateLimitDefaulter is implemented by sink configs whose destination
// wants a tighter (or looser) default limit than the global one; Slack, for
// instance, accepts about one message per second per webhook.
type RateLimitDefaulter interface {
	DefaultRateLimit() RateLimitConfig
}

// Defaulter is implemented by sink configs with settings whose zero value
// stands for a default (a timeout, a size that depends on the transport).
// Normalize calls ApplyDefaults before Validate, so the configuration it
// returns, and check-config prints, holds the values the sink will use
// rather than a "0s" that means something else.
type Defaulter interface {
	ApplyDefaults()
}

// DefaultQueueSize is the per-sink delivery queue length when unset.
const DefaultQueueSize = 1024

// Upper bounds of the numeric settings. Each keeps what one setting can
// make the daemon allocate or wait for within what a host can afford;
// the man page lists them.
const (
	// MaxQueueSize bounds a delivery queue: it is allocated at start, and
	// every entry can pin an event of several kilobytes.
	MaxQueueSize = 65536
	// MaxKeysLimit bounds the dedup table of one sink.
	MaxKeysLimit = 1_000_000
	// MinDedupBytes holds the largest sample a key can have (bounded
	// strings, no environment); MaxDedupBytes is far beyond any need.
	MinDedupBytes = 64 << 10
	MaxDedupBytes = 4 << 30
	// MaxPIDsLimit bounds the pid list of one digest.
	MaxPIDsLimit = 1024
	// MaxWindow is the longest dedup window: a digest later than a day
	// reports news nobody can act on.
	MaxWindow = 24 * time.Hour
	// MaxRate and MaxBurst bound the token buckets.
	MaxRate  Rate = 100_000
	MaxBurst      = 1_000_000
	// MinSpoolBytes and MaxSpoolBytes bound one sink's spool on disk.
	MinSpoolBytes = 64 << 10
	MaxSpoolBytes = 64 << 30
	// MaxSpoolEntries bounds one sink's spool entries (and its index in
	// memory).
	MaxSpoolEntries = 1_000_000
	// MaxRetry bounds the backoff between delivery attempts.
	MaxRetry = 24 * time.Hour
	// MaxSinkTimeout bounds a sink's own timeout setting: one delivery
	// attempt never gets longer than SendTimeout anyway.
	MaxSinkTimeout = SendTimeout
)

// CheckTimeout is the one check of a sink's timeout setting; zero means
// the sink's default.
func CheckTimeout(key string, d time.Duration) error {
	if d < 0 {
		return Errorf(key, "must be a positive duration")
	}
	if d > MaxSinkTimeout {
		return Errorf(key, "must be at most %s, not %s", MaxSinkTimeout, d)
	}
	return nil
}

// DefaultFilter reports everything: PATH-search coalescing, dedup and the
// rate limits keep that quiet, and a failure someone filtered away by
// default is one nobody will ever learn about.
func DefaultFilter() FilterConfig { return FilterConfig{KernelInvoked: "include"} }

// DefaultDedup folds repeats of the same program failing the same way for
// the same user and unit into one digest per ten minutes.
func DefaultDedup() DedupConfig {
	return DedupConfig{
		Window:   Duration(10 * time.Minute),
		Keys:     []string{"uid", "error", "binary", "unit"},
		MaxPIDs:  16,
		MaxKeys:  10000,
		MaxBytes: 8 << 20,
	}
}

// DefaultRateLimit is the [rate_limit] a fresh install runs with.
func DefaultRateLimit() GlobalRateLimitConfig {
	return GlobalRateLimitConfig{
		RateLimitConfig: RateLimitConfig{Rate: 5, Burst: 20},
		GlobalRate:      50,
		GlobalBurst:     200,
	}
}

// DefaultSpool is the [spool] a fresh install runs with.
func DefaultSpool() SpoolConfig {
	return SpoolConfig{
		Dir:          "/var/lib/execfaild/spool",
		MaxBytes:     64 << 20,
		MaxEntries:   10000,
		RetryInitial: Duration(time.Second),
		RetryMax:     Duration(5 * time.Minute),
	}
}

// Validate checks a filter; keys in errors are relative to its table.
func (f *FilterConfig) Validate() error {
	for _, k := range []struct {
		key  string
		list []string
	}{{"errors", f.Errors}, {"exclude_errors", f.ExcludeErrors}} {
		for i, name := range k.list {
			up := strings.ToUpper(strings.TrimSpace(name))
			if _, ok := errnoByName[up]; !ok {
				return Errorf(k.key, "unknown errno name %q", name)
			}
			k.list[i] = up
		}
	}
	if err := validateCauses("causes", f.Causes); err != nil {
		return err
	}
	if err := validateCauses("exclude_causes", f.ExcludeCauses); err != nil {
		return err
	}
	for _, k := range []struct {
		key  string
		list []string
	}{
		{"paths", f.Paths}, {"exclude_paths", f.ExcludePaths},
		{"comms", f.Comms}, {"exclude_comms", f.ExcludeComms},
		{"units", f.Units}, {"exclude_units", f.ExcludeUnits},
		{"cgroups", f.Cgroups}, {"exclude_cgroups", f.ExcludeCgroups},
	} {
		for _, p := range k.list {
			if p == "" {
				return Errorf(k.key, "empty pattern")
			}
			if _, err := path.Match(strings.TrimSuffix(p, "/**"), ""); err != nil {
				return Errorf(k.key, "bad glob %q: %v", p, err)
			}
		}
	}
	switch f.KernelInvoked {
	case "":
		f.KernelInvoked = "include"
	case "include", "only", "exclude":
	default:
		return Errorf("kernel_invoked", "must be include, only or exclude, not %q", f.KernelInvoked)
	}
	return nil
}

// validateCauses checks a list of cause codes, lower-casing them in place.
func validateCauses(key string, list []string) error {
	for i, c := range list {
		code := strings.ToLower(strings.TrimSpace(c))
		if !slices.Contains(event.Causes, code) {
			return Errorf(key, "unknown cause %q (one of %s)", c, strings.Join(event.Causes, ", "))
		}
		list[i] = code
	}
	return nil
}

// Validate checks dedup settings after defaults were applied.
func (d *DedupConfig) Validate() error {
	if d.Window == 0 || (d.Window < 0 && d.Window != Off) {
		return Errorf("window", "must be positive or \"off\"")
	}
	if len(d.Keys) == 0 {
		return Errorf("keys", "must name at least one field (one of %s)", strings.Join(DedupKeys, ", "))
	}
	for _, k := range d.Keys {
		if !slices.Contains(DedupKeys, k) {
			return Errorf("keys", "unknown field %q (one of %s)", k, strings.Join(DedupKeys, ", "))
		}
	}
	if d.Window > Duration(MaxWindow) {
		return Errorf("window", "must be at most %s, not %s", MaxWindow, d.Window.D())
	}
	if err := inRange("max_pids", int64(d.MaxPIDs), 0, MaxPIDsLimit); err != nil {
		return err
	}
	// Zero is not "unbounded": the table of one sink would grow with every
	// distinct failure anyone on the host can cause.
	if err := inRange("max_keys", int64(d.MaxKeys), 1, MaxKeysLimit); err != nil {
		return err
	}
	return inRange("max_bytes", d.MaxBytes, MinDedupBytes, MaxDedupBytes)
}

// Validate checks a token bucket after defaults were applied.
func (r *RateLimitConfig) Validate() error {
	if r.Rate == 0 || (r.Rate < 0 && r.Rate != Off) {
		return Errorf("rate", "must be positive or \"off\"")
	}
	if r.Rate > MaxRate {
		return Errorf("rate", "must be at most %v/s", float64(MaxRate))
	}
	if r.Burst < 0 {
		return Errorf("burst", "must not be negative")
	}
	if r.Rate != Off && r.Burst == 0 {
		return Errorf("burst", "must be at least 1 when rate is set")
	}
	return inRange("burst", int64(r.Burst), 0, MaxBurst)
}

// Validate checks the [rate_limit] section.
func (g *GlobalRateLimitConfig) Validate() error {
	if err := g.RateLimitConfig.Validate(); err != nil {
		return err
	}
	if g.GlobalRate == 0 || (g.GlobalRate < 0 && g.GlobalRate != Off) {
		return Errorf("global_rate", "must be positive or \"off\"")
	}
	if g.GlobalBurst < 0 {
		return Errorf("global_burst", "must not be negative")
	}
	if g.GlobalRate > MaxRate {
		return Errorf("global_rate", "must be at most %v/s", float64(MaxRate))
	}
	if g.GlobalRate != Off && g.GlobalRate != 0 && g.GlobalBurst == 0 {
		return Errorf("global_burst", "must be at least 1 when global_rate is set")
	}
	return inRange("global_burst", int64(g.GlobalBurst), 0, MaxBurst)
}

// Validate checks the [spool] section.
func (s *SpoolConfig) Validate() error {
	if s.Dir == "" {
		return Errorf("dir", "must not be empty")
	}
	if !path.IsAbs(s.Dir) {
		return Errorf("dir", "must be an absolute path, not %q", s.Dir)
	}
	if err := inRange("max_bytes", s.MaxBytes, MinSpoolBytes, MaxSpoolBytes); err != nil {
		return err
	}
	if err := inRange("max_entries", int64(s.MaxEntries), 1, MaxSpoolEntries); err != nil {
		return err
	}
	if s.RetryInitial <= 0 {
		return Errorf("retry_initial", "must be positive")
	}
	if s.RetryInitial > Duration(MaxRetry) {
		return Errorf("retry_initial", "must be at most %s, not %s", MaxRetry, s.RetryInitial.D())
	}
	if s.RetryMax < s.RetryInitial {
		return Errorf("retry_max", "must be at least retry_initial")
	}
	if s.RetryMax > Duration(MaxRetry) {
		return Errorf("retry_max", "must be at most %s, not %s", MaxRetry, s.RetryMax.D())
	}
	return nil
}

// inRange is the one wording of a numeric range error.
func inRange(key string, v, lo, hi int64) error {
	if v < lo || v > hi {
		return Errorf(key, "must be from %d to %d, not %d", lo, hi, v)
	}
	return nil
}

// errnoByName maps "ENOENT" to its number; x/sys/unix only goes the other way.
var errnoByName = func() map[string]unix.Errno {
	m := map[string]unix.Errno{}
	for i := unix.Errno(1); i < 4096; i++ {
		if n := unix.ErrnoName(i); n != "" {
			m[n] = i
		}
	}
	// Aliases the kernel's numbering shares with another name.
	m["EWOULDBLOCK"] = unix.EAGAIN
	m["EDEADLOCK"] = unix.EDEADLK
	m["ENOTSUP"] = unix.EOPNOTSUPP
	return m
}()
