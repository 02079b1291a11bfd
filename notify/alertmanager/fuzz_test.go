// SPDX-License-Identifier: Apache-2.0

package alertmanager

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/execfaild/execfaild/notify/internal/sinktest"
)

// FuzzAlert: whatever the process-controlled strings hold, the alert's
// label set is exactly the one its configuration and the event's present
// fields name, every label and annotation is UTF-8 without control
// characters, and the JSON Alertmanager receives decodes to the same.
func FuzzAlert(f *testing.F) {
	f.Add("web-1", "/srv/x", "cron.service", "interpreter-missing", "team=db", "run\x00a")
	f.Add("", "", "", "", "", "")
	f.Add("h\xff", "/p\n\"alertname\":\"x\"", "u\u202e", "c\x00", `", "evil": "1`, "\x1b[31m\x00\U000E0001")
	f.Add("h", `{"labels":{"x":"y"}}`, "\\", "", "\xc3", strings.Repeat("\xff", 100))
	s := sinktest.Build[*Sink](f, &Config{URL: "http://alertmanager.example:9093", Labels: map[string]string{"severity": "warning"}}, "fleet", nil)
	f.Fuzz(func(t *testing.T, host, path, unit, cause, fleet, argv string) {
		ev := sinktest.Synthetic()
		ev.Host, ev.Path, ev.Cause, ev.CauseText = host, path, cause, cause
		ev.Binary = nil
		ev.Process.Unit, ev.Process.Comm = unit, unit
		ev.Arguments = strings.Split(argv, "\x00")
		ev.Labels = map[string]string{"team": fleet}
		want := map[string]bool{"alertname": true, "severity": true, "team": true}
		for k, v := range map[string]string{"host": host, "error": ev.Error, "binary": ev.ResolvedPath(), "unit": unit, "cause": cause} {
			if v != "" {
				want[k] = true
			}
		}
		if ev.Test {
			want["test"] = true
		}
		a := s.Alert(ev)
		if got := slices.Sorted(maps.Keys(a.Labels)); !slices.Equal(got, slices.Sorted(maps.Keys(want))) {
			t.Fatalf("labels %q, want %q", got, slices.Sorted(maps.Keys(want)))
		}
		clean := func(what, v string) {
			if !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0 {
				t.Fatalf("%s %q is not UTF-8 without control characters", what, v)
			}
		}
		for k, v := range a.Labels {
			clean("label "+k, v)
		}
		for k, v := range a.Annotations {
			if !utf8.ValidString(v) {
				t.Fatalf("annotation %s %q is not UTF-8", k, v)
			}
		}
		body, err := s.Payload(ev)
		if err != nil {
			t.Fatal(err)
		}
		var sent []Alert
		if err := json.Unmarshal(body, &sent); err != nil {
			t.Fatalf("payload does not decode: %v", err)
		}
		if len(sent) != 1 || !maps.Equal(sent[0].Labels, a.Labels) || !maps.Equal(sent[0].Annotations, a.Annotations) {
			t.Fatalf("payload %s decodes to other labels or annotations than %+v", body, a)
		}
	})
}
