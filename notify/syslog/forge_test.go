// SPDX-License-Identifier: Apache-2.0

package syslog

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/execfaild/execfaild/probe/event"
)

// rsyslogDefaultMax is rsyslog's default maxMessageSize. A longer message
// is split there: the rest becomes a record of its own.
const rsyslogDefaultMax = 8096

// TestRsyslogForgedRecord: whoever runs a failing exec chooses its path
// and a script's interpreter.
// Sent whole to an rsyslog with its default settings, a message longer
// than rsyslog's limit was split, and a path placing a syslog header at
// the split point made rsyslog log a record with a forged HOSTNAME and
// APP-NAME. The paths here put the header at and around the split point a
// message of 8192 bytes (the former default) would have; each must arrive
// as one record with the real header, its structured data intact.
func TestRsyslogForgedRecord(t *testing.T) {
	r := newRsyslog(t, false, "")
	t.Cleanup(func() { r.stop(t); os.RemoveAll(r.dir) })
	off := r.offset()

	const forged = "<13>1 2024-01-01T00:00:00Z forged-host forged-app - - - gotcha"
	c := DefaultConfig()
	c.Network, c.Address, c.Hostname = "tcp", r.tcp, "real-host"
	s := newSink(t, c)

	var events []*event.Event
	for i, k := 0, 0; k < 200 && len(events) < 8; k++ {
		ev := event.Synthetic(fixedTime, "web-1")
		ev.Binary = nil
		// A long path fills the message; a script's #! line names the
		// interpreter, which the sentence ends with.
		ev.Path = fmt.Sprintf("/tmp/ev%d/%s", i, strings.Repeat("a", 3600))
		ev.InterpreterPath = "/x/" + forged + "/" + strings.Repeat("b", k)
		msg := format5424(s.h, ev.Time, &ev, 8192)
		at := strings.LastIndex(msg, forged)
		if at < rsyslogDefaultMax-3 || at > rsyslogDefaultMax+4 {
			continue
		}
		events = append(events, &ev)
		i++
	}
	if len(events) == 0 {
		t.Fatal("no path put the forged header near the split point; the calibration is off")
	}
	for _, ev := range events {
		if err := s.Send(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	// A last ordinary record: once it is in, everything before it is.
	end := event.Synthetic(fixedTime, "web-1")
	end.Path = "/tmp/sentinel"
	if err := s.Send(context.Background(), &end); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, off, 1, func(rec record) bool { return strings.Contains(rec.Raw, "/tmp/sentinel") })
	all := r.waitFor(t, off, 0, func(record) bool { return true })
	if len(all) != len(events)+1 {
		t.Errorf("rsyslog logged %d records for %d messages", len(all), len(events)+1)
	}
	for i, rec := range all {
		if rec.Hostname != "real-host" || rec.App != AppName || rec.MsgID != MsgID {
			t.Errorf("record %d: HOSTNAME %q APP-NAME %q MSGID %q, want real-host %s %s; raw %.120q", i, rec.Hostname, rec.App, rec.MsgID, AppName, MsgID, rec.Raw)
		}
		if len(rec.Raw) > rsyslogDefaultMax {
			t.Errorf("record %d is %d bytes, more than rsyslog's default", i, len(rec.Raw))
		}
		sd := rec.SD[DefaultSDID]
		if i < len(events) && (sd["error"] != "ENOENT" || sd["truncated"] != "true" || !strings.HasPrefix(sd["path"], fmt.Sprintf("/tmp/ev%d/aaaa", i))) {
			t.Errorf("record %d: structured data not whole: error %q truncated %q path %.40q", i, sd["error"], sd["truncated"], sd["path"])
		}
	}
}
