// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"slices"
	"strings"

	"github.com/execfaild/execfaild/internal/field"
)

// Attach modes, richest first.
const (
	ModeAuto       = "auto"
	ModeFentry     = "fentry"
	ModeKprobe     = "kprobe"
	ModeTracepoint = "tracepoint"
	// ModeLegacy forces what kernels before 5.8 would get: kprobes, the
	// creds-less hook plan (exec_binprm instead of
	// security_bprm_creds_for_exec) and the build without bpf_loop. Chosen
	// only when asked for: it proves that plan on a kernel that has more.
	ModeLegacy = "legacy"
)

// Transports: how records reach userspace.
const (
	TransportAuto = "auto"
	// TransportRingbuf is the BPF ring buffer (Linux 5.8): one buffer
	// shared by every CPU.
	TransportRingbuf = "ringbuf"
	// TransportPerf is a perf event array, one buffer per CPU, for kernels
	// without a ring buffer. It runs the legacy build (no folding).
	TransportPerf = "perf"
)

// Config is the [probe] section of /etc/execfaild.toml.
type Config struct {
	// Mode is auto, fentry, kprobe or tracepoint. auto picks the richest
	// mode the feature probes allow; any other value forces that mode and
	// fails when the kernel cannot do it.
	Mode string `toml:"mode"`
	// MaxArgs and MaxEnv bound how many argv/envp entries are captured;
	// MaxArgLen bounds each entry's bytes. Beyond them the event is marked
	// truncated.
	MaxArgs   int `toml:"max_args"`
	MaxEnv    int `toml:"max_env"`
	MaxArgLen int `toml:"max_arg_len"`
	// Environment is "redact" (names kept, values replaced unless listed in
	// KeepEnv), "none" (not captured) or "full" (values kept; they may hold
	// secrets).
	Environment string   `toml:"environment"`
	KeepEnv     []string `toml:"keep_env"`
	// Transport is auto, ringbuf or perf. auto takes the ring buffer where
	// the kernel has one, except in legacy mode, which stands for a kernel
	// before 5.8 and takes the perf event array.
	Transport string `toml:"transport"`
	// RingBufferBytes sizes the kernel-to-userspace ring buffer (power of
	// two); with the perf transport it is shared out between the CPUs'
	// buffers (each a power of two, at least 64 KiB).
	RingBufferBytes int `toml:"ring_buffer_bytes"`
	// FoldRepeats counts, in the kernel, failures identical to one already
	// sent (same thread, path, errno, binary, credentials, cwd, stdin…):
	// the first two go out in full (a failure is tracked from its second
	// occurrence, so distinct failures never fill the table), the repeats
	// as exact counts, so a storm neither floods the ring buffer nor loses
	// a count. FoldMaxKeys bounds how many distinct failures are tracked
	// at once; beyond it failures are sent in full.
	FoldRepeats bool `toml:"fold_repeats"`
	FoldMaxKeys int  `toml:"fold_max_keys"`
	// ProcRoot is where procfs is read from (empty: /proc); tests point
	// it elsewhere.
	ProcRoot string `toml:"-"`
}

// hostProcRoot is the host's procfs, where ProcRoot points unless set.
const hostProcRoot = "/proc"

func (c Config) procRoot() string {
	if c.ProcRoot == "" {
		return hostProcRoot
	}
	return c.ProcRoot
}

// DefaultConfig returns the settings a fresh install runs with.
func DefaultConfig() Config {
	return Config{
		Mode:            "auto",
		MaxArgs:         32,
		MaxEnv:          32,
		MaxArgLen:       256,
		Environment:     "redact",
		KeepEnv:         []string{"PATH", "LANG", "TERM", "SHELL", "PWD", "HOME", "USER", "LOGNAME"},
		Transport:       TransportAuto,
		RingBufferBytes: 1 << 22,
		FoldRepeats:     true,
		FoldMaxKeys:     4096,
	}
}

// Limits the BPF program is compiled for (bpf/event.h); settings beyond
// them are rejected rather than silently clamped.
const (
	maxArgsCap   = 64
	maxArgLenCap = 4094
	// A fold entry is about 200 bytes of kernel memory.
	minFoldKeys = 16
	maxFoldKeys = 65536
)

// Modes lists the attach modes a configuration or `watch --mode` may name,
// in the words every error and usage line uses.
var Modes = []string{ModeAuto, ModeFentry, ModeKprobe, ModeTracepoint, ModeLegacy}

// Validate reports the first bad setting as a *field.Error. The probe owns
// the whole [probe] section, so its keys are rooted at the file
// ("probe.mode") and the config loader passes them through unchanged.
func (c Config) Validate() error {
	if c.Mode != "" && !slices.Contains(Modes, c.Mode) {
		return field.Errorf("probe.mode", "%q is not one of %s", c.Mode, strings.Join(Modes, ", "))
	}
	switch c.Transport {
	case "", TransportAuto, TransportRingbuf, TransportPerf:
	default:
		return field.Errorf("probe.transport", "%q is not one of auto, ringbuf, perf", c.Transport)
	}
	if c.MaxArgs < 1 || c.MaxArgs > maxArgsCap {
		return field.Errorf("probe.max_args", "%d is outside 1..%d", c.MaxArgs, maxArgsCap)
	}
	if c.MaxEnv < 0 || c.MaxEnv > maxArgsCap {
		return field.Errorf("probe.max_env", "%d is outside 0..%d", c.MaxEnv, maxArgsCap)
	}
	if c.MaxArgLen < 16 || c.MaxArgLen > maxArgLenCap {
		return field.Errorf("probe.max_arg_len", "%d is outside 16..%d", c.MaxArgLen, maxArgLenCap)
	}
	switch c.Environment {
	case "redact", "none", "full":
	default:
		return field.Errorf("probe.environment", "%q is not one of redact, none, full", c.Environment)
	}
	rb := c.RingBufferBytes
	if rb < 1<<16 || rb > 1<<30 || rb&(rb-1) != 0 {
		return field.Errorf("probe.ring_buffer_bytes", "%d is not a power of two between 65536 and 1073741824", rb)
	}
	if c.FoldMaxKeys < minFoldKeys || c.FoldMaxKeys > maxFoldKeys {
		return field.Errorf("probe.fold_max_keys", "%d is outside %d..%d", c.FoldMaxKeys, minFoldKeys, maxFoldKeys)
	}
	return nil
}
