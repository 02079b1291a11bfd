package probe

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
	// RingBufferBytes sizes the kernel-to-userspace ring buffer (power of two).
	RingBufferBytes int `toml:"ring_buffer_bytes"`
	// ProcRoot is where procfs is read from; tests point it elsewhere.
	ProcRoot string `toml:"-"`
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
		RingBufferBytes: 1 << 22,
		ProcRoot:        "/proc",
	}
}
