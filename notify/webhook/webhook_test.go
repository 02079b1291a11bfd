// SPDX-License-Identifier: Apache-2.0

package webhook

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/notify/httpsink"
	"github.com/execfaild/execfaild/notify/internal/sinktest"
	"github.com/execfaild/execfaild/notify/webhook/webhooktest"
	"github.com/execfaild/execfaild/probe/event"
)

var t0 = sinktest.T0

func build(t *testing.T, c *Config, log *slog.Logger) *Sink {
	return sinktest.Build[*Sink](t, c, "audit", log)
}

// capture records the last request's headers and body.
type capture struct {
	header http.Header
	body   []byte
}

func (c *capture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.header = r.Header.Clone()
	c.body = new(bytes.Buffer).Bytes()
	var b bytes.Buffer
	b.ReadFrom(r.Body)
	c.body = b.Bytes()
}

func TestGolden(t *testing.T) {
	cp := &capture{}
	srv := httptest.NewServer(cp)
	defer srv.Close()
	s := build(t, &Config{
		URL:        notify.Secret(srv.URL + "/hook"),
		HMACSecret: "golden-hmac-key",
		Headers:    map[string]notify.Secret{"X-Team": "platform"},
	}, nil)
	s.now = func() time.Time { return t0 }
	for name, ev := range map[string]*event.Event{"synthetic": sinktest.Synthetic(), "digest": sinktest.Digest()} {
		if err := s.Send(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		for _, h := range []string{"Content-Type", "User-Agent", "X-Team", HeaderDelivery, HeaderTimestamp, HeaderSignature} {
			fmt.Fprintf(&out, "%s: %s\n", h, cp.header.Get(h))
		}
		out.WriteString("\n")
		json.Indent(&out, cp.body, "", "  ")
		out.WriteString("\n")
		sinktest.Golden(t, filepath.Join("testdata", name+".golden"), out.Bytes())
		// The body is exactly the event as encoding/json writes it.
		ref, _ := json.Marshal(ev)
		if !bytes.Equal(cp.body, ref) {
			t.Errorf("%s: body is not json.Marshal(event)", name)
		}
		var fields map[string]any
		if err := json.Unmarshal(cp.body, &fields); err != nil {
			t.Fatal(err)
		}
		if fields["cause"] != "interpreter-crlf" || fields["cause_text"] != ev.CauseText || fields["cause_inferred"] != nil {
			t.Errorf("%s: cause %#v, cause_text %#v, cause_inferred %#v", name, fields["cause"], fields["cause_text"], fields["cause_inferred"])
		}
	}
}

func TestSignedDeliveryRoundTrips(t *testing.T) {
	rcv, err := webhooktest.Start(webhooktest.Options{HMACSecret: "k3y-for-signing", BearerToken: "bearer-tok-123"})
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "token")
	os.WriteFile(tokFile, []byte("bearer-tok-123\n"), 0o600)
	s := build(t, &Config{URL: notify.Secret(rcv.URL()), HMACSecret: "k3y-for-signing", Auth: authBearerFile(tokFile)}, nil)
	want := []*event.Event{sinktest.Synthetic(), sinktest.Digest()}
	for _, ev := range want {
		if err := s.Send(context.Background(), ev); err != nil {
			t.Fatalf("Send: %v (receiver: %+v)", err, rcv.Requests())
		}
	}
	got := rcv.Events()
	if len(got) != len(want) {
		t.Fatalf("receiver accepted %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(&got[i], want[i]) {
			t.Errorf("event %d changed on the way:\n got %+v\nwant %+v", i, got[i], *want[i])
		}
	}
}

func authBearerFile(f string) httpsink.Auth { return httpsink.Auth{BearerTokenFile: f} }

func TestWrongSecretIsPermanent(t *testing.T) {
	rcv, err := webhooktest.Start(webhooktest.Options{HMACSecret: "receiver-key"})
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	s := build(t, &Config{URL: notify.Secret(rcv.URL()), HMACSecret: "sender-key-differs"}, nil)
	err = s.Send(context.Background(), sinktest.Synthetic())
	if !notify.IsPermanent(err) || !strings.Contains(err.Error(), "401 Unauthorized: signature mismatch") {
		t.Fatalf("err = %v, want permanent 401 signature mismatch", err)
	}
	if len(rcv.Events()) != 0 {
		t.Errorf("receiver accepted a badly signed event")
	}
}

