// SPDX-License-Identifier: Apache-2.0

package metrics

import (
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/probe"
)

func fixed() Sources {
	return Sources{
		Version: "1.2.3",
		Mode:    func() string { return "fentry" },
		Probe: func() probe.Stats {
			return probe.Stats{Failures: 41, Successes: 7, LostFailures: 2, LostMarkers: 3, OrphanRepeats: 4, Undecodable: 1}
		},
		Pipeline: func() notify.Stats {
			return notify.Stats{
				Detected: 40, Filtered: 3, PathSearchResolved: 5,
				ByErrorCause: []notify.ErrorCauseCount{
					{ErrorCause: notify.ErrorCause{Error: "EACCES", Cause: "noexec-mount"}, Count: 4},
					{ErrorCause: notify.ErrorCause{Error: "ENOENT", Cause: "not-found"}, Count: 36},
				},
				Sinks: []notify.SinkStats{
					{Kind: "journal", Name: "journal", Delivered: 30, DeliveredCount: 32},
					{Kind: "webhook", Name: "ops", Filtered: 4, Deduped: 6, Limited: 8, DroppedQueueFull: 1,
						Delivered: 10, DeliveredCount: 20, Failed: 3, Spooled: 2, Queued: 5, SpoolEntries: 2, Failing: "credentials rejected"},
				},
			}
		},
	}
}

