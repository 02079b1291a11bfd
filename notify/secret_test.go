// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveSecret(t *testing.T) {
	dir := t.TempDir()
	const value = "https://hooks.example/T0/B0/s3cr3t"
	withNL := filepath.Join(dir, "url")
	os.WriteFile(withNL, []byte("  "+value+"\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)

	got, err := ResolveSecret("", withNL, "url")
	if err != nil || got.Reveal() != value {
		t.Errorf("from file: %q, %v", got.Reveal(), err)
	}
	got, err = ResolveSecret(value, "", "url")
	if err != nil || got.Reveal() != value {
		t.Errorf("inline: %q, %v", got.Reveal(), err)
	}
	for _, tc := range []struct {
		name        string
		value       Secret
		file, key   string
		wantKey     string
		wantMessage string
	}{
		{"both", value, withNL, "url", "url", "either url or url_file"},
		{"neither", "", "", "token", "token", "missing"},
		{"missing file", "", filepath.Join(dir, "nope"), "url", "url_file", "no such file"},
		{"empty file", "", empty, "url", "url_file", "is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ResolveSecret(tc.value, tc.file, tc.key)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Key != tc.wantKey || !strings.Contains(err.Error(), tc.wantMessage) {
				t.Fatalf("got %v, want %s: ...%s", err, tc.wantKey, tc.wantMessage)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error reveals the secret: %v", err)
			}
		})
	}
}

// TestSecretURLShowsWhereItGoes: a URL secret prints its scheme and host,
// never its user, password, path or query.
func TestSecretURLShowsWhereItGoes(t *testing.T) {
	for in, want := range map[string]string{
		"https://hooks.slack.com/services/T1/B2/verysecret": "https://hooks.slack.com/<redacted>",
		"http://am-1.example.com:9093":                      "http://am-1.example.com:9093/<redacted>",
		"https://user:pw@siem.example/in?token=t0k":         "https://siem.example/<redacted>",
		"ftp://host/x":                     "<redacted>",
		"hooks.slack.com/services/T1/B2/x": "<redacted>",
	} {
		s := Secret(in)
		b, _ := s.MarshalText()
		for _, out := range []string{s.String(), s.LogValue().String(), fmt.Sprintf("%v %s %q", s, s, s), string(b)} {
			if !strings.Contains(out, want) || strings.Contains(out, "secret") || strings.Contains(out, "pw") || strings.Contains(out, "t0k") || strings.Contains(out, "services") {
				t.Errorf("%q printed as %q, want %q", in, out, want)
			}
		}
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	s := Secret("s3cr3t")
	for _, out := range []string{s.String(), s.GoString(), s.LogValue().String()} {
		if strings.Contains(out, "s3cr3t") {
			t.Errorf("printed: %s", out)
		}
	}
	b, _ := s.MarshalText()
	if string(b) != "<redacted>" {
		t.Errorf("marshal: %s", b)
	}
}

func TestRateAndDurationText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		out  string
	}{{"1/s", 1, "1/s"}, {"30/m", 0.5, "30/m"}, {"100/h", 100.0 / 3600, "100/h"}, {"off", Off, "off"}, {"2.5/s", 2.5, "150/m"}, {"0.3/s", 0.3, "18/m"}} {
		var r Rate
		if err := r.UnmarshalText([]byte(tc.in)); err != nil || float64(r) != tc.want {
			t.Errorf("%s: %v %v", tc.in, float64(r), err)
		}
		if b, _ := r.MarshalText(); string(b) != tc.out {
			t.Errorf("%s prints as %s", tc.in, b)
		}
	}
	for _, bad := range []string{"5", "5/d", "-1/s", "x/s"} {
		var r Rate
		if err := r.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("rate %q accepted", bad)
		}
	}
	var d Duration
	if err := d.UnmarshalText([]byte("-5s")); err == nil {
		t.Errorf("negative duration accepted")
	}
	if err := d.UnmarshalText([]byte("off")); err != nil || d != Off {
		t.Errorf("off: %v %v", d, err)
	}
}