func TestStaleTimestampRejected(t *testing.T) {
	rcv, err := webhooktest.Start(webhooktest.Options{HMACSecret: "k", Now: func() time.Time { return time.Now().Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	s := build(t, &Config{URL: notify.Secret(rcv.URL()), HMACSecret: "k"}, nil)
	if err := s.Send(context.Background(), sinktest.Synthetic()); err == nil || !strings.Contains(err.Error(), "timestamp") {
		t.Fatalf("a signature an hour old was accepted: %v", err)
	}
}

// The test stands in for the pipeline: it keeps what Send could not
// deliver (retryable) and retries it on the next round.
func TestReceiverDownThenUpGetsEverything(t *testing.T) {
	quickRetries(t)
	rcv, err := webhooktest.Start(webhooktest.Options{HMACSecret: "k3y", Username: "execfaild", Password: "pw-123456"})
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	s := build(t, &Config{URL: notify.Secret(rcv.URL()), HMACSecret: "k3y", Auth: basic("execfaild", "pw-123456")}, nil)

	var sent, pending []*event.Event
	deliver := func() {
		var still []*event.Event
		for _, ev := range pending {
			err := s.Send(context.Background(), ev)
			switch {
			case err == nil:
			case notify.IsPermanent(err):
				t.Fatalf("outage reported as permanent: %v", err)
			default:
				still = append(still, ev)
			}
		}
		pending = still
	}
	next := func(i int) {
		ev := sinktest.Synthetic()
		ev.Process.PID = uint32(5000 + i)
		sent = append(sent, ev)
		pending = append(pending, ev)
	}
	for i := 0; i < 3; i++ {
		next(i)
		deliver()
	}
	rcv.SetDown(true) // 503
	for i := 3; i < 6; i++ {
		next(i)
		deliver()
	}
	if len(pending) != 3 {
		t.Fatalf("%d pending during the 503 outage, want 3", len(pending))
	}
	rcv.Stop() // connection refused
	for i := 6; i < 9; i++ {
		next(i)
		deliver()
	}
	if len(pending) != 6 {
		t.Fatalf("%d pending while the port is closed, want 6", len(pending))
	}
	if err := rcv.Restart(); err != nil {
		t.Fatal(err)
	}
	deliver() // still 503: restarted but SetDown(true) holds
	if len(pending) != 6 {
		t.Fatalf("%d pending, want 6", len(pending))
	}
	rcv.SetDown(false)
	deliver()
	if len(pending) != 0 {
		t.Fatalf("%d still pending after recovery", len(pending))
	}
	got := rcv.Events()
	if len(got) != len(sent) {
		t.Fatalf("receiver has %d events, sent %d", len(got), len(sent))
	}
	seen := map[uint32]int{}
	for _, ev := range got {
		seen[ev.Process.PID]++
	}
	for _, ev := range sent {
		if seen[ev.Process.PID] != 1 {
			t.Errorf("pid %d delivered %d times", ev.Process.PID, seen[ev.Process.PID])
		}
	}
}

func basic(u, p string) httpsink.Auth {
	return httpsink.Auth{Username: u, Password: notify.Secret(p)}
}

func TestDeliveryIDStableAcrossAttempts(t *testing.T) {
	rcv, err := webhooktest.Start(webhooktest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	s := build(t, &Config{URL: notify.Secret(rcv.URL())}, nil)
	ev := sinktest.Synthetic()
	// A lost response makes the pipeline send the same notification again.
	for i := 0; i < 2; i++ {
		if err := s.Send(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	if len(rcv.Events()) != 1 || rcv.Duplicates() != 1 {
		t.Errorf("events %d, duplicates %d; want 1 and 1", len(rcv.Events()), rcv.Duplicates())
	}
}

func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCA(t)
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", ca.Raw)
	srvCert := issue(t, ca, caKey, "localhost", false)
	cliCert := issue(t, ca, caKey, "execfaild", true)
	writePEM(t, filepath.Join(dir, "client.pem"), "CERTIFICATE", cliCert.Certificate[0])
	keyDER, _ := x509.MarshalPKCS8PrivateKey(cliCert.PrivateKey)
	writePEM(t, filepath.Join(dir, "client.key"), "PRIVATE KEY", keyDER)

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	var peer string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer = r.TLS.PeerCertificates[0].Subject.CommonName
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	url := notify.Secret("https://localhost:" + port + "/hook")

	c := &Config{URL: url}
	c.TLSCAFile = filepath.Join(dir, "ca.pem")
	c.TLSCertFile = filepath.Join(dir, "client.pem")
	c.TLSKeyFile = filepath.Join(dir, "client.key")
	if err := build(t, c, nil).Send(context.Background(), sinktest.Synthetic()); err != nil {
		t.Fatalf("Send over mutual TLS: %v", err)
	}
	if peer != "execfaild" {
		t.Errorf("server saw client certificate %q", peer)
	}

	// Without the private CA the server is not trusted: no quick retries,
	// but retryable, since a fixed CA file should deliver what waited.
	noCA := &Config{URL: url}
	err := build(t, noCA, nil).Send(context.Background(), sinktest.Synthetic())
	if err == nil || notify.IsPermanent(err) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted server: err = %v", err)
	}
}

func TestSecretsNeverShown(t *testing.T) {
	quickRetries(t)
	// A receiver that echoes everything it got, as debugging proxies do.
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, "%s %s %v", r.URL, r.Header.Get("Authorization"), r.Header)
	})
	srv := httptest.NewServer(echo)
	defer srv.Close()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	secrets := []string{"urlSECRETquery", "BEARERsecret99", "HMACsecretKEY", "apiKEYvalue77"}
	c := &Config{
		URL:        notify.Secret(srv.URL + "/hook?token=urlSECRETquery"),
		HMACSecret: "HMACsecretKEY",
		Headers:    map[string]notify.Secret{"X-Api-Key": "apiKEYvalue77"},
	}
	c.BearerToken = "BEARERsecret99"
	errEcho := build(t, c, log).Send(context.Background(), sinktest.Synthetic())
	if !notify.IsPermanent(errEcho) {
		t.Fatalf("403 not permanent: %v", errEcho)
	}
	c2 := *c
	c2.URL = notify.Secret("http://" + closedAddr(t) + "/hook?token=urlSECRETquery")
	errDown := build(t, &c2, log).Send(context.Background(), sinktest.Synthetic())
	if errDown == nil || notify.IsPermanent(errDown) {
		t.Fatalf("refused connection: %v", errDown)
	}
	dump, _ := json.Marshal(c)
	printed := errEcho.Error() + errDown.Error() + logs.String() + string(dump) + fmt.Sprintf("%v %+v", c, c)
	if logs.Len() == 0 {
		t.Fatal("no retry logged; nothing checked")
	}
	for _, s := range secrets {
		if strings.Contains(printed, s) {
			t.Errorf("a secret (%d bytes) appears in an error, log line or config dump", len(s))
		}
	}
	if !strings.Contains(errEcho.Error(), "webhook audit: permanent: 403 Forbidden") {
		t.Errorf("error lost its meaning: %v", errEcho)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{}, "url: missing: set url or url_file"},
		{Config{URL: "https://h.example/x", HMACSecret: "a", HMACSecretFile: "/f"}, "hmac_secret: set either hmac_secret or hmac_secret_file, not both"},
		{Config{URL: "https://h.example/x", Headers: map[string]notify.Secret{"Bad Name": "v"}}, `headers.Bad Name: "Bad Name" is not a valid header name`},
		{Config{URL: "https://h.example/x", Headers: map[string]notify.Secret{"X-A": "a\r\nInjected: 1"}}, "headers.X-A: value must be one line"},
		{Config{URL: "https://h.example/x", HMACSecret: "k", Headers: map[string]notify.Secret{"x-execfaild-signature": "v"}}, "headers.x-execfaild-signature: conflicts with hmac_secret"},
		{Config{URL: "https://h.example/x", Auth: basic("u", "p"), Headers: map[string]notify.Secret{"Authorization": "v"}}, "headers.Authorization: conflicts with bearer_token/username"},
		{Config{URL: "https://h.example/x", Auth: basic("", "p")}, "username: required with password"},
	} {
		err := tc.c.Validate()
		if err == nil || err.Error() != tc.want {
			t.Errorf("Validate = %v, want %q", err, tc.want)
		}
	}
	c := Config{URL: "https://h.example/x"}
	c.TLSCertFile = "/c.pem"
	if err := c.Validate(); err == nil || err.Error() != "tls_key_file: required with tls_cert_file" {
		t.Errorf("cert without key: %v", err)
	}
	c.TLSKeyFile = "/nonexistent.key"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.New(notify.Env{}); err == nil || !strings.HasPrefix(err.Error(), "tls_cert_file: ") {
		t.Errorf("missing cert file: %v", err)
	}
	if _, ok := notify.NewSinkConfig("webhook"); !ok {
		t.Error("webhook is not registered")
	}
}

