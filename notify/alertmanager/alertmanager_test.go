// SPDX-License-Identifier: Apache-2.0

package alertmanager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/notify/internal/sinktest"
	"github.com/execfaild/execfaild/probe/event"
)

var t0 = sinktest.T0

func build(t *testing.T, c *Config, log *slog.Logger) *Sink {
	return sinktest.Build[*Sink](t, c, "fleet", log)
}

func TestGolden(t *testing.T) {
	s := build(t, &Config{URL: "http://alertmanager.example:9093", Labels: map[string]string{"severity": "warning"}}, nil)
	s.now = func() time.Time { return t0.Add(10 * time.Minute) }
	for name, ev := range map[string]*event.Event{"synthetic": sinktest.Synthetic(), "digest": sinktest.Digest()} {
		body, err := s.Payload(ev)
		if err != nil {
			t.Fatal(err)
		}
		var pretty bytes.Buffer
		json.Indent(&pretty, body, "", "  ")
		pretty.WriteString("\n")
		sinktest.Golden(t, filepath.Join("testdata", name+".golden"), pretty.Bytes())
	}
}

func TestEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"http://am:9093":                     "http://am:9093/api/v2/alerts",
		"http://am:9093/":                    "http://am:9093/api/v2/alerts",
		"https://am.example/prefix":          "https://am.example/prefix/api/v2/alerts",
		"https://am.example/api/v2/alerts":   "https://am.example/api/v2/alerts",
		"https://am.example/x/?tenant=a&b=c": "https://am.example/x/api/v2/alerts?tenant=a&b=c",
		"http://u:p@am:9093/api/v2/alerts/":  "http://u:p@am:9093/api/v2/alerts",
	} {
		if got := endpoint(in); got != want {
			t.Errorf("endpoint(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEndsAtNeverBeforeStartsAt(t *testing.T) {
	s := build(t, &Config{URL: "http://am:9093", ResolveTimeout: notify.Duration(time.Minute)}, nil)
	s.now = func() time.Time { return t0.Add(-time.Hour) } // clock stepped back
	a := s.Alert(sinktest.Synthetic())
	if !a.StartsAt.Equal(t0) || !a.EndsAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("startsAt %v endsAt %v; want %v and a minute later", a.StartsAt, a.EndsAt, t0)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{}, "url: missing: set url, url_file, urls or url_files"},
		{Config{URLs: []notify.Secret{}}, "urls: empty: list at least one Alertmanager"},
		{Config{URL: "http://am:9093", URLs: []notify.Secret{"http://am2:9093"}}, "url: set one of url, url_file, urls and url_files"},
		{Config{URLs: []notify.Secret{"http://am1:9093", "ftp://u:hunter2@am2:9093"}}, "urls: entry 2: scheme must be http or https"},
		{Config{URLs: []notify.Secret{"http://u:hunter2@am1:9093", "http://u:hunter2@am1:9093"}}, "urls: entries 1 and 2 are the same"},
		{Config{URLFiles: []string{"/etc/am1", ""}}, "url_files: entry 2 is empty"},
		{Config{URL: "http://am:9093", ResolveTimeout: notify.Off}, "resolve_timeout: must be a positive duration"},
		{Config{URL: "http://am:9093", Labels: map[string]string{"team-name": "x"}}, `labels.team-name: "team-name" is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, no leading __)`},
		{Config{URL: "http://am:9093", Labels: map[string]string{"__meta": "x"}}, `labels.__meta: "__meta" is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, no leading __)`},
		{Config{URL: "http://am:9093", Labels: map[string]string{"host": "x"}}, "labels.host: host is set by execfaild"},
		{Config{URL: "http://am:9093", Labels: map[string]string{"cause": "x"}}, "labels.cause: cause is set by execfaild"},
		{Config{URL: "http://am:9093", Labels: map[string]string{"team": ""}}, "labels.team: value must be non-empty UTF-8"},
		{Config{URL: "http://am:9093", GeneratorURL: "javascript:alert(1)"}, "generator_url: scheme must be http or https"},
	} {
		if err := tc.c.Validate(); err == nil || err.Error() != tc.want {
			t.Errorf("Validate = %v, want %q", err, tc.want)
		}
	}
	cfg, ok := notify.NewSinkConfig("alertmanager")
	if !ok {
		t.Fatal("alertmanager is not registered")
	}
	if rt := cfg.(*Config).ResolveTimeout.D(); rt != 5*time.Minute {
		t.Errorf("default resolve_timeout = %v, want 5m", rt)
	}
}

