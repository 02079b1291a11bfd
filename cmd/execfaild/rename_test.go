// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckConfigFormerKeyName: a syslog sink written with a TLS key's
// former name passes check-config with a warning naming file, line and
// key, and the effective configuration prints the current name. (The
// journal sink beside it keeps check-config from noting its absence.)
func TestCheckConfigFormerKeyName(t *testing.T) {
	file := filepath.Join(t.TempDir(), "old.toml")
	os.WriteFile(file, []byte("[[sink.syslog]]\nnetwork = \"tcp+tls\"\naddress = \"logs.example.net:6514\"\nserver_name = \"logs\"\n\n[[sink.journal]]\n"), 0o600)
	var out, errb bytes.Buffer
	if code := run([]string{"check-config", file}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	want := "warning: " + file + ":4: sink.syslog[0].server_name: former name of tls_server_name, still read: rename it\n"
	if errb.String() != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", errb.String(), want)
	}
	if !strings.Contains(out.String(), `tls_server_name = "logs"`) || strings.Contains(out.String(), "  server_name") {
		t.Errorf("effective config does not print the current name alone:\n%s", out.String())
	}
}
