package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCheckConfigFormerKeyName: a syslog sink written with the TLS keys'
// former names passes check-config with one warning per key, naming file,
// line and key, and the effective configuration prints the current names.
func TestCheckConfigFormerKeyName(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, selfSigned(t), 0o600)
	file := filepath.Join(dir, "old.toml")
	os.WriteFile(file, []byte("[[sink.syslog]]\nnetwork = \"tcp+tls\"\naddress = \"logs.example.net:6514\"\nca_file = \""+ca+"\"\nserver_name = \"logs\"\n"), 0o600)
	var out, errb bytes.Buffer
	if code := run([]string{"check-config", file}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	want := "warning: " + file + ":4: sink.syslog[0].ca_file: former name of tls_ca_file, still read: rename it\n" +
		"warning: " + file + ":5: sink.syslog[0].server_name: former name of tls_server_name, still read: rename it\n"
	if errb.String() != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", errb.String(), want)
	}
	for _, line := range []string{`tls_ca_file = "` + ca + `"`, `tls_server_name = "logs"`} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("effective config lacks %s:\n%s", line, out.String())
		}
	}
	if strings.Contains(out.String(), "  ca_file") || strings.Contains(out.String(), "  server_name") {
		t.Errorf("effective config prints a former name:\n%s", out.String())
	}
}

// selfSigned returns a PEM certificate, only parsed, never trusted.
func selfSigned(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "execfaild test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