// The real Alertmanager, shared by the tests below.
var (
	amOnce sync.Once
	amURL  string
	amErr  error
	amCmd  *exec.Cmd
	amDir  string
	amLog  bytes.Buffer
	// amExited receives Wait's result; only its goroutine may call Wait.
	amExited = make(chan error, 1)
)

func TestMain(m *testing.M) {
	code := m.Run()
	if amCmd != nil {
		amCmd.Process.Kill()
		select {
		case <-amExited:
		case <-time.After(10 * time.Second):
			fmt.Fprintln(os.Stderr, "alertmanager did not exit after SIGKILL")
		}
	}
	if amDir != "" {
		os.RemoveAll(amDir)
	}
	os.Exit(code)
}

func alertmanagerBinary() string {
	if p := os.Getenv("EXECFAILD_ALERTMANAGER"); p != "" {
		return p
	}
	return "/usr/bin/prometheus-alertmanager"
}

// realAlertmanager starts Debian's Alertmanager on a loopback port with
// clustering off and returns its base URL. Outside CI a missing binary
// skips; in CI it fails, since .ci/install-deps installs it.
func realAlertmanager(t *testing.T) string {
	t.Helper()
	bin := alertmanagerBinary()
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("alertmanager binary %s missing in CI (.ci/install-deps installs prometheus-alertmanager): %v", bin, err)
		}
		t.Skipf("no %s (apt install prometheus-alertmanager)", bin)
	}
	amOnce.Do(func() { amURL, amErr = startAlertmanager(bin) })
	if amErr != nil {
		t.Fatalf("start alertmanager: %v\n%s", amErr, amLog.String())
	}
	return amURL
}

func startAlertmanager(bin string) (string, error) {
	dir, err := os.MkdirTemp("", "execfaild-am-")
	if err != nil {
		return "", err
	}
	amDir = dir
	cfg := filepath.Join(dir, "alertmanager.yml")
	// Alerts only need to be stored and listed; a receiver without
	// integrations keeps notifications inside the process.
	if err := os.WriteFile(cfg, []byte("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n"), 0o644); err != nil {
		return "", err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	l.Close()
	amCmd = exec.Command(bin,
		"--config.file="+cfg,
		"--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--cluster.listen-address=",
		"--log.level=warn",
	)
	amCmd.Stdout, amCmd.Stderr = &amLog, &amLog
	if err := amCmd.Start(); err != nil {
		return "", err
	}
	base := "http://" + addr
	go func() { amExited <- amCmd.Wait() }()
	probe := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-amExited:
			amCmd = nil
			return "", fmt.Errorf("alertmanager exited: %v", err)
		default:
		}
		resp, err := probe.Get(base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", errors.New("alertmanager not ready after 60s")
}

// gettable is the part of a GettableAlert the tests read.
type gettable struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Fingerprint string            `json:"fingerprint"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

func listAlerts(t *testing.T, base string, matchers ...string) []gettable {
	t.Helper()
	q := url.Values{}
	for _, m := range matchers {
		q.Add("filter", m)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(base + "/api/v2/alerts?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET alerts: %s: %s", resp.Status, b)
	}
	var out []gettable
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("decode alerts: %v", err)
	}
	return out
}

func TestRealAlertmanagerStoresTheAlert(t *testing.T) {
	base := realAlertmanager(t)
	s := build(t, &Config{URL: notify.Secret(base), Labels: map[string]string{"severity": "warning", "team": "platform"}}, nil)
	ev := sinktest.Synthetic()
	// A host of its own: tests (and -count repeats) share one Alertmanager,
	// which keeps the first startsAt of a label set.
	host := fmt.Sprintf("stores-%d", time.Now().UnixNano())
	ev.Host = host
	ev.Time = time.Now().Add(-time.Second)
	before := time.Now()
	if err := s.Send(context.Background(), ev); err != nil {
		t.Fatalf("Send: %v", err)
	}
	after := time.Now()
	alerts := listAlerts(t, base, `host="`+host+`"`)
	if len(alerts) != 1 {
		t.Fatalf("alertmanager holds %d alerts for the host, want 1: %+v", len(alerts), alerts)
	}
	a := alerts[0]
	wantLabels := map[string]string{
		"alertname": "ExecFailed", "host": host, "error": "ENOENT",
		"binary": "/srv/app/deploy.sh", "unit": "deployer.service",
		"severity": "warning", "team": "platform", "cause": "interpreter-crlf",
	}
	if !reflect.DeepEqual(a.Labels, wantLabels) {
		t.Errorf("labels = %v\nwant %v", a.Labels, wantLabels)
	}
	for k, want := range map[string]string{
		"summary":     "deploy.sh failed on " + host + ": ENOENT (no such file or directory)",
		"description": `deployer (pid 4242, uid 1000, deployer.service) could not execute /srv/app/deploy.sh: no such file or directory; the script /srv/app/deploy.sh has Windows (CRLF) line endings, so its interpreter "/bin/bash\r" does not exist; convert it with dos2unix /srv/app/deploy.sh; its #! line names the interpreter /bin/bash\r (Windows line endings).`,
		"cause_text":  `the script /srv/app/deploy.sh has Windows (CRLF) line endings, so its interpreter "/bin/bash\r" does not exist; convert it with dos2unix /srv/app/deploy.sh`,
		"argv":        `./deploy.sh '--target=<prod> & "all"' ']\x'`,
		"interpreter": `/bin/bash\r`,
		"pid":         "4242",
		"uid":         "1000",
		"count":       "1",
		"cwd":         "/srv/app",
		"errno":       "2",
	} {
		if a.Annotations[k] != want {
			t.Errorf("annotation %s = %q, want %q", k, a.Annotations[k], want)
		}
	}
	if a.Status.State != "active" {
		t.Errorf("state = %q, want active", a.Status.State)
	}
	// Alertmanager keeps millisecond precision.
	lo, hi := before.Add(DefaultResolveTimeout-time.Millisecond), after.Add(DefaultResolveTimeout+time.Millisecond)
	if a.EndsAt.Before(lo) || a.EndsAt.After(hi) {
		t.Errorf("endsAt = %v, want now + 5m (between %v and %v)", a.EndsAt, lo, hi)
	}
	if d := a.StartsAt.Sub(ev.Time); d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("startsAt = %v, want the failure time %v", a.StartsAt, ev.Time)
	}
}

