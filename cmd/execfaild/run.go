// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"

	"github.com/execfaild/execfaild/cmd/execfaild/internal/daemon"
	"github.com/execfaild/execfaild/cmd/execfaild/internal/metrics"
	"github.com/execfaild/execfaild/cmd/execfaild/internal/privs"
	"github.com/execfaild/execfaild/config"
	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/probe"
	"github.com/execfaild/execfaild/probe/event"
)

func runDaemon(args []string, stdout, stderr io.Writer) error {
	path, err := parseRunArgs(args, stderr)
	if err != nil {
		return err
	}
	log := newDaemonLogger(stderr)

	// Signals are caught before the slow start, so a stop requested while
	// the probes load is honoured right after READY instead of killing the
	// process half-attached.
	ignoreBrokenPipe()
	sigs := make(chan os.Signal, 4)
	// SIGUSR1: execfaild test-sinks asks the daemon to test its sinks (its
	// default action would kill the process).
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1)
	defer signal.Stop(sigs)

	d, err := startDaemon(path, log)
	if err != nil {
		// systemctl status shows the reason beside the failed state.
		sddaemon.SdNotify(false, "STATUS=failed to start: "+firstLineError{err}.Error())
		return err
	}
	defer d.stopMetrics()
	return daemon.Run(daemon.Options{
		Source:   probeSource{d.probe},
		Pipeline: d.pipeline,
		Load:     reloader(path, log, d.pipeline, d.cfg),
		Notify:   func(state string) (bool, error) { return sddaemon.SdNotify(false, state) },
		Logger:   log,
		Signals:  sigs,
		Watchdog: watchdogInterval(log),
		OnReload: reloadVerdictWriter(verdictPath(), log),
		OnStatus: statusWriter(runtimeDir(), log),
		OnTest:   daemonTester(runtimeDir(), d.pipeline, log),
	})
}

// reloadVerdictWriter keeps each reload's outcome where `execfaild reload`
// (the unit's ExecReload=) waits for it; nil outside the unit.
func reloadVerdictWriter(path string, log *slog.Logger) func(daemon.ReloadResult) {
	if path == "" {
		return nil
	}
	return func(r daemon.ReloadResult) {
		if err := writeVerdict(path, r); err != nil {
			log.Error(err.Error())
		}
	}
}

// parseRunArgs returns the configuration file run was given ("" for the
// default).
func parseRunArgs(args []string, stderr io.Writer) (string, error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration `file` (default "+config.DefaultPath+"; built-in defaults when that does not exist)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: execfaild run [--config FILE]\n\nAttach the probes and report failed execs until SIGTERM; SIGHUP reloads the configuration.\n\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return "", err
	}
	if fs.NArg() > 0 {
		return "", exitError{2, fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return *path, nil
}

// started is what startDaemon brought up. The daemon loop closes the probe
// and the pipeline; stopMetrics closes what serves /metrics.
type started struct {
	cfg         *config.Config
	probe       *probe.Probe
	pipeline    *notify.Pipeline
	stopMetrics func()
}

// startDaemon loads the configuration, binds the metrics port, attaches the
// probe and starts the sinks, in that order; a step that fails undoes the
// ones before it.
func startDaemon(path string, log *slog.Logger) (*started, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, exitError{exitConfig, err}
	}
	warnReadableSecrets(log, cfg)
	memLimit := memoryLimit()
	if err := cfg.CheckMemory(memLimit, 0); err != nil {
		return nil, exitError{exitConfig, err}
	}
	limitGoMemory(cfg, memLimit, log)
	cfgName := cfg.File
	if cfgName == "" {
		cfgName = "built-in defaults"
	}

	// The metrics port is bound before the probes load: an address in use
	// fails the start at once, with nothing attached to undo.
	var metricsLn net.Listener
	if cfg.Metrics.Listen != "" {
		metricsLn, err = net.Listen("tcp", cfg.Metrics.Listen)
		if err != nil {
			return nil, fmt.Errorf("start metrics: %w", firstLineError{err})
		}
	}
	stopMetrics := func() {
		if metricsLn != nil {
			metricsLn.Close()
		}
	}

	p, err := probe.New(cfg.Probe)
	if err != nil {
		stopMetrics()
		// The kernel or the privileges refuse the probe: starting again
		// changes neither.
		return nil, exitError{exitUnavailable, fmt.Errorf("start probe: %w", firstLineError{err})}
	}
	dropPrivileges(p, log)
	// Loading parsed the kernel's BTF and the BPF objects: a few MB that
	// are garbage once the probes are attached, and that the runtime would
	// hand back to the kernel only slowly. Measured: idle RSS 31 -> 25 MB,
	// anonymous memory 11 -> 5 MB.
	debug.FreeOSMemory()
	pl, err := notify.New(cfg.Notify(), notify.Env{Host: event.LocalHost(), Logger: log},
		notify.WithLostMarkers(p.LostMarkers))
	if err != nil {
		p.Close()
		stopMetrics()
		return nil, fmt.Errorf("start sinks: %w", err)
	}
	attrs := []any{"config", cfgName, "mode", p.Mode(), "sinks", len(cfg.Sinks), "host", cfg.Hostname(notify.Env{})}
	if n := cfg.JournalNote(); n != "" {
		attrs = append(attrs, "note", n)
	}
	log.Info("started", attrs...)
	if metricsLn != nil {
		srv := serveMetrics(metricsLn, p, pl, log)
		log.Info("serving metrics", "addr", metricsLn.Addr().String())
		stopMetrics = func() {
			srv.Close()
			metricsLn.Close()
		}
	}
	return &started{cfg: cfg, probe: p, pipeline: pl, stopMetrics: stopMetrics}, nil
}

