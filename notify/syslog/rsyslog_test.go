// SPDX-License-Identifier: Apache-2.0

package syslog

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/execfaild/execfaild/internal/poll"
)

// rsyslog is a real rsyslogd started by a test with its own configuration
// in a temp dir, listening on loopback for UDP, TCP and TLS and on a unix
// socket, parsing RFC 5424 and writing every message as one JSON line.
type rsyslog struct {
	bin, dir, conf, out           string
	udp, tcp, tls                 string // 127.0.0.1:port
	unix                          string
	caFile, clientCert, clientKey string
	cmd                           *exec.Cmd
	done                          chan struct{}
	stderr                        *poll.Buffer
}

// rsyslogd finds the binary and its TLS driver. Outside CI a missing one
// skips the test; in CI (CI=true) it fails it, because .ci/install-deps
// should have installed both.
func rsyslogd(t *testing.T) string {
	t.Helper()
	miss := func(what string) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s missing in CI: .ci/install-deps installs rsyslog and rsyslog-gnutls", what)
		}
		t.Skipf("%s not installed (apt-get install rsyslog rsyslog-gnutls)", what)
	}
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		bin = "/usr/sbin/rsyslogd"
		if _, err := os.Stat(bin); err != nil {
			miss("rsyslogd")
		}
	}
	drivers, _ := filepath.Glob("/usr/lib/*/rsyslog/lmnsd_gtls.so")
	if more, _ := filepath.Glob("/usr/lib/rsyslog/lmnsd_gtls.so"); len(more) > 0 {
		drivers = append(drivers, more...)
	}
	if len(drivers) == 0 {
		miss("rsyslog's gtls stream driver (rsyslog-gnutls)")
	}
	return bin
}

// startRsyslog starts an rsyslogd without TLS for one test, which may
// stop and start it again. (The TLS driver's start-up takes seconds.)
func startRsyslog(t *testing.T) *rsyslog {
	t.Helper()
	r := newRsyslog(t, false, "64k")
	t.Cleanup(func() { r.stop(t); os.RemoveAll(r.dir) })
	return r
}

var (
	sharedOnce sync.Once
	shared     *rsyslog
)

