// SPDX-License-Identifier: Apache-2.0

package main

// The fleet test: three `execfaild run` daemons with different host names,
// each sending to both replicas of a real Alertmanager cluster, see the
// same failed exec. The cluster must turn their three alerts into one
// notification per group, also with one replica stopped.
//
// It loads the probe three times, so it needs root (CI runs `make test` as
// root) and counts as heavy: run it under the shared lock.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/execfaild/execfaild/internal/poll"
)

// fleetTimeout bounds every wait of the test: far above what a loaded
// two-core machine needs, only there so a broken cluster fails the test
// instead of hanging it.
const fleetTimeout = 3 * time.Minute

// Alertmanager's timing for the test. group_wait must cover the three
// daemons' posts of one failure; peer_timeout is how long the second
// replica waits for the first one's notification log to reach it by
// gossip before it notifies itself.
const (
	amGroupWait   = "8s"
	amPeerTimeout = "10s"
)

func TestFleetOneNotificationPerGroup(t *testing.T) {
	am := fleetPrerequisites(t)
	dir := t.TempDir()
	bin := buildExecfaild(t, dir)
	rcv := startReceiver(t)
	cluster := startCluster(t, am, dir, rcv.url)

	watched := filepath.Join(dir, "jobs")
	if err := os.Mkdir(watched, 0o755); err != nil {
		t.Fatal(err)
	}
	hosts := []string{"fleet-a", "fleet-b", "fleet-c"}
	var daemons []string // their metrics addresses
	for _, h := range hosts {
		daemons = append(daemons, startFleetDaemon(t, bin, dir, h, watched, cluster.urls()))
	}

	// The same failure on every host: one real failed exec, seen by the
	// probe of each of the three daemons.
	queried := cluster.nflogQueries(t)
	notExecutable := filepath.Join(watched, "nightly-report")
	writeFile(t, notExecutable, "#!/bin/sh\n", 0o644)
	provoke(t, notExecutable, syscall.EACCES)
	first := rcv.waitGroup(t, notExecutable, "EACCES", len(hosts))
	cluster.waitDecided(t, queried)
	rcv.assertOne(t, notExecutable, "EACCES", hosts)

	// One replica stops; a different failure gets its own group, sent
	// once by the replica that is left.
	cluster.stop(t, 0)
	queried = cluster.nflogQueries(t)
	garbage := filepath.Join(watched, "backup-agent")
	writeFile(t, garbage, "\x00\x01\x02 not a program", 0o755)
	provoke(t, garbage, syscall.ENOEXEC)
	second := rcv.waitGroup(t, garbage, "ENOEXEC", len(hosts))
	cluster.waitDecided(t, queried)
	rcv.assertOne(t, garbage, "ENOEXEC", hosts)
	rcv.assertOne(t, notExecutable, "EACCES", hosts)
	if first.GroupKey == second.GroupKey {
		t.Errorf("both failures share the group %s", first.GroupKey)
	}

	// Each daemon's counters: two notifications delivered (the second by
	// the replica left alone), replica 1 took one copy and is failing on
	// the other, replica 2 took both.
	for i, addr := range daemons {
		series := func() map[string]float64 { return scrape(t, addr) }
		const sink = `kind="alertmanager",name="cluster"`
		var m map[string]float64
		if !eventually(func() bool {
			m = series()
			return m[`execfaild_sink_replica_notifications_delivered_total{`+sink+`,replica="2"}`] == 2 &&
				m[`execfaild_sink_replica_failing{`+sink+`,reason="retrying",replica="1"}`] == 1
		}) {
			t.Fatalf("execfaild %s: replica counters never showed replica 2 with both and replica 1 failing: %v", hosts[i], m)
		}
		for name, want := range map[string]float64{
			`execfaild_sink_notifications_delivered_total{` + sink + `}`:                     2,
			`execfaild_sink_notifications_failed_total{` + sink + `}`:                        0,
			`execfaild_sink_replica_notifications_delivered_total{` + sink + `,replica="1"}`: 1,
			`execfaild_sink_replica_spool_entries{` + sink + `,replica="1"}`:                 1,
		} {
			if m[name] != want {
				t.Errorf("execfaild %s: %s = %v, want %v", hosts[i], name, m[name], want)
			}
		}
	}
}

