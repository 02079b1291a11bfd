// SPDX-License-Identifier: Apache-2.0

package syslog

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/notify/internal/sinktest"
)

// TestFormerTLSKeyNames: a file that names the TLS settings as they were
// named before (ca_file, cert_file, key_file, server_name) still loads,
// the settings take effect, the entry says which former names it used,
// and errors name the key the file holds; both names of one setting is
// an error.
func TestFormerTLSKeyNames(t *testing.T) {
	c := DefaultConfig()
	sinktest.Decode(t, `
network = "tcp+tls"
address = "logs.example.net:6514"
ca_file = "/etc/ssl/logs-ca.pem"
server_name = "logs.example.net"
`, c)
	c.ApplyDefaults()
	if c.CAFile != "/etc/ssl/logs-ca.pem" || c.ServerName != "logs.example.net" {
		t.Errorf("former names not applied: ca %q, server name %q", c.CAFile, c.ServerName)
	}
	want := []notify.RenamedKey{{Old: "ca_file", New: "tls_ca_file"}, {Old: "server_name", New: "tls_server_name"}}
	if got := c.RenamedKeys(); !reflect.DeepEqual(got, want) {
		t.Errorf("RenamedKeys() = %v, want %v", got, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("validate: %v", err)
	}
	c.CAFile = filepath.Join(t.TempDir(), "missing.pem")
	if err := c.CheckFiles(); err == nil || !strings.HasPrefix(err.Error(), "ca_file: ") {
		t.Errorf("CheckFiles with a missing CA file written as ca_file: %v, want an error naming ca_file", err)
	}

	fresh := DefaultConfig()
	if got := fresh.RenamedKeys(); len(got) != 0 {
		t.Errorf("RenamedKeys() of a config using the current names = %v", got)
	}

	// Both names of one setting is an error naming the former one.
	both := DefaultConfig()
	sinktest.Decode(t, "network = \"tcp+tls\"\naddress = \"h:6514\"\ncert_file = \"/a.pem\"\ntls_cert_file = \"/b.pem\"\ntls_key_file = \"/b.key\"\n", both)
	both.ApplyDefaults()
	want2 := "cert_file: former name of tls_cert_file, which is set too: keep only tls_cert_file"
	if err := both.Validate(); err == nil || err.Error() != want2 {
		t.Errorf("Validate() with cert_file and tls_cert_file = %v, want %q", err, want2)
	}
}
