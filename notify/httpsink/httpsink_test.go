// SPDX-License-Identifier: Apache-2.0

package httpsink

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/execfaild/execfaild/notify"
)

func TestClassify(t *testing.T) {
	for status, want := range map[int]Class{
		200: OK, 202: OK, 204: OK,
		301: Permanent, 302: Permanent,
		400: Permanent, 401: Permanent, 403: Permanent, 404: Permanent, 410: Permanent, 413: Permanent,
		408: Retryable, 425: Retryable, 429: Retryable,
		500: Retryable, 502: Retryable, 503: Retryable, 504: Retryable,
	} {
		if got := Classify(status); got != want {
			t.Errorf("Classify(%d) = %v, want %v", status, got, want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"3", 3 * time.Second, true},
		{" 120 ", 120 * time.Second, true},
		{"0", 0, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{"", 0, false},
		{"Sun, 01 Mar 2026 10:00:07 GMT", 7 * time.Second, true},
		{"Sunday, 01-Mar-26 10:01:00 GMT", time.Minute, true}, // RFC 850
		{"Sun Mar  1 10:00:02 2026", 2 * time.Second, true},   // asctime
		{"Sun, 01 Mar 2026 09:00:00 GMT", 0, true},            // past: now
	} {
		got, ok := ParseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// recorder is a receiver that answers from a script of statuses and notes
// when each request arrived.
type recorder struct {
	mu      sync.Mutex
	times   []time.Time
	headers []http.Header
	bodies  []string
	script  []func(w http.ResponseWriter)
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b := new(bytes.Buffer)
	b.ReadFrom(req.Body)
	r.mu.Lock()
	n := len(r.times)
	r.times = append(r.times, time.Now())
	r.headers = append(r.headers, req.Header.Clone())
	r.bodies = append(r.bodies, b.String())
	var f func(http.ResponseWriter)
	if n < len(r.script) {
		f = r.script[n]
	}
	r.mu.Unlock()
	if f == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	f(w)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.times)
}

func status(code int, hdr ...string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.WriteHeader(code)
	}
}

func body(code int, text string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(code)
		w.Write([]byte(text))
	}
}

func fast(label string) Options {
	return Options{Label: label, RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond}
}

func TestRetryAfterSecondsIsWaited(t *testing.T) {
	rec := &recorder{script: []func(http.ResponseWriter){status(429, "Retry-After", "1")}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	c := New(fast("t"))
	if err := c.Post(context.Background(), srv.URL, []byte("{}"), nil, nil); err != nil {
		t.Fatalf("Post: %v", err)
	}
	if rec.count() != 2 {
		t.Fatalf("requests = %d, want 2 (429 then retry)", rec.count())
	}
	if gap := rec.times[1].Sub(rec.times[0]); gap < time.Second {
		t.Errorf("retried %v after a 429 with Retry-After: 1, before the server allowed", gap)
	}
}

func TestRetryAfterDateIsWaited(t *testing.T) {
	// The client's clock is pinned so the HTTP-date means exactly one
	// second from "now" whatever second the test starts in.
	base := time.Now().UTC().Truncate(time.Second)
	var once sync.Once
	var start time.Time
	o := fast("t")
	o.Now = func() time.Time {
		once.Do(func() { start = time.Now() })
		return base.Add(time.Since(start))
	}
	date := base.Add(time.Second).Format(http.TimeFormat)
	rec := &recorder{script: []func(http.ResponseWriter){status(503, "Retry-After", date)}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	if err := New(o).Post(context.Background(), srv.URL, nil, nil, nil); err != nil {
		t.Fatalf("Post: %v", err)
	}
	if rec.count() != 2 {
		t.Fatalf("requests = %d, want 2", rec.count())
	}
	if gap := rec.times[1].Sub(rec.times[0]); gap < 900*time.Millisecond {
		t.Errorf("retried %v after Retry-After %s", gap, date)
	}
}

func TestLongRetryAfterEndsSendRetryable(t *testing.T) {
	rec := &recorder{script: []func(http.ResponseWriter){status(429, "Retry-After", "120")}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	err := New(fast("slack ops")).Post(context.Background(), srv.URL, nil, nil, nil)
	if err == nil || notify.IsPermanent(err) {
		t.Fatalf("err = %v, want a retryable error", err)
	}
	if rec.count() != 1 {
		t.Errorf("requests = %d, want 1: a 120 s pause is the pipeline's to wait", rec.count())
	}
	var ra interface{ RetryAfter() time.Duration }
	if !errors.As(err, &ra) || ra.RetryAfter() != 120*time.Second {
		t.Errorf("RetryAfter not carried: %v", err)
	}
	want := "slack ops: retryable: 429 Too Many Requests (rate limited), retry after 2m0s"
	if err.Error() != want {
		t.Errorf("error = %q\nwant    %q", err, want)
	}
}

// TestRetryAfterIsCappedWhereItIsReported: a server asking for a day gets
// the policy's ceiling, and the error says so, since that is what the
// worker waits; one Send never waits it out itself.
func TestRetryAfterIsCappedWhereItIsReported(t *testing.T) {
	rec := &recorder{script: []func(http.ResponseWriter){status(503, "Retry-After", "86400")}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	err := New(fast("hook")).Post(context.Background(), srv.URL, nil, nil, nil)
	if err == nil || notify.IsPermanent(err) {
		t.Fatalf("err = %v, want retryable", err)
	}
	var ra interface{ RetryAfter() time.Duration }
	if !errors.As(err, &ra) || ra.RetryAfter() != notify.MaxRetryAfter {
		t.Errorf("RetryAfter = %v, want the policy's ceiling %v", ra, notify.MaxRetryAfter)
	}
	if want := "hook: retryable: 503 Service Unavailable, retry after 15m0s"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	if rec.count() != 1 {
		t.Errorf("requests = %d, want 1: a day is past one Send's budget", rec.count())
	}
}

// TestQuickRetriesFollowThePolicy: the waits inside one Send are the
// policy's (notify.QuickRetry), not a second schedule of this package.
func TestQuickRetriesFollowThePolicy(t *testing.T) {
	c := New(Options{Label: "hook"})
	if c.quick != notify.DefaultQuickRetry {
		t.Fatalf("client runs %+v, policy says %+v", c.quick, notify.DefaultQuickRetry)
	}
	for retry := range c.quick.Retries {
		want, _ := notify.DefaultQuickRetry.Wait(retry+1, 0, false)
		if got := c.backoff(0, 0, retry, nil); got != want {
			t.Errorf("retry %d waits %v, policy says %v", retry+1, got, want)
		}
	}
	budget := notify.DefaultQuickRetry.Budget
	for _, tc := range []struct {
		asked string
		again bool
	}{{strconv.Itoa(int(budget / time.Second)), true}, {strconv.Itoa(int(budget/time.Second) + 1), false}} {
		resp := &http.Response{StatusCode: 503, Header: http.Header{"Retry-After": {tc.asked}}}
		again, _ := c.checkRetry(context.Background(), resp, nil)
		if again != tc.again {
			t.Errorf("Retry-After %s: quick retry %v, want %v (budget %v)", tc.asked, again, tc.again, budget)
		}
	}
}

func TestServerErrorsExhaustQuickRetries(t *testing.T) {
	rec := &recorder{script: []func(http.ResponseWriter){status(500), status(502), status(503), status(200)}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	o := fast("hook")
	o.RetryMax = 2
	err := New(o).Post(context.Background(), srv.URL, nil, nil, nil)
	if err == nil || notify.IsPermanent(err) {
		t.Fatalf("err = %v, want retryable", err)
	}
	if rec.count() != 3 {
		t.Errorf("requests = %d, want 3 (1 + RetryMax)", rec.count())
	}
	if want := "hook: retryable: 503 Service Unavailable after 3 attempts"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

func TestLogsOnlyRetriesThatHappen(t *testing.T) {
	rec := &recorder{script: []func(http.ResponseWriter){status(500), status(502), status(503)}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	var logs bytes.Buffer
	o := fast("hook")
	o.RetryMax = 2
	o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	New(o).Post(context.Background(), srv.URL, nil, nil, nil)
	got := strings.Count(logs.String(), "retrying")
	if got != 2 || !strings.Contains(logs.String(), "attempt=1 status=\"500 Internal Server Error\"") {
		t.Errorf("want 2 retry lines (after attempts 1 and 2), got %d:\n%s", got, logs.String())
	}
}

func TestPermanentStatuses(t *testing.T) {
	for _, tc := range []struct {
		code int
		body string
		hint func(int) string
		want string
	}{
		{404, "no_service", func(s int) string {
			if s == 404 {
				return "webhook removed?"
			}
			return ""
		}, "slack ops: permanent: 404 Not Found: no_service (webhook removed?)"},
		{400, "invalid_blocks", nil, "slack ops: permanent: 400 Bad Request: invalid_blocks (payload rejected)"},
		{403, "", nil, "slack ops: permanent: 403 Forbidden (not allowed)"},
		{410, "channel_is_archived", nil, "slack ops: permanent: 410 Gone: channel_is_archived (endpoint removed)"},
		{401, "", nil, "slack ops: permanent: 401 Unauthorized (credentials rejected)"},
		{302, "", nil, "slack ops: permanent: 302 Found (redirected: point url at the final location)"},
	} {
		rec := &recorder{script: []func(http.ResponseWriter){body(tc.code, tc.body)}}
		srv := httptest.NewServer(rec)
		o := fast("slack ops")
		o.Hint = tc.hint
		err := New(o).Post(context.Background(), srv.URL, nil, nil, nil)
		srv.Close()
		if !notify.IsPermanent(err) {
			t.Errorf("%d: err = %v, want permanent", tc.code, err)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("%d: error = %q\nwant %q", tc.code, err, tc.want)
		}
		if rec.count() != 1 {
			t.Errorf("%d: requests = %d, want 1 (no retry)", tc.code, rec.count())
		}
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	target := &recorder{}
	tsrv := httptest.NewServer(target)
	defer tsrv.Close()
	rec := &recorder{script: []func(http.ResponseWriter){status(301, "Location", tsrv.URL)}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	err := New(fast("t")).Post(context.Background(), srv.URL, []byte("x"), nil, nil)
	if !notify.IsPermanent(err) {
		t.Fatalf("err = %v, want permanent", err)
	}
	if target.count() != 0 {
		t.Errorf("redirect followed: target got %d requests", target.count())
	}
}

func TestConnectionRefusedIsRetryable(t *testing.T) {
	addr := closedAddr(t)
	o := fast("t")
	o.RetryMax = 1
	err := New(o).Post(context.Background(), "http://"+addr+"/x", nil, nil, nil)
	if err == nil || notify.IsPermanent(err) {
		t.Fatalf("err = %v, want retryable", err)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("errors.Is(err, ECONNREFUSED) = false for %v", err)
	}
	if !strings.Contains(err.Error(), "after 2 attempts") {
		t.Errorf("attempts not reported: %v", err)
	}
}

func TestCancelledContext(t *testing.T) {
	rec := &recorder{script: []func(http.ResponseWriter){status(503, "Retry-After", "5")}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for rec.count() == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	err := New(fast("t")).Post(ctx, srv.URL, nil, nil, nil)
	if !errors.Is(err, context.Canceled) || notify.IsPermanent(err) {
		t.Fatalf("err = %v, want retryable wrapping context.Canceled", err)
	}
}

func TestPrepareRunsOnEveryAttempt(t *testing.T) {
	rec := &recorder{script: []func(http.ResponseWriter){status(500), status(500)}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	n := 0
	prep := func(r *http.Request) error {
		n++
		r.Header.Set("X-Attempt", string(rune('0'+n)))
		return nil
	}
	if err := New(fast("t")).Post(context.Background(), srv.URL, []byte("abc"), http.Header{"X-Fixed": {"1"}}, prep); err != nil {
		t.Fatalf("Post: %v", err)
	}
	if rec.count() != 3 {
		t.Fatalf("requests = %d", rec.count())
	}
	for i, h := range rec.headers {
		if got, want := h.Get("X-Attempt"), string(rune('1'+i)); got != want {
			t.Errorf("attempt %d: X-Attempt = %q, want %q", i, got, want)
		}
		if h.Get("X-Fixed") != "1" || rec.bodies[i] != "abc" {
			t.Errorf("attempt %d lost header or body: %v %q", i, h, rec.bodies[i])
		}
	}
}

// captureStderr redirects file descriptor 2 (where retryablehttp's default
// logger writes) into a file while f runs.
func captureStderr(t *testing.T, f func()) string {
	t.Helper()
	tmp, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	saved, err := unix.Dup(2)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Dup2(int(tmp.Fd()), 2); err != nil {
		t.Fatal(err)
	}
	func() {
		defer unix.Dup2(saved, 2)
		f()
	}()
	unix.Close(saved)
	b, _ := os.ReadFile(tmp.Name())
	return string(b)
}

func TestSecretsNeverLeak(t *testing.T) {
	const token = "T0SECRETpath/B0SECRET/XyZsecretTokenValue"
	// A server that echoes the request path and auth back, as some
	// proxies do in error pages.
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		code := 404
		if strings.Contains(r.URL.RawQuery, "fivehundred") {
			code = 500
		}
		w.WriteHeader(code)
		w.Write([]byte("no route for " + r.URL.String() + " auth " + r.Header.Get("Authorization")))
	})
	srv := httptest.NewServer(echo)
	defer srv.Close()
	dead := closedAddr(t)

	urls := []string{
		srv.URL + "/services/" + token,
		srv.URL + "/services/" + token + "?fivehundred=1",
		"http://" + dead + "/services/" + token,
		"http://user:" + token + "@" + dead + "/x",
		"ht tp://bad/" + token,
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var errs []string
	stderr := captureStderr(t, func() {
		for _, u := range urls {
			o := fast("slack ops")
			o.Logger = logger
			o.Secrets = append(URLSecrets(u), "Bearer "+token, token)
			err := New(o).Post(context.Background(), u, []byte("{}"), http.Header{"Authorization": {"Bearer " + token}}, nil)
			if err == nil {
				t.Errorf("delivery to a failing destination succeeded")
				continue
			}
			errs = append(errs, err.Error(), fmtAll(err))
		}
	})
	if logs.Len() == 0 {
		t.Errorf("no retry was logged; the log check below would prove nothing")
	}
	for _, part := range []string{token, "XyZsecretTokenValue", "/services/"} {
		for i, e := range errs {
			if strings.Contains(e, part) {
				t.Errorf("error %d contains a secret part (%d bytes)", i/2, len(part))
			}
		}
		if strings.Contains(logs.String(), part) {
			t.Errorf("log output contains a secret part (%d bytes)", len(part))
		}
		if strings.Contains(stderr, part) {
			t.Errorf("stderr contains a secret part (%d bytes)", len(part))
		}
	}
}

// fmtAll prints every layer of an error chain, the way a careless caller
// might.
func fmtAll(err error) string {
	var b strings.Builder
	for e := err; e != nil; e = errors.Unwrap(e) {
		b.WriteString(e.Error())
		b.WriteString(" | ")
	}
	return b.String()
}

func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestCheckURL(t *testing.T) {
	for raw, want := range map[string]string{
		"https://hooks.example/services/SECRETPART":   "",
		"ftp://hooks.example/services/SECRETPART":     "url: scheme must be http or https",
		"https:///services/SECRETPART":                "url: no host",
		"https://hooks.example/SECRETPART#frag":       "url: must not have a #fragment",
		"https://hooks.example/%zzSECRETPART":         "url: not a valid URL",
		"hooks.example/services/SECRETPART":           "url: scheme must be http or https",
		"http://[::1]:9093/alertmanager":              "",
		"https://user:SECRETPART@hooks.example:8443/": "",
	} {
		err := CheckURL("url", notify.Secret(raw))
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("CheckURL(%q) = %q, want %q", raw, got, want)
		}
	}
	if err := RequireURL("", ""); err == nil || err.Error() != "url: missing: set url or url_file" {
		t.Errorf("RequireURL empty: %v", err)
	}
}

func TestAuth(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("hunter2hunter2\n"), 0o600)

	a := Auth{Username: "alice", PasswordFile: pwFile}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	h, secrets, err := a.Header()
	// base64("alice:hunter2hunter2")
	if err != nil || h != "Basic YWxpY2U6aHVudGVyMmh1bnRlcjI=" {
		t.Errorf("basic header = %q, %v", h, err)
	}
	if len(secrets) == 0 || secrets[0] != "hunter2hunter2" {
		t.Errorf("password not listed for scrubbing: %d secrets", len(secrets))
	}
	if _, _, err := (&Auth{Username: "bob", PasswordFile: filepath.Join(dir, "nope")}).Header(); err == nil || !strings.HasPrefix(err.Error(), "password_file: ") {
		t.Errorf("missing password file: %v", err)
	}
	b := Auth{BearerToken: "tok-123456"}
	if h, _, err := b.Header(); err != nil || h != "Bearer tok-123456" {
		t.Errorf("bearer header = %q, %v", h, err)
	}
	for _, tc := range []struct {
		a    Auth
		want string
	}{
		{Auth{BearerToken: "x", BearerTokenFile: "/f"}, "bearer_token: set either bearer_token or bearer_token_file, not both"},
		{Auth{Password: "x", PasswordFile: "/f", Username: "u"}, "password: set either password or password_file, not both"},
		{Auth{BearerToken: "x", Username: "u"}, "username: set either bearer_token or username/password, not both"},
		{Auth{Password: "x"}, "username: required with password"},
		{Auth{Username: "a:b"}, "username: must not contain ':'"},
	} {
		if err := tc.a.Validate(); err == nil || err.Error() != tc.want {
			t.Errorf("Validate(%+v) = %v, want %q", tc.a, err, tc.want)
		}
	}
}

// TestPostHonoursContext: a destination that accepts the request and never
// answers must not hold a shutdown beyond the drain deadline.
func TestPostHonoursContext(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	c := New(Options{Label: "webhook", Timeout: time.Hour, RetryMax: 5})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Post(ctx, srv.URL, []byte("{}"), nil, nil) }()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) || notify.IsPermanent(err) {
			t.Fatalf("post ended with %v, want a retryable error from the cancellation", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("post still blocked after its context was cancelled")
	}
}