// watchdogInterval is how often systemd wants to hear from the daemon
// (0: no watchdog).
func watchdogInterval(log *slog.Logger) time.Duration {
	watchdog, err := sddaemon.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("watchdog disabled: " + err.Error())
		return 0
	}
	return watchdog
}

// reloader loads the file again for a reload. Settings that only a restart
// applies ([probe], [metrics]) are compared with those running and a change
// is logged, not applied.
func reloader(path string, log *slog.Logger, pl *notify.Pipeline, running *config.Config) func() (notify.Config, error) {
	runningProbe, runningMetrics := running.Probe, running.Metrics
	return func() (notify.Config, error) {
		c, err := config.Load(path)
		if err != nil {
			pl.ReloadRejected()
			return notify.Config{}, err
		}
		warnReadableSecrets(log, c)
		if err := c.CheckMemory(memoryLimit(), 0); err != nil {
			pl.ReloadRejected()
			return notify.Config{}, err
		}
		if !reflect.DeepEqual(c.Probe, runningProbe) {
			// The BPF program is configured at load time; swapping it would
			// detach the hooks and miss failures meanwhile.
			log.Warn("[probe] settings changed: they take effect at the next restart")
		}
		if c.Metrics != runningMetrics {
			// Rebinding would leave a gap in the scrapes and could fail on a
			// busy port after the reload was already reported done.
			log.Warn("[metrics] listen changed: it takes effect at the next restart")
		}
		return c.Notify(), nil
	}
}

// serveMetrics serves /metrics on ln until the returned server is closed.
// The collector reads the probe's and pipeline's own counters at scrape
// time, so nothing is counted twice.
func serveMetrics(ln net.Listener, p *probe.Probe, pl *notify.Pipeline, log *slog.Logger) *http.Server {
	h := metrics.Handler(metrics.Sources{
		Version:  version,
		Mode:     p.Mode,
		Probe:    p.Stats,
		Pipeline: pl.Stats,
	})
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	return srv
}

// probeSource adapts the probe to the daemon loop.
type probeSource struct{ p *probe.Probe }

func (s probeSource) Next() (*event.Event, *event.Success, error) {
	r, err := s.p.Read()
	return r.Failure, r.Success, err
}
func (s probeSource) Drain(deadline time.Time) { s.p.Drain(deadline) }
func (s probeSource) Close() error             { return s.p.Close() }
func (s probeSource) Mode() string             { return s.p.Mode() }
func (s probeSource) Loss() daemon.Loss {
	st := s.p.Stats()
	return daemon.Loss{LostFailures: st.LostFailures, LostMarkers: st.LostMarkers, Undecodable: st.Undecodable, Undrained: st.Undrained}
}

// memoryLimit is the memory limit of the cgroup the daemon runs in (the
// unit's MemoryMax=), 0 when there is none.
func memoryLimit() int64 {
	return config.CgroupMemoryLimit("/proc/self/cgroup", "/sys/fs/cgroup")
}

