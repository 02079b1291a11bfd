// SPDX-License-Identifier: Apache-2.0

package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadableSecretsWarning(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, body string
		mode       os.FileMode
		want       string
	}{
		{"inline url, world-readable", "[[sink.slack]]\nurl = \"https://hooks.example/T/B/secretpart\"\n", 0o644, "sink.slack[0].url"},
		{"inline header, group-readable", "[[sink.webhook]]\nurl_file = \"URLFILE\"\n[sink.webhook.headers]\nX-Key = \"secretpart\"\n", 0o640, "sink.webhook[0].headers"},
		{"inline password", "[[sink.webhook]]\nurl_file = \"URLFILE\"\nusername = \"u\"\npassword = \"secretpart\"\n", 0o604, "sink.webhook[0].password"},
		{"inline replica urls", "[[sink.alertmanager]]\nurls = [\"http://am1:9093\", \"http://u:secretpart@am2:9093\"]\n", 0o644, "sink.alertmanager[0].urls"},
		{"inline url, private", "[[sink.slack]]\nurl = \"https://hooks.example/T/B/secretpart\"\n", 0o600, ""},
		{"secrets from files only", "[[sink.slack]]\nurl_file = \"URLFILE\"\n", 0o644, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			urlFile := filepath.Join(dir, "url")
			os.WriteFile(urlFile, []byte("https://h/x\n"), 0o600)
			path := filepath.Join(dir, "c.toml")
			os.WriteFile(path, []byte(strings.ReplaceAll(tc.body, "URLFILE", urlFile)), 0o600)
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			c, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			w := c.ReadableSecretsWarning()
			if tc.want == "" && w != "" || tc.want != "" && !strings.Contains(w, tc.want) {
				t.Errorf("warning %q, want one naming %q", w, tc.want)
			}
			if strings.Contains(w, "secretpart") || strings.Contains(w, "\n") {
				t.Errorf("warning not one secret-free line: %q", w)
			}
		})
	}
}
