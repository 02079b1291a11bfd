// SPDX-License-Identifier: Apache-2.0

// Package metrics exposes the daemon's counters to Prometheus. The probe
// and the pipeline already count everything; the collector reads their
// snapshots at scrape time instead of keeping counters of its own, so the
// numbers on /metrics and in systemd's STATUS= line can never disagree.
package metrics

import (
	"net/http"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/probe"
)

const namespace = "execfaild"

// Sources are read on every scrape. Each func must be safe to call from the
// HTTP server's goroutines.
type Sources struct {
	// Version is the daemon's version, for execfaild_build_info.
	Version string
	// Mode is the attach mode the probe runs in ("fentry", ...).
	Mode     func() string
	Probe    func() probe.Stats
	Pipeline func() notify.Stats
}

// Collector is a prometheus.Collector over Sources.
type Collector struct {
	src Sources
}

// Handler serves /metrics: src's counters, and the process's own CPU,
// memory and descriptors and the Go runtime's, for what the daemon itself
// costs beside what it counts.
func Handler(src Sources) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
		NewCollector(src),
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// NewCollector returns a collector that reads src at scrape time.
func NewCollector(src Sources) *Collector { return &Collector{src: src} }

var (
	sinkLabels    = []string{"kind", "name"}
	replicaLabels = []string{"kind", "name", "replica"}
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(namespace+"_"+name, help, labels, nil)
}

var (
	probeFailures     = desc("probe_failures_total", "Failed execs the probe handed to userspace.")
	probeSuccesses    = desc("probe_successes_total", "Successful execs the probe reported (used to fold PATH searches).")
	probeLostFailures = desc("probe_lost_failures_total", "Failed execs the kernel ring buffer could not take; never reported.")
	probeLostMarkers  = desc("probe_lost_markers_total", "PATH-search success markers that never reached userspace; a PATH search pending meanwhile may have succeeded.")
	probeOrphans      = desc("probe_orphan_repeats_total", "Repeats the kernel counted of a failure whose full record was lost; never reported.")
	probeUndecodable  = desc("probe_undecodable_total", "Records from the kernel that could not be decoded and were skipped.")
	probeModeInfo     = desc("probe_mode_info", "The attach mode of the probe; always 1.", "mode")

	buildInfo       = desc("build_info", "The daemon's version and the Go version it was built with; always 1.", "version", "goversion")
	detected        = desc("failures_detected_total", "Failed execs that entered the notification pipeline.")
	byErrorCause    = desc("failures_total", "Failed execs that entered the notification pipeline, by errno name (\"other\" for one without a name) and diagnosed cause; both label sets are bounded.", "error", "cause")
	filtered        = desc("failures_filtered_total", "Failed execs the global [filter] dropped.")
	resolved        = desc("path_searches_resolved_total", "Failed execs dropped because a later PATH directory had the command.")
	afterClose      = desc("failures_after_close_total", "Failed execs handed in during shutdown, after the pipeline closed; not reported.")
	reloadsRejected = desc("reloads_rejected_total", "Reloads refused with the previous configuration kept in use.")
	sinkFiltered    = desc("sink_filtered_total", "Failures this sink's own filter dropped.", sinkLabels...)
	sinkDeduped     = desc("sink_deduped_total", "Failures folded into a digest as repeats.", sinkLabels...)
	sinkLimited     = desc("sink_limited_total", "Failures whose first notification a rate limit held back.", sinkLabels...)
	sinkFolded      = desc("sink_queue_full_folded_total", "Failures that did not fit the delivery queue and were folded into their user's combined digest: delayed, not dropped.", sinkLabels...)
	// Deprecated: the same count under the name it had, kept for one
	// release so dashboards can move; it never counted drops.
	sinkDropped  = desc("sink_dropped_queue_full_total", "Deprecated, removed in the next release: use execfaild_sink_queue_full_folded_total (the same count; nothing is dropped).", sinkLabels...)
	sinkSent     = desc("sink_notifications_delivered_total", "Notifications delivered.", sinkLabels...)
	sinkSentFail = desc("sink_delivered_failures_total", "Failures the delivered notifications stand for.", sinkLabels...)
	sinkFailed   = desc("sink_notifications_failed_total", "Notifications whose delivery failed.", sinkLabels...)
	sinkSpooled  = desc("sink_notifications_spooled_total", "Notifications written to the spool for a later retry.", sinkLabels...)
	sinkQueued   = desc("sink_queued", "Notifications waiting in the delivery queue.", sinkLabels...)
	sinkSpool    = desc("sink_spool_entries", "Notifications waiting in the spool.", sinkLabels...)
	sinkFailing  = desc("sink_failing", "1 while the sink's last delivery failed, with the reason (\"credentials rejected\", \"retrying\"); 0 with reason=\"\" once one succeeds.", append(sinkLabels, "reason")...)

	// A sink naming several replicas (Alertmanager urls) counts each
	// replica's copies apart; replica is its position in the list, from 1.
	replicaSent     = desc("sink_replica_notifications_delivered_total", "Copies this replica delivered.", replicaLabels...)
	replicaSentFail = desc("sink_replica_delivered_failures_total", "Failures the copies this replica delivered stand for.", replicaLabels...)
	replicaFailed   = desc("sink_replica_notifications_failed_total", "Copies this replica gave up on.", replicaLabels...)
	replicaSpooled  = desc("sink_replica_notifications_spooled_total", "Copies this replica wrote to its spool for a later retry.", replicaLabels...)
	replicaQueued   = desc("sink_replica_queued", "Copies waiting in this replica's delivery queue.", replicaLabels...)
	replicaSpool    = desc("sink_replica_spool_entries", "Copies waiting in this replica's spool.", replicaLabels...)
	replicaFailing  = desc("sink_replica_failing", "1 while this replica's last delivery failed, with the reason; 0 with reason=\"\" once one succeeds.", append(replicaLabels, "reason")...)
)