func TestRealAlertmanagerDigestUpdatesTheSameAlert(t *testing.T) {
	base := realAlertmanager(t)
	s := build(t, &Config{URL: notify.Secret(base)}, nil)
	now := time.Now()
	first := sinktest.Synthetic()
	first.Host, first.Time = "digest-1", now.Add(-2*time.Minute)
	if err := s.Send(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	d := sinktest.Digest()
	d.Host = "digest-1"
	fs, ls := now.Add(-time.Minute), now
	d.FirstSeen, d.LastSeen, d.Time = &fs, &ls, ls
	if err := s.Send(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	other := sinktest.Synthetic()
	other.Host, other.Time = "digest-2", now
	if err := s.Send(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	alerts := listAlerts(t, base, `host=~"digest-.*"`)
	if len(alerts) != 2 {
		t.Fatalf("got %d alerts, want 2 (one per host): %+v", len(alerts), alerts)
	}
	var a gettable
	for _, x := range alerts {
		if x.Labels["host"] == "digest-1" {
			a = x
		}
	}
	if a.Annotations["count"] != "37" || a.Annotations["pids"] != "4242 4250 4251 4307" {
		t.Errorf("digest did not update the alert's annotations: %v", a.Annotations)
	}
	if !strings.Contains(a.Annotations["description"], " 37 more times between ") {
		t.Errorf("description = %q", a.Annotations["description"])
	}
	if a.Annotations["first_seen"] != fs.UTC().Format(time.RFC3339Nano) || a.Annotations["last_seen"] != ls.UTC().Format(time.RFC3339Nano) {
		t.Errorf("first/last seen = %q / %q", a.Annotations["first_seen"], a.Annotations["last_seen"])
	}
}

func TestRealAlertmanagerResolvesAfterTimeout(t *testing.T) {
	base := realAlertmanager(t)
	s := build(t, &Config{URL: notify.Secret(base), ResolveTimeout: notify.Duration(time.Second)}, nil)
	ev := sinktest.Synthetic()
	ev.Host, ev.Time = "resolve-1", time.Now()
	if err := s.Send(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if got := listAlerts(t, base, `host="resolve-1"`); len(got) != 1 || got[0].Status.State != "active" {
		t.Fatalf("right after sending: %+v, want one active alert", got)
	}
	// Alertmanager lists only unresolved alerts; poll until endsAt passes.
	for deadline := time.Now().Add(20 * time.Second); ; {
		if len(listAlerts(t, base, `host="resolve-1"`)) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("alert still listed 20s after its endsAt: it would never resolve")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestRealAlertmanagerRejectionsArePermanent(t *testing.T) {
	base := realAlertmanager(t)
	// A wrong route prefix: Alertmanager answers 404.
	s := build(t, &Config{URL: notify.Secret(base + "/wrong-prefix")}, nil)
	err := s.Send(context.Background(), sinktest.Synthetic())
	if !notify.IsPermanent(err) || !strings.Contains(err.Error(), "alertmanager fleet: permanent: 404 Not Found") {
		t.Errorf("wrong prefix: err = %v, want permanent 404", err)
	}
	// A label Alertmanager refuses (bypassing Validate, which would catch
	// it): its 400 names the problem and is permanent.
	s = build(t, &Config{URL: notify.Secret(base)}, nil)
	s.labels = map[string]string{"bad-name": "x"}
	err = s.Send(context.Background(), sinktest.Synthetic())
	if !notify.IsPermanent(err) || !strings.Contains(err.Error(), `400 Bad Request: "invalid label set: invalid name \"bad-name\""`) {
		t.Errorf("invalid label: err = %v, want permanent 400 quoting Alertmanager", err)
	}
}

func TestSecretsNeverShown(t *testing.T) {
	base := realAlertmanager(t)
	u, _ := url.Parse(base)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// Credentials in the URL and a bearer token, against a wrong prefix
	// (404) and a closed port (refused, retried and logged).
	c := &Config{URL: notify.Secret("http://amuser:AMpassSECRET@" + u.Host + "/wrong/")}
	c.BearerToken = "AMbearerSECRET"
	c.Username = ""
	errWrong := build(t, c, log).Send(context.Background(), sinktest.Synthetic())
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()
	c2 := &Config{URL: notify.Secret("http://amuser:AMpassSECRET@" + dead + "/")}
	c2.BearerToken = "AMbearerSECRET"
	errDown := build(t, c2, log).Send(context.Background(), sinktest.Synthetic())
	if errWrong == nil || errDown == nil || notify.IsPermanent(errDown) {
		t.Fatalf("errors: %v / %v", errWrong, errDown)
	}
	if logs.Len() == 0 {
		t.Fatal("no retry logged; nothing checked")
	}
	printed := errWrong.Error() + errDown.Error() + logs.String() + fmt.Sprintf("%v %+v", c, c)
	for _, s := range []string{"AMpassSECRET", "AMbearerSECRET"} {
		if strings.Contains(printed, s) {
			t.Errorf("a secret (%d bytes) appears in an error, log line or config dump", len(s))
		}
	}
}

func TestDecodesEveryKey(t *testing.T) {
	const doc = `
name = "fleet"
url = "http://alertmanager.example:9093"
resolve_timeout = "15m"
generator_url = "https://grafana.example/d/execfaild"
bearer_token_file = "/etc/execfaild/am.token"
timeout = "5s"
tls_ca_file = "/etc/execfaild/ca.pem"
[labels]
severity = "warning"
team = "platform"
`
	cfg, _ := notify.NewSinkConfig("alertmanager")
	sinktest.Decode(t, doc, cfg)
	c := cfg.(*Config)
	if c.URL.Reveal() != "http://alertmanager.example:9093" || c.ResolveTimeout.D() != 15*time.Minute ||
		c.GeneratorURL != "https://grafana.example/d/execfaild" || c.BearerTokenFile != "/etc/execfaild/am.token" ||
		c.Timeout.D() != 5*time.Second || c.TLSCAFile != "/etc/execfaild/ca.pem" ||
		!reflect.DeepEqual(c.Labels, map[string]string{"severity": "warning", "team": "platform"}) {
		t.Errorf("decoded %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
}

func TestPathSearchAndKernelExec(t *testing.T) {
	s := build(t, &Config{URL: "http://am:9093"}, nil)
	ev := event.Synthetic(t0, "web-1")
	ev.Binary, ev.InterpreterPath = nil, ""
	ev.Path = "/bin/kubectl"
	ev.Tried = []string{"/usr/local/bin", "/usr/bin", "/bin"}
	ev.Cause, ev.CauseText = event.CauseNotFoundInPath, "kubectl: not found in any of the 3 $PATH directories (/usr/local/bin, /usr/bin, /bin)"
	ev.CauseInferred = true
	a := s.Alert(&ev)
	if a.Labels["binary"] != "/bin/kubectl" || a.Annotations["path_search_tried"] != "/usr/local/bin:/usr/bin:/bin" {
		t.Errorf("labels %v annotations %v", a.Labels, a.Annotations)
	}
	if a.Labels["cause"] != "not-found-in-path" || a.Annotations["cause_text"] != ev.CauseText || a.Annotations["cause_inferred"] != "true" {
		t.Errorf("cause label %q, cause_text %q, cause_inferred %q", a.Labels["cause"], a.Annotations["cause_text"], a.Annotations["cause_inferred"])
	}
	if !strings.HasSuffix(a.Annotations["description"], ": no such file or directory; "+ev.CauseText+" (inferred); searched /usr/local/bin:/usr/bin:/bin.") {
		t.Errorf("description = %q", a.Annotations["description"])
	}
	k := event.Synthetic(t0, "web-1")
	k.KernelInvoked, k.Syscall = true, event.SyscallKernel
	k.Binary, k.InterpreterPath, k.Path = nil, "", "/sbin/modprobe"
	k.Process.Unit = ""
	k.Cause, k.CauseText = "", "" // undiagnosed
	k.SetErrno(-13)
	a = s.Alert(&k)
	if _, ok := a.Labels["unit"]; ok {
		t.Errorf("empty unit sent as a label: %v", a.Labels)
	}
	if _, ok := a.Labels["cause"]; ok {
		t.Errorf("no cause sent as a label: %v", a.Labels)
	}
	if _, ok := a.Annotations["cause_text"]; ok {
		t.Errorf("no cause sent as an annotation: %v", a.Annotations)
	}
	if a.Annotations["description"] != "The kernel could not execute /sbin/modprobe: permission denied." {
		t.Errorf("description = %q", a.Annotations["description"])
	}
}

// urls builds one sink per replica; their errors name the replica and
// never the URL or its password.
func TestReplicasOneSinkEachNoSecretInErrors(t *testing.T) {
	var got [2]int
	var mu sync.Mutex
	up := func(i int) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			got[i]++
			mu.Unlock()
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://execfaild:hunter2-secret@" + ln.Addr().String() + "/prefix"
	ln.Close()
	c := &Config{URLs: []notify.Secret{notify.Secret(up(0)), notify.Secret(dead), notify.Secret(up(1))}}
	c.Name = "fleet"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := c.New(notify.Env{Host: "web-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rs, ok := s.(notify.Replicas)
	if !ok || len(rs) != 3 {
		t.Fatalf("New = %T of %d, want notify.Replicas of 3", s, len(rs))
	}
	ev := sinktest.Synthetic()
	for _, i := range []int{0, 2} {
		if err := rs[i].Send(context.Background(), ev); err != nil {
			t.Errorf("replica %d: %v", i+1, err)
		}
	}
	err = rs[1].Send(context.Background(), ev)
	if err == nil || !strings.Contains(err.Error(), "alertmanager fleet replica 2") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("dead replica's error %v: want it named replica 2, without the password", err)
	}
	if got != [2]int{1, 1} {
		t.Errorf("posts per live replica %v, want one each", got)
	}
}

func TestURLFilesErrorsNameTheEntry(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "am1.url")
	if err := os.WriteFile(good, []byte("http://am1:9093\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "am2.url")
	if err := os.WriteFile(bad, []byte("ftp://u:hunter2@am2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &Config{URLFiles: []string{good, bad}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	err := c.CheckFiles()
	if err == nil || err.Error() != "url_files: entry 2: scheme must be http or https" {
		t.Errorf("CheckFiles = %v", err)
	}
	c.URLFiles[1] = filepath.Join(dir, "absent")
	if err := c.CheckFiles(); err == nil || !strings.HasPrefix(err.Error(), "url_files: entry 2: read secret:") {
		t.Errorf("CheckFiles = %v", err)
	}
}

// The fleet's labels reach every alert; a label of the sink's own wins
// over a fleet label of the same name, and the built-in ones win over both.
func TestFleetLabels(t *testing.T) {
	s := build(t, &Config{URL: "http://am:9093", Labels: map[string]string{"site": "from-sink"}}, nil)
	ev := sinktest.Synthetic()
	ev.Labels = map[string]string{"site": "fra1", "role": "db"}
	got := s.Alert(ev).Labels
	if got["site"] != "from-sink" || got["role"] != "db" || got["host"] != ev.Host || got["alertname"] != AlertName {
		t.Errorf("labels %v: want site from the sink, role from the fleet, host and alertname built in", got)
	}
}

// TestTestSinksAlertResolvesItself: the alert of execfaild test-sinks has
// a test="true" label a route can match, a summary that says so, and ends
// a minute after it starts whatever resolve_timeout says.
func TestTestSinksAlertResolvesItself(t *testing.T) {
	s := build(t, &Config{URL: "http://am:9093", ResolveTimeout: notify.Duration(time.Hour)}, nil)
	s.now = func() time.Time { return t0 }
	ev := sinktest.Synthetic()
	ev.Test = true
	a := s.Alert(ev)
	if a.Labels["test"] != "true" || !strings.HasPrefix(a.Annotations["summary"], notify.TestMark) || !a.EndsAt.Equal(a.StartsAt.Add(time.Minute)) {
		t.Errorf("test alert: labels %v summary %q startsAt %v endsAt %v", a.Labels, a.Annotations["summary"], a.StartsAt, a.EndsAt)
	}
	real := s.Alert(sinktest.Synthetic())
	if _, ok := real.Labels["test"]; ok || !real.EndsAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("real alert: labels %v endsAt %v", real.Labels, real.EndsAt)
	}
}

// TestRealAlertmanagerNoFlapDuringAStorm: a failure repeated for longer
// than resolve_timeout, through the pipeline with its dedup window, is one
// alert in a real Alertmanager that stays active the whole storm - repeats
// come only as digests when a window ends, and the alert must not resolve
// meanwhile and fire again - and resolves once the storm is over.
func TestRealAlertmanagerNoFlapDuringAStorm(t *testing.T) {
	base := realAlertmanager(t)
	host := fmt.Sprintf("storm-%d", time.Now().UnixNano())
	// resolve_timeout shorter than the dedup window, as the defaults are
	// (5m and 10m): the case where an alert used to resolve mid-storm.
	const window, resolve, storm = 3 * time.Second, 2 * time.Second, 10 * time.Second
	cfg := notify.DefaultConfig()
	cfg.Host = host
	cfg.Spool.Dir = t.TempDir()
	cfg.RateLimit.GlobalRate = notify.Off
	sc := &Config{URL: notify.Secret(base), ResolveTimeout: notify.Duration(resolve)}
	sc.Name = "am"
	sc.Dedup.Window = notify.Duration(window)
	sc.RateLimit.Rate = notify.Off
	cfg.Sinks = []notify.SinkEntry{{Kind: "alertmanager", Config: sc}}
	p, err := notify.New(cfg, notify.Env{Host: host})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())

	seen := map[string]bool{}
	start := time.Now()
	for i := 0; time.Since(start) < storm; i++ {
		ev := sinktest.Synthetic()
		ev.Time = time.Now()
		ev.Process.PID, ev.Process.TID = uint32(5000+i), uint32(5000+i)
		p.Handle(ev)
		alerts := listAlerts(t, base, `host="`+host+`"`)
		for _, a := range alerts {
			seen[a.Fingerprint] = true
		}
		if len(seen) > 0 && len(alerts) == 0 {
			t.Fatalf("%v into a storm longer than resolve_timeout (%v), the alert resolved: it would fire again with the next digest", time.Since(start).Round(time.Millisecond), resolve)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(seen) != 1 {
		t.Fatalf("the storm made %d alerts, want 1", len(seen))
	}
	// Over: the alert resolves once the last digest's wait is past.
	ended := time.Now()
	for len(listAlerts(t, base, `host="`+host+`"`)) > 0 {
		if time.Since(ended) > 2*window+resolve+10*time.Second {
			t.Fatalf("the alert is still active %v after the storm ended", time.Since(ended).Round(time.Second))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("one alert, active through the %v storm, resolved %v after it", storm, time.Since(ended).Round(100*time.Millisecond))
}