// limitGoMemory sets the Go runtime's soft memory limit to what the
// service's memory limit leaves after the BPF maps, so the collector works
// harder before the kernel's OOM killer would act. GOMEMLIMIT, when set,
// wins; without a cgroup limit nothing changes.
func limitGoMemory(cfg *config.Config, limit int64, log *slog.Logger) {
	if limit <= 0 || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	bound := cfg.MemoryBound(0)
	goLimit := limit - bound.Kernel()
	debug.SetMemoryLimit(goLimit)
	log.Info("memory", "limit", config.FormatBytes(limit), "bound", config.FormatBytes(bound.Total()), "go_limit", config.FormatBytes(goLimit))
}

// ignoreBrokenPipe makes a write to a closed stdout (`execfaild run | head`)
// fail with EPIPE, the stdout sink's own failure, instead of Go's default
// of dying by SIGPIPE and losing what the other sinks still hold.
func ignoreBrokenPipe() { signal.Ignore(syscall.SIGPIPE) }

// warnReadableSecrets warns, as ssh does about keys, when others can read
// a file that holds secrets inline, and about keys under a former name.
func warnReadableSecrets(log *slog.Logger, c *config.Config) {
	if w := c.ReadableSecretsWarning(); w != "" {
		log.Warn(w)
	}
	for _, w := range c.Deprecated() {
		log.Warn(w)
	}
}

// newDaemonLogger logs plain key=value lines. Under systemd (JOURNAL_STREAM
// set) the journal stamps each line itself, so the time is left out; when
// w is the very stream systemd connected to the journal, each line goes to
// journald natively with its attributes as fields (journallog.go).
func newDaemonLogger(w io.Writer) *slog.Logger {
	underJournal := os.Getenv("JOURNAL_STREAM") != ""
	opts := &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if underJournal && len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}
	if !underJournal {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	l := &prefixedLines{w: w}
	if f, ok := w.(*os.File); ok && isJournalStream(f, os.Getenv("JOURNAL_STREAM")) {
		return slog.New(nativeHandler{inner: slog.NewTextHandler(&l.buf, opts), lines: l, out: newNativeOut(journalSocket)})
	}
	return slog.New(priorityHandler{inner: slog.NewTextHandler(&l.buf, opts), lines: l})
}

// priorityHandler gives each line the journal sees the syslog priority of
// its level as a "<N>" prefix, which journald reads off a stream line
// (SyslogLevelPrefix=, on by default): `journalctl -p err -u execfaild`
// then shows "reload rejected". Info lines keep no prefix, the stream's
// own priority being info already.
type priorityHandler struct {
	inner slog.Handler
	lines *prefixedLines
}

// prefixedLines is where every handler derived from one logger formats its
// line before it is written whole, behind its prefix.
type prefixedLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
	w   io.Writer
}

func (h priorityHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h priorityHandler) Handle(ctx context.Context, r slog.Record) error {
	h.lines.mu.Lock()
	defer h.lines.mu.Unlock()
	h.lines.buf.Reset()
	h.lines.buf.WriteString(streamPrefix(r.Level))
	if err := h.inner.Handle(ctx, r); err != nil {
		return err
	}
	_, err := h.lines.w.Write(h.lines.buf.Bytes())
	return err
}

func (h priorityHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return priorityHandler{inner: h.inner.WithAttrs(as), lines: h.lines}
}

func (h priorityHandler) WithGroup(name string) slog.Handler {
	return priorityHandler{inner: h.inner.WithGroup(name), lines: h.lines}
}

// firstLineError keeps a fatal error to the one line the journal shows next
// to the unit's failure: a verifier log that follows it helps no operator.
type firstLineError struct{ err error }

func (e firstLineError) Error() string {
	msg := e.err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		return msg[:i]
	}
	return msg
}
func (e firstLineError) Unwrap() error { return e.err }

// dropPrivileges gives up what only attaching needed, keeping CAP_BPF only
// where this kernel requires it to read the loss counters. A failure is
// logged, not fatal: the probe works, with more privilege than it needs.
func dropPrivileges(p *probe.Probe, log *slog.Logger) {
	keep := uint64(privs.Runtime)
	if privs.Without(1<<privs.CapBPF|1<<privs.CapSysAdmin, p.CheckStats) != nil {
		keep |= 1 << privs.CapBPF
	}
	kept, err := privs.Drop(keep)
	if err != nil {
		log.Warn("capabilities not dropped after attaching", "err", err)
		return
	}
	log.Info("capabilities after attaching", "kept", privs.Names(kept))
}