// sharedRsyslog returns the rsyslogd the read-only tests share, started
// by the first of them and stopped by TestMain.
func sharedRsyslog(t *testing.T) *rsyslog {
	t.Helper()
	rsyslogd(t) // skip or fail here, per test, when it is missing
	sharedOnce.Do(func() { shared = newRsyslog(t, true, "64k") })
	if shared == nil {
		t.Fatal("the shared rsyslogd failed to start (see the first test using it)")
	}
	return shared
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.stop(nil)
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// newRsyslog starts an rsyslogd; maxMessageSize "" keeps rsyslog's own
// default (8096 bytes).
func newRsyslog(t *testing.T, withTLS bool, maxMessageSize string) *rsyslog {
	t.Helper()
	r := &rsyslog{bin: rsyslogd(t)}
	// rsyslog's config and sockets live here; the unix socket path must
	// stay under 108 bytes, which t.TempDir's long names can exceed.
	dir, err := os.MkdirTemp("", "execfaild-rsyslog-")
	if err != nil {
		t.Fatal(err)
	}
	r.dir = dir
	r.conf = filepath.Join(dir, "rsyslog.conf")
	r.out = filepath.Join(dir, "out.json")
	r.unix = filepath.Join(dir, "log")
	r.udp = "127.0.0.1:" + strconv.Itoa(freePort(t, "udp"))
	r.tcp = "127.0.0.1:" + strconv.Itoa(freePort(t, "tcp"))
	r.tls = "127.0.0.1:" + strconv.Itoa(freePort(t, "tcp"))
	r.writeCerts(t)

	port := func(a string) string { _, p, _ := net.SplitHostPort(a); return p }
	globalMax := ""
	if maxMessageSize != "" {
		globalMax = fmt.Sprintf(" maxMessageSize=%q", maxMessageSize)
	}
	tlsInput := fmt.Sprintf(`input(type="imtcp" address="127.0.0.1" port=%q name="imtcp-tls"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="x509/certvalid"
      streamDriver.CAFile=%q streamDriver.CertFile=%q streamDriver.KeyFile=%q)`,
		port(r.tls), filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key"))
	if !withTLS {
		tlsInput, r.tls = "", ""
	}
	conf := fmt.Sprintf(`
global(workDirectory=%[1]q%[7]s)
module(load="imudp")
module(load="imtcp")
module(load="imuxsock" SysSock.Use="off")
module(load="mmpstrucdata")
input(type="imudp" address="127.0.0.1" port=%[2]q)
input(type="imtcp" address="127.0.0.1" port=%[3]q)
%[4]s
input(type="imuxsock" socket=%[5]q useSpecialParser="off" parseHostname="on" ignoreTimestamp="off" createPath="off")
template(name="rfc5424" type="string" string="{\"input\":\"%%inputname%%\",\"pri\":%%pri%%,\"facility\":\"%%syslogfacility-text%%\",\"severity\":\"%%syslogseverity-text%%\",\"hostname\":\"%%hostname:::json%%\",\"app\":\"%%app-name:::json%%\",\"procid\":\"%%procid:::json%%\",\"msgid\":\"%%msgid:::json%%\",\"ts\":\"%%timereported:::date-rfc3339%%\",\"msg\":\"%%msg:::json%%\",\"sd\":%%$!rfc5424-sd%%,\"raw\":\"%%rawmsg:::json%%\"}\n")
template(name="rfc3164" type="string" string="{\"input\":\"%%inputname%%\",\"pri\":%%pri%%,\"hostname\":\"%%hostname:::json%%\",\"tag\":\"%%syslogtag:::json%%\",\"app\":\"%%programname:::json%%\",\"procid\":\"%%procid:::json%%\",\"msg\":\"%%msg:::json%%\",\"raw\":\"%%rawmsg:::json%%\"}\n")
if $protocol-version == "1" then {
	action(type="mmpstrucdata")
	action(type="omfile" file=%[6]q template="rfc5424")
} else {
	action(type="omfile" file=%[6]q template="rfc3164")
}
`, dir, port(r.udp), port(r.tcp), tlsInput, r.unix, r.out, globalMax)
	if err := os.WriteFile(r.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	r.start(t)
	return r
}

func (r *rsyslog) start(t *testing.T) {
	t.Helper()
	// A socket left by a previous run would pass the readiness check.
	os.Remove(r.unix)
	cmd := exec.Command(r.bin, "-n", "-f", r.conf, "-i", filepath.Join(r.dir, "rsyslogd.pid"))
	stderr := &poll.Buffer{}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start rsyslogd: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	r.cmd, r.done, r.stderr = cmd, done, stderr
	// rsyslog binds every input before it runs any, so once the TCP
	// port accepts and the unix socket exists, UDP and TLS are bound too.
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-done:
			r.cmd = nil
			t.Fatalf("rsyslogd exited at start (%v):\n%s", cmd.ProcessState, stderr.String())
		default:
		}
		_, err := os.Stat(r.unix)
		if err == nil && listening(r.tcp) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsyslogd not listening after 20s:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the rsyslogd this test started, by its pid, and shows what
// it complained about in t's log (when there is a t).
func (r *rsyslog) stop(t *testing.T) {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		r.cmd.Process.Kill()
		<-r.done
	}
	r.cmd = nil
	if out := r.stderr.String(); t != nil && strings.Contains(out, "error") {
		t.Logf("rsyslogd reported:\n%s", out)
	}
}

func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// record is one line rsyslog wrote.
type record struct {
	Input    string                       `json:"input"`
	Pri      int                          `json:"pri"`
	Facility string                       `json:"facility"`
	Severity string                       `json:"severity"`
	Hostname string                       `json:"hostname"`
	App      string                       `json:"app"`
	Tag      string                       `json:"tag"`
	ProcID   string                       `json:"procid"`
	MsgID    string                       `json:"msgid"`
	TS       string                       `json:"ts"`
	Msg      string                       `json:"msg"`
	SD       map[string]map[string]string `json:"sd"`
	Raw      string                       `json:"raw"`
}

// offset marks the end of rsyslog's output so far; waitFor looks only
// beyond it, so a test (or a repeated run with -count) never matches an
// earlier test's records in the shared output.
func (r *rsyslog) offset() int64 {
	fi, err := os.Stat(r.out)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// waitFor polls rsyslog's output after off until n records match, and
// returns them.
func (r *rsyslog) waitFor(t *testing.T, off int64, n int, match func(record) bool) []record {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var got []record
		if b, err := os.ReadFile(r.out); err == nil && int64(len(b)) >= off {
			// rsyslog writes a long line in several chunks: only lines
			// already ended by a newline are complete records.
			done := b[off:]
			done = done[:bytes.LastIndexByte(done, '\n')+1]
			for _, line := range bytes.Split(done, []byte("\n")) {
				if len(line) == 0 {
					continue
				}
				var rec record
				if err := json.Unmarshal(line, &rec); err != nil {
					t.Fatalf("rsyslog wrote a line that is not JSON (%v): %s", err, line)
				}
				if match(rec) {
					got = append(got, rec)
				}
			}
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(r.out)
			t.Fatalf("rsyslog received %d of %d expected messages; its output:\n%s", len(got), n, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeCerts creates a CA, a server certificate for 127.0.0.1 and a client
// certificate, as an operator's private PKI would.
func (r *rsyslog) writeCerts(t *testing.T) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(r.dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	now := time.Now()
	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "execfaild test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	r.caFile = write("ca.pem", "CERTIFICATE", caDER)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, certName, keyName string) (string, string) {
		k := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		if usage == x509.ExtKeyUsageServerAuth {
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
			tmpl.DNSNames = []string{"localhost"}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(certName, "CERTIFICATE", der), write(keyName, "PRIVATE KEY", kder)
	}
	leaf(2, "localhost", x509.ExtKeyUsageServerAuth, "server.pem", "server.key")
	r.clientCert, r.clientKey = leaf(3, "execfaild", x509.ExtKeyUsageClientAuth, "client.pem", "client.key")
}
