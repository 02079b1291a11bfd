// SPDX-License-Identifier: Apache-2.0

package main

import (
	"os"
	"path/filepath"
	"testing"
)

// A storm at the shipped limits is counted from three places: lines about
// the workload's paths, combined digests (no path) and the spool the
// daemon left for its next start. Other programs' lines are not counted.
func TestCountAllWithCombinedAndSpooled(t *testing.T) {
	w := workload{dir: "/tmp/w"}
	spool := t.TempDir()
	os.MkdirAll(filepath.Join(spool, "file-file"), 0o700)
	if err := os.WriteFile(filepath.Join(spool, "file-file", "00000000000000000001.json"),
		[]byte("{\n  \"path\": \"/tmp/w/missing-9\",\n  \"count\": 4\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(spool, "file-file", "state"), []byte("not a notification"), 0o600)
	lines := `{"path":"/tmp/w/missing-1"}
{"path":"/tmp/w/missing-2","count":3}
{"path":"/tmp/other/x","count":7}
{"error":"ENOENT","count":20}
`
	seen, combined, err := countAll(withSpooled([]byte(lines), spool), w)
	if err != nil {
		t.Fatal(err)
	}
	if seen != 1+3+4 || combined != 20 {
		t.Errorf("seen %d, combined %d; want 8 (one of them spooled) and 20", seen, combined)
	}
}