// quickRetries shortens the waits between the quick retries inside Send.
func quickRetries(t *testing.T) {
	old := tuneClient
	tuneClient = func(o *httpsink.Options) { o.RetryWaitMin, o.RetryWaitMax = time.Millisecond, 2*time.Millisecond }
	t.Cleanup(func() { tuneClient = old })
}

func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "execfaild test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	return ca, key
}

func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, client bool) tls.Certificate {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{cn},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestDecodesEveryKey(t *testing.T) {
	const doc = `
name = "hook"
url_file = "/etc/execfaild/hook.url"
hmac_secret_file = "/etc/execfaild/hook.key"
username = "execfaild"
password_file = "/etc/execfaild/hook.password"
timeout = "4s"
tls_ca_file = "/etc/execfaild/ca.pem"
tls_cert_file = "/etc/execfaild/client.pem"
tls_key_file = "/etc/execfaild/client.key"
tls_server_name = "events.example.com"
[headers]
X-Api-Key = "key-value"
`
	cfg, _ := notify.NewSinkConfig("webhook")
	sinktest.Decode(t, doc, cfg)
	c := cfg.(*Config)
	if c.URLFile != "/etc/execfaild/hook.url" || c.HMACSecretFile != "/etc/execfaild/hook.key" || c.Username != "execfaild" ||
		c.PasswordFile != "/etc/execfaild/hook.password" || c.Timeout.D() != 4*time.Second || c.TLSCAFile != "/etc/execfaild/ca.pem" ||
		c.TLSCertFile != "/etc/execfaild/client.pem" || c.TLSKeyFile != "/etc/execfaild/client.key" ||
		c.TLSServerName != "events.example.com" || c.Headers["X-Api-Key"].Reveal() != "key-value" {
		t.Errorf("decoded %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	var out bytes.Buffer
	if err := toml.NewEncoder(&out).Encode(c); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "key-value") {
		t.Errorf("a header value is printed in the effective config:\n%s", out.String())
	}
}