// TestExposition pins names, types, labels and values: they are what
// dashboards and alerts are written against.
func TestExposition(t *testing.T) {
	want := `
# HELP execfaild_build_info The daemon's version and the Go version it was built with; always 1.
# TYPE execfaild_build_info gauge
execfaild_build_info{goversion="` + runtime.Version() + `",version="1.2.3"} 1
# HELP execfaild_failures_after_close_total Failed execs handed in during shutdown, after the pipeline closed; not reported.
# TYPE execfaild_failures_after_close_total counter
execfaild_failures_after_close_total 0
# HELP execfaild_failures_detected_total Failed execs that entered the notification pipeline.
# TYPE execfaild_failures_detected_total counter
execfaild_failures_detected_total 40
# HELP execfaild_failures_total Failed execs that entered the notification pipeline, by errno name ("other" for one without a name) and diagnosed cause; both label sets are bounded.
# TYPE execfaild_failures_total counter
execfaild_failures_total{cause="noexec-mount",error="EACCES"} 4
execfaild_failures_total{cause="not-found",error="ENOENT"} 36
# HELP execfaild_failures_filtered_total Failed execs the global [filter] dropped.
# TYPE execfaild_failures_filtered_total counter
execfaild_failures_filtered_total 3
# HELP execfaild_path_searches_resolved_total Failed execs dropped because a later PATH directory had the command.
# TYPE execfaild_path_searches_resolved_total counter
execfaild_path_searches_resolved_total 5
# HELP execfaild_probe_failures_total Failed execs the probe handed to userspace.
# TYPE execfaild_probe_failures_total counter
execfaild_probe_failures_total 41
# HELP execfaild_probe_lost_failures_total Failed execs the kernel ring buffer could not take; never reported.
# TYPE execfaild_probe_lost_failures_total counter
execfaild_probe_lost_failures_total 2
# HELP execfaild_probe_lost_markers_total PATH-search success markers that never reached userspace; a PATH search pending meanwhile may have succeeded.
# TYPE execfaild_probe_lost_markers_total counter
execfaild_probe_lost_markers_total 3
# HELP execfaild_probe_mode_info The attach mode of the probe; always 1.
# TYPE execfaild_probe_mode_info gauge
execfaild_probe_mode_info{mode="fentry"} 1
# HELP execfaild_probe_orphan_repeats_total Repeats the kernel counted of a failure whose full record was lost; never reported.
# TYPE execfaild_probe_orphan_repeats_total counter
execfaild_probe_orphan_repeats_total 4
# HELP execfaild_probe_successes_total Successful execs the probe reported (used to fold PATH searches).
# TYPE execfaild_probe_successes_total counter
execfaild_probe_successes_total 7
# HELP execfaild_probe_undecodable_total Records from the kernel that could not be decoded and were skipped.
# TYPE execfaild_probe_undecodable_total counter
execfaild_probe_undecodable_total 1
# HELP execfaild_reloads_rejected_total Reloads refused with the previous configuration kept in use.
# TYPE execfaild_reloads_rejected_total counter
execfaild_reloads_rejected_total 0
# HELP execfaild_sink_deduped_total Failures folded into a digest as repeats.
# TYPE execfaild_sink_deduped_total counter
execfaild_sink_deduped_total{kind="journal",name="journal"} 0
execfaild_sink_deduped_total{kind="webhook",name="ops"} 6
# HELP execfaild_sink_delivered_failures_total Failures the delivered notifications stand for.
# TYPE execfaild_sink_delivered_failures_total counter
execfaild_sink_delivered_failures_total{kind="journal",name="journal"} 32
execfaild_sink_delivered_failures_total{kind="webhook",name="ops"} 20
# HELP execfaild_sink_dropped_queue_full_total Deprecated, removed in the next release: use execfaild_sink_queue_full_folded_total (the same count; nothing is dropped).
# TYPE execfaild_sink_dropped_queue_full_total counter
execfaild_sink_dropped_queue_full_total{kind="journal",name="journal"} 0
execfaild_sink_dropped_queue_full_total{kind="webhook",name="ops"} 1
# HELP execfaild_sink_failing 1 while the sink's last delivery failed, with the reason ("credentials rejected", "retrying"); 0 with reason="" once one succeeds.
# TYPE execfaild_sink_failing gauge
execfaild_sink_failing{kind="journal",name="journal",reason=""} 0
execfaild_sink_failing{kind="webhook",name="ops",reason="credentials rejected"} 1
# HELP execfaild_sink_filtered_total Failures this sink's own filter dropped.
# TYPE execfaild_sink_filtered_total counter
execfaild_sink_filtered_total{kind="journal",name="journal"} 0
execfaild_sink_filtered_total{kind="webhook",name="ops"} 4
# HELP execfaild_sink_limited_total Failures whose first notification a rate limit held back.
# TYPE execfaild_sink_limited_total counter
execfaild_sink_limited_total{kind="journal",name="journal"} 0
execfaild_sink_limited_total{kind="webhook",name="ops"} 8
# HELP execfaild_sink_notifications_delivered_total Notifications delivered.
# TYPE execfaild_sink_notifications_delivered_total counter
execfaild_sink_notifications_delivered_total{kind="journal",name="journal"} 30
execfaild_sink_notifications_delivered_total{kind="webhook",name="ops"} 10
# HELP execfaild_sink_notifications_failed_total Notifications whose delivery failed.
# TYPE execfaild_sink_notifications_failed_total counter
execfaild_sink_notifications_failed_total{kind="journal",name="journal"} 0
execfaild_sink_notifications_failed_total{kind="webhook",name="ops"} 3
# HELP execfaild_sink_notifications_spooled_total Notifications written to the spool for a later retry.
# TYPE execfaild_sink_notifications_spooled_total counter
execfaild_sink_notifications_spooled_total{kind="journal",name="journal"} 0
execfaild_sink_notifications_spooled_total{kind="webhook",name="ops"} 2
# HELP execfaild_sink_queue_full_folded_total Failures that did not fit the delivery queue and were folded into their user's combined digest: delayed, not dropped.
# TYPE execfaild_sink_queue_full_folded_total counter
execfaild_sink_queue_full_folded_total{kind="journal",name="journal"} 0
execfaild_sink_queue_full_folded_total{kind="webhook",name="ops"} 1
# HELP execfaild_sink_queued Notifications waiting in the delivery queue.
# TYPE execfaild_sink_queued gauge
execfaild_sink_queued{kind="journal",name="journal"} 0
execfaild_sink_queued{kind="webhook",name="ops"} 5
# HELP execfaild_sink_spool_entries Notifications waiting in the spool.
# TYPE execfaild_sink_spool_entries gauge
execfaild_sink_spool_entries{kind="journal",name="journal"} 0
execfaild_sink_spool_entries{kind="webhook",name="ops"} 2
`
	if err := testutil.CollectAndCompare(NewCollector(fixed()), strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// TestReadsAtScrapeTime: a second scrape sees the snapshot as it is then,
// because the collector keeps no state of its own.
func TestReadsAtScrapeTime(t *testing.T) {
	var lost uint64
	c := NewCollector(Sources{Probe: func() probe.Stats { lost++; return probe.Stats{LostFailures: lost} }})
	for want := 1; want <= 2; want++ {
		exp := "# HELP execfaild_probe_lost_failures_total Failed execs the kernel ring buffer could not take; never reported.\n" +
			"# TYPE execfaild_probe_lost_failures_total counter\n" +
			"execfaild_probe_lost_failures_total " + string(rune('0'+want)) + "\n"
		if err := testutil.CollectAndCompare(c, strings.NewReader(exp), "execfaild_probe_lost_failures_total"); err != nil {
			t.Errorf("scrape %d: %v", want, err)
		}
	}
}

// TestReplicaSeries: a sink of several replicas shows each replica's
// copies under its own replica label, beside the sink's own counts.
func TestReplicaSeries(t *testing.T) {
	c := NewCollector(Sources{Pipeline: func() notify.Stats {
		return notify.Stats{Sinks: []notify.SinkStats{{Kind: "alertmanager", Name: "am", Delivered: 4, SpoolEntries: 3,
			Replicas: []notify.ReplicaStats{
				{Name: "1", Delivered: 4, DeliveredCount: 9},
				{Name: "2", Spooled: 3, SpoolEntries: 3, Failing: "retrying"},
			}}}}
	}})
	const want = `
# HELP execfaild_sink_replica_notifications_delivered_total Copies this replica delivered.
# TYPE execfaild_sink_replica_notifications_delivered_total counter
execfaild_sink_replica_notifications_delivered_total{kind="alertmanager",name="am",replica="1"} 4
execfaild_sink_replica_notifications_delivered_total{kind="alertmanager",name="am",replica="2"} 0
# HELP execfaild_sink_replica_spool_entries Copies waiting in this replica's spool.
# TYPE execfaild_sink_replica_spool_entries gauge
execfaild_sink_replica_spool_entries{kind="alertmanager",name="am",replica="1"} 0
execfaild_sink_replica_spool_entries{kind="alertmanager",name="am",replica="2"} 3
# HELP execfaild_sink_replica_failing 1 while this replica's last delivery failed, with the reason; 0 with reason="" once one succeeds.
# TYPE execfaild_sink_replica_failing gauge
execfaild_sink_replica_failing{kind="alertmanager",name="am",reason="",replica="1"} 0
execfaild_sink_replica_failing{kind="alertmanager",name="am",reason="retrying",replica="2"} 1
# HELP execfaild_sink_notifications_delivered_total Notifications delivered.
# TYPE execfaild_sink_notifications_delivered_total counter
execfaild_sink_notifications_delivered_total{kind="alertmanager",name="am"} 4
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"execfaild_sink_replica_notifications_delivered_total", "execfaild_sink_replica_spool_entries",
		"execfaild_sink_replica_failing", "execfaild_sink_notifications_delivered_total"); err != nil {
		t.Error(err)
	}
}

// TestHandlerServesProcessAndGo: /metrics carries the daemon's own cost
// (process_*, go_*) and build info beside its counters.
func TestHandlerServesProcessAndGo(t *testing.T) {
	rec := httptest.NewRecorder()
	Handler(fixed()).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{"process_cpu_seconds_total ", "process_resident_memory_bytes ", "go_goroutines ",
		`execfaild_build_info{goversion="` + runtime.Version() + `",version="1.2.3"} 1`, "execfaild_failures_detected_total 40"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