// scrape reads a daemon's /metrics as series -> value.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if strings.HasPrefix(line, "#") || i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// fleetPrerequisites returns the alertmanager binary, or skips (outside CI)
// when the test cannot run here.
func fleetPrerequisites(t *testing.T) string {
	t.Helper()
	missing := func(why string) {
		if os.Getenv("CI") == "true" {
			t.Fatal(why + ": CI runs as root with .ci/install-deps done")
		}
		t.Skip(why)
	}
	if os.Geteuid() != 0 {
		missing("fleet test needs root to load the probe")
	}
	for _, name := range []string{"prometheus-alertmanager", "alertmanager"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	missing("prometheus-alertmanager not installed")
	return ""
}

func buildExecfaild(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "execfaild")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build execfaild: %v\n%s", err, out)
	}
	return bin
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// provoke runs path once and checks that exec failed as expected.
func provoke(t *testing.T, path string, want syscall.Errno) {
	t.Helper()
	err := exec.Command(path).Run()
	if !errors.Is(err, want) {
		t.Fatalf("exec %s: %v, want %v", path, err, want)
	}
}

// freePort asks the kernel for an unused loopback port. Alertmanager takes
// addresses, not listeners; the port stays free for the instant between.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// amNotification is the part of Alertmanager's webhook payload the test
// reads.
type amNotification struct {
	GroupKey    string            `json:"groupKey"`
	GroupLabels map[string]string `json:"groupLabels"`
	Alerts      []struct {
		Labels map[string]string `json:"labels"`
	} `json:"alerts"`
}

// receiver is the webhook receiver the cluster notifies.
type receiver struct {
	url string
	mu  sync.Mutex
	got []amNotification
}

func startReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var n amNotification
		if err := json.NewDecoder(req.Body).Decode(&n); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.got = append(r.got, n)
		r.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL + "/hook"
	return r
}

// group returns the notifications about binary and error.
func (r *receiver) group(binary, errName string) []amNotification {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []amNotification
	for _, n := range r.got {
		if n.GroupLabels["binary"] == binary && n.GroupLabels["error"] == errName {
			out = append(out, n)
		}
	}
	return out
}