var allDescs = []*prometheus.Desc{
	probeFailures, probeSuccesses, probeLostFailures, probeLostMarkers, probeOrphans, probeUndecodable, probeModeInfo,
	buildInfo, detected, byErrorCause, filtered, resolved, afterClose, reloadsRejected,
	sinkFiltered, sinkDeduped, sinkLimited, sinkFolded, sinkDropped, sinkSent, sinkSentFail, sinkFailed, sinkSpooled, sinkQueued, sinkSpool, sinkFailing,
	replicaSent, replicaSentFail, replicaFailed, replicaSpooled, replicaQueued, replicaSpool, replicaFailing,
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	if c.src.Probe != nil {
		ps := c.src.Probe()
		counter(probeFailures, ps.Failures)
		counter(probeSuccesses, ps.Successes)
		counter(probeLostFailures, ps.LostFailures)
		counter(probeLostMarkers, ps.LostMarkers)
		counter(probeOrphans, ps.OrphanRepeats)
		counter(probeUndecodable, ps.Undecodable)
	}
	if c.src.Mode != nil {
		ch <- prometheus.MustNewConstMetric(probeModeInfo, prometheus.GaugeValue, 1, c.src.Mode())
	}
	if c.src.Version != "" {
		ch <- prometheus.MustNewConstMetric(buildInfo, prometheus.GaugeValue, 1, c.src.Version, runtime.Version())
	}
	if c.src.Pipeline == nil {
		return
	}
	st := c.src.Pipeline()
	counter(detected, st.Detected)
	for _, ec := range st.ByErrorCause {
		counter(byErrorCause, ec.Count, ec.Error, ec.Cause)
	}
	counter(filtered, st.Filtered)
	counter(resolved, st.PathSearchResolved)
	counter(afterClose, st.AfterClose)
	counter(reloadsRejected, st.ReloadsRejected)
	for _, s := range st.Sinks {
		counter(sinkFiltered, s.Filtered, s.Kind, s.Name)
		counter(sinkDeduped, s.Deduped, s.Kind, s.Name)
		counter(sinkLimited, s.Limited, s.Kind, s.Name)
		counter(sinkFolded, s.DroppedQueueFull, s.Kind, s.Name)
		counter(sinkDropped, s.DroppedQueueFull, s.Kind, s.Name)
		counter(sinkSent, s.Delivered, s.Kind, s.Name)
		counter(sinkSentFail, s.DeliveredCount, s.Kind, s.Name)
		counter(sinkFailed, s.Failed, s.Kind, s.Name)
		counter(sinkSpooled, s.Spooled, s.Kind, s.Name)
		gauge(sinkQueued, s.Queued, s.Kind, s.Name)
		gauge(sinkSpool, s.SpoolEntries, s.Kind, s.Name)
		failing := 0
		if s.Failing != "" {
			failing = 1
		}
		gauge(sinkFailing, failing, s.Kind, s.Name, s.Failing)
		for _, r := range s.Replicas {
			counter(replicaSent, r.Delivered, s.Kind, s.Name, r.Name)
			counter(replicaSentFail, r.DeliveredCount, s.Kind, s.Name, r.Name)
			counter(replicaFailed, r.Failed, s.Kind, s.Name, r.Name)
			counter(replicaSpooled, r.Spooled, s.Kind, s.Name, r.Name)
			gauge(replicaQueued, r.Queued, s.Kind, s.Name, r.Name)
			gauge(replicaSpool, r.SpoolEntries, s.Kind, s.Name, r.Name)
			gauge(replicaFailing, boolInt(r.Failing != ""), s.Kind, s.Name, r.Name, r.Failing)
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