// waitGroup polls until a notification of the group lists alerts alerts,
// and returns it.
func (r *receiver) waitGroup(t *testing.T, binary, errName string, alerts int) amNotification {
	t.Helper()
	var last []amNotification
	ok := eventually(func() bool {
		last = r.group(binary, errName)
		for _, n := range last {
			if len(n.Alerts) >= alerts {
				return true
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("no notification for %s %s listing %d alerts within %v; got %+v", binary, errName, alerts, fleetTimeout, last)
	}
	for _, n := range last {
		if len(n.Alerts) >= alerts {
			return n
		}
	}
	panic("unreachable")
}

// assertOne checks that the group was notified exactly once, listing one
// alert per host.
func (r *receiver) assertOne(t *testing.T, binary, errName string, hosts []string) {
	t.Helper()
	ns := r.group(binary, errName)
	if len(ns) != 1 {
		t.Errorf("%s %s: %d notifications, want exactly 1: %+v", binary, errName, len(ns), ns)
		return
	}
	var got []string
	for _, a := range ns[0].Alerts {
		got = append(got, a.Labels["host"])
		if a.Labels["alertname"] != "ExecFailed" || a.Labels["site"] != "test-site" {
			t.Errorf("alert labels %v: want alertname ExecFailed and site test-site", a.Labels)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, hosts) {
		t.Errorf("%s %s: alerts from hosts %v, want one from each of %v", binary, errName, got, hosts)
	}
}

// cluster is two Alertmanager replicas gossiping on loopback.
type cluster struct {
	replicas []*amReplica
}

type amReplica struct {
	web     string
	cmd     *exec.Cmd
	exited  chan struct{}
	stopped bool
	log     poll.Buffer
}

func startCluster(t *testing.T, am, dir, hook string) *cluster {
	t.Helper()
	cfg := filepath.Join(dir, "alertmanager.yml")
	writeFile(t, cfg, fmt.Sprintf(`route:
  receiver: fleet
  group_by: [alertname, binary, error]
  group_wait: %s
  group_interval: 10m
  repeat_interval: 24h
receivers:
  - name: fleet
    webhook_configs:
      - url: %s
        send_resolved: false
`, amGroupWait, hook), 0o600)
	gossip := []string{freePort(t), freePort(t)}
	c := &cluster{}
	for i := range gossip {
		r := &amReplica{web: freePort(t), exited: make(chan struct{})}
		r.cmd = exec.Command(am,
			"--config.file="+cfg,
			"--storage.path="+filepath.Join(dir, "am"+strconv.Itoa(i)),
			"--web.listen-address="+r.web,
			"--cluster.listen-address="+gossip[i],
			"--cluster.advertise-address="+gossip[i],
			"--cluster.peer="+gossip[1-i],
			"--cluster.peer-timeout="+amPeerTimeout,
			"--log.level=debug")
		r.cmd.Stdout, r.cmd.Stderr = &r.log, &r.log
		if err := r.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { r.cmd.Wait(); close(r.exited) }()
		c.replicas = append(c.replicas, r)
	}
	t.Cleanup(func() {
		for i := range c.replicas {
			c.stop(t, i)
		}
		if t.Failed() {
			for i, r := range c.replicas {
				t.Logf("alertmanager %d:\n%s", i, lastLines(r.log.String(), 40))
			}
		}
	})
	// Ready: both replicas see both members and have settled, so neither
	// holds its first notifications back any more.
	for i, r := range c.replicas {
		if !eventually(func() bool { return r.clusterReady() }) {
			t.Fatalf("alertmanager %d never joined a settled cluster of 2:\n%s", i, lastLines(r.log.String(), 20))
		}
	}
	return c
}

func (r *amReplica) clusterReady() bool {
	resp, err := http.Get("http://" + r.web + "/api/v2/status")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var st struct {
		Cluster struct {
			Status string            `json:"status"`
			Peers  []json.RawMessage `json:"peers"`
		} `json:"cluster"`
	}
	return json.NewDecoder(resp.Body).Decode(&st) == nil && st.Cluster.Status == "ready" && len(st.Cluster.Peers) == 2
}

// metric reads one unlabelled counter from the replica's /metrics.
func (r *amReplica) metric(name string) (float64, error) {
	resp, err := http.Get("http://" + r.web + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("%s not exposed", name)
}

func (c *cluster) urls() []string {
	var out []string
	for _, r := range c.replicas {
		out = append(out, "http://"+r.web)
	}
	return out
}

// nflogQueries reads, per running replica, how often its notification
// log was queried. A replica queries it once per group flush, after its
// wait and before it decides whether to notify.
func (c *cluster) nflogQueries(t *testing.T) map[int]float64 {
	t.Helper()
	out := map[int]float64{}
	for i, r := range c.replicas {
		if r.stopped {
			continue
		}
		v, err := r.metric("alertmanager_nflog_queries_total")
		if err != nil {
			t.Fatal(err)
		}
		out[i] = v
	}
	return out
}

// waitDecided polls until every running replica has queried its
// notification log again since before: each has flushed the group and
// decided whether to notify, so the receiver holds every notification the
// group will get.
func (c *cluster) waitDecided(t *testing.T, before map[int]float64) {
	t.Helper()
	ok := eventually(func() bool {
		for i, v := range before {
			now, err := c.replicas[i].metric("alertmanager_nflog_queries_total")
			if err != nil || now <= v {
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("the replicas did not all flush the group within %v", fleetTimeout)
	}
}

func (c *cluster) stop(t *testing.T, i int) {
	r := c.replicas[i]
	if r.stopped {
		return
	}
	r.stopped = true
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(fleetTimeout):
		r.cmd.Process.Kill()
		<-r.exited
	}
}

// startFleetDaemon runs `execfaild run` as host, reporting failed execs
// below watched to every replica, waits for READY=1 and returns the
// address of its metrics.
func startFleetDaemon(t *testing.T, bin, dir, host, watched string, urls []string) string {
	t.Helper()
	state := filepath.Join(dir, host)
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	quoted := make([]string, len(urls))
	for i, u := range urls {
		quoted[i] = strconv.Quote(u)
	}
	cfg := filepath.Join(state, "execfaild.toml")
	metrics := freePort(t)
	writeFile(t, cfg, fmt.Sprintf(`host = %q

[labels]
site = "test-site"

[metrics]
listen = %q

[filter]
paths = [%q]

[spool]
dir = %q
retry_initial = "200ms"
retry_max = "2s"

[[sink.alertmanager]]
name = "cluster"
urls = [%s]
`, host, metrics, watched+"/**", filepath.Join(state, "spool"), strings.Join(quoted, ", ")), 0o600)

	sockPath := filepath.Join(state, "notify")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	var log poll.Buffer
	cmd := exec.Command(bin, "run", "--config", cfg)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sockPath, "STATE_DIRECTORY="+state)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(fleetTimeout):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("execfaild %s:\n%s", host, lastLines(log.String(), 30))
		}
	})
	sock.SetDeadline(time.Now().Add(fleetTimeout))
	buf := make([]byte, 4096)
	for {
		n, _, err := sock.ReadFromUnix(buf)
		if err != nil {
			t.Fatalf("execfaild %s never became ready: %v\n%s", host, err, lastLines(log.String(), 20))
		}
		if strings.Contains("\n"+string(buf[:n])+"\n", "\nREADY=1\n") {
			return metrics
		}
	}
}

// eventually checks cond until it holds or fleetTimeout passes.
func eventually(cond func() bool) bool {
	deadline := time.Now().Add(fleetTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
