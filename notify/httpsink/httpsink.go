// SPDX-License-Identifier: Apache-2.0

// Package httpsink is the delivery core shared by the HTTP sinks (slack,
// webhook, alertmanager): one retrying client, one status classification,
// Retry-After handling, and redaction of the secret URL and tokens from
// every error and log line.
//
// The retry policy is not this package's: notify (retry.go) owns it, and
// this package carries out its in-Send part with go-retryablehttp as the
// client: a few quick attempts as notify.QuickRetry allows. When they are
// used up, or the server asks for a longer pause than the policy's budget
// for one Send, Post returns a retryable error carrying the delay (capped
// at notify.MaxRetryAfter) and the worker spools the notification and
// waits. Classify is the one verdict on a status.
package httpsink

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-retryablehttp"

	"github.com/execfaild/execfaild/notify"
)

// DefaultTimeout bounds one attempt when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Options configure a Client.
type Options struct {
	// Label prefixes every error: "slack ops".
	Label string
	// Timeout bounds one attempt (connect, send, response headers and body).
	Timeout time.Duration
	TLS     *tls.Config
	// RetryMax, RetryWaitMin and RetryWaitMax override the policy's quick
	// retries (notify.DefaultQuickRetry) where not zero; a negative
	// RetryMax disables them. Tests shorten the waits with them.
	RetryMax     int
	RetryWaitMin time.Duration
	RetryWaitMax time.Duration
	// Secrets are scrubbed from every error and log line. Use URLSecrets
	// for a secret URL.
	Secrets []string
	// Hint adds a sink-specific explanation to a failed status
	// ("webhook removed?"); nil or "" falls back to a generic one.
	Hint   func(status int) string
	Logger *slog.Logger
	// Now is the clock for HTTP-date Retry-After values; nil means time.Now.
	Now func() time.Time
}

// Client posts to one destination. It is safe for concurrent use.
type Client struct {
	rc      *retryablehttp.Client
	opts    Options
	quick   notify.QuickRetry
	secrets []string
	log     *slog.Logger
}

type (
	attemptsKey struct{}
	prepareKey  struct{}
)

// New builds a Client. It never contacts the destination.
func New(o Options) *Client {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	q := notify.DefaultQuickRetry
	if o.RetryMax < 0 {
		q.Retries = 0
	} else if o.RetryMax > 0 {
		q.Retries = o.RetryMax
	}
	if o.RetryWaitMin > 0 {
		q.WaitMin = o.RetryWaitMin
	}
	if o.RetryWaitMax > 0 {
		q.WaitMax = o.RetryWaitMax
	}
	q.WaitMax = max(q.WaitMax, q.WaitMin)
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	hc := cleanhttp.DefaultPooledClient()
	hc.Timeout = o.Timeout
	if o.TLS != nil {
		hc.Transport.(*http.Transport).TLSClientConfig = o.TLS
	}
	// Following a redirect would turn the POST into a GET that "succeeds"
	// without delivering anything; an operator must fix the URL instead.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	c := &Client{opts: o, quick: q, secrets: cleanSecrets(o.Secrets), log: log}
	c.rc = &retryablehttp.Client{
		HTTPClient: hc,
		// retryablehttp's own log lines carry the request URL, which is
		// the secret for Slack; this package logs retries itself.
		Logger:       nil,
		RetryWaitMin: q.WaitMin,
		RetryWaitMax: q.WaitMax,
		RetryMax:     q.Retries,
		CheckRetry:   c.checkRetry,
		Backoff:      c.backoff,
		// Hand back the last response or error untouched: the default
		// handler's "giving up" error quotes the URL.
		ErrorHandler: func(resp *http.Response, err error, _ int) (*http.Response, error) { return resp, err },
		// The per-request hook travels in the context so concurrent Posts
		// never share it.
		PrepareRetry: func(r *http.Request) error {
			if p, ok := r.Context().Value(prepareKey{}).(func(*http.Request) error); ok {
				return p(r)
			}
			return nil
		},
	}
	return c
}

// Post sends body with the given headers. prepare, when not nil, runs
// before every attempt (a signature over a fresh timestamp). It returns nil
// on 2xx, an error marked notify.Permanent when retrying cannot help, and
// any other error when a later retry may succeed.
func (c *Client) Post(ctx context.Context, rawURL string, body []byte, header http.Header, prepare func(*http.Request) error) error {
	attempts := 0
	ctx = context.WithValue(ctx, attemptsKey{}, &attempts)
	if prepare != nil {
		ctx = context.WithValue(ctx, prepareKey{}, prepare)
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, rawURL, body)
	if err != nil {
		// The parse error quotes the URL.
		return c.fail(&Error{Label: c.opts.Label, Op: "build request", Msg: "invalid url", Retry: false})
	}
	req.Header.Set("User-Agent", "execfaild")
	for k, vs := range header {
		req.Header.Del(k)
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if prepare != nil {
		if err := prepare(req.Request); err != nil {
			return c.fail(&Error{Label: c.opts.Label, Op: "prepare request", Msg: c.scrub(err.Error()), cause: err})
		}
	}

	resp, err := c.rc.Do(req)
	if err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		return c.fail(c.transportError(ctx, err, attempts))
	}
	defer resp.Body.Close()
	e := c.statusError(resp, attempts)
	// Drain a little so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if e == nil {
		return nil
	}
	return c.fail(e)
}

// Close drops idle keep-alive connections.
func (c *Client) Close() { c.rc.HTTPClient.CloseIdleConnections() }

// Label names a sink in errors: "slack ops", or just "slack" when the
// entry kept the kind as its name.
func Label(kind, name string) string {
	if name == "" || name == kind {
		return kind
	}
	return kind + " " + name
}

func (c *Client) fail(e *Error) error {
	switch {
	case e.Retry:
		return e
	case CredentialsRejected(e.Status):
		return notify.Permanent(notify.Unauthorized(e))
	}
	return notify.Permanent(e)
}

// Class is the verdict on an HTTP status.
type Class int

const (
	OK Class = iota
	Retryable
	Permanent
)

// Classify is the one place HTTP statuses are judged. 2xx is delivered;
// 408, 425, 429 and 5xx may pass on a later try; every other status
// (400 bad payload, 401/403 credentials, 404/410 endpoint removed, 413 too
// large, 3xx a moved endpoint) will fail the same way again.
func Classify(status int) Class {
	switch {
	case status >= 200 && status < 300:
		return OK
	case status == http.StatusRequestTimeout, status == http.StatusTooEarly,
		status == http.StatusTooManyRequests, status >= 500 && status < 600:
		return Retryable
	default:
		return Permanent
	}
}

// CredentialsRejected is the second half of the verdict on a status that
// Classify calls Permanent: 401, 403 and 407 say the sink's credentials
// (a token, a revoked webhook, a proxy login) are refused. Retrying the
// same request cannot help, but the notification is not at fault, so the
// pipeline keeps it (notify.Unauthorized) until the configuration is fixed.
func CredentialsRejected(status int) bool {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusProxyAuthRequired:
		return true
	}
	return false
}

func genericHint(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "payload rejected"
	case http.StatusUnauthorized:
		return "credentials rejected"
	case http.StatusForbidden:
		return "not allowed"
	case http.StatusNotFound:
		return "wrong url or endpoint removed?"
	case http.StatusGone:
		return "endpoint removed"
	case http.StatusRequestEntityTooLarge:
		return "payload too large"
	case http.StatusTooManyRequests:
		return "rate limited"
	}
	if status >= 300 && status < 400 {
		return "redirected: point url at the final location"
	}
	return ""
}

func (c *Client) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	attempt := 0
	if p, ok := ctx.Value(attemptsKey{}).(*int); ok {
		*p++
		attempt = *p
	}
	// Only announce a retry that will happen: after the last attempt the
	// caller reports the failure itself.
	last := attempt > c.quick.Retries
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		// retryablehttp knows which transport errors are worth a quick
		// retry (not TLS verification, not a bad scheme).
		retry, _ := retryablehttp.DefaultRetryPolicy(ctx, resp, err)
		if retry && !last {
			c.log.Warn("delivery attempt failed, retrying", "sink", c.opts.Label, "attempt", attempt, "error", c.scrub(transportMessage(err)))
		}
		return retry, nil
	}
	if Classify(resp.StatusCode) != Retryable {
		return false, nil
	}
	if d, ok := c.retryAfter(resp); ok {
		if _, again := c.quick.Wait(1, d, true); !again {
			// Longer than one Send may wait: the worker waits from the spool.
			return false, nil
		}
	}
	if !last {
		c.log.Warn("delivery attempt failed, retrying", "sink", c.opts.Label, "attempt", attempt, "status", resp.Status)
	}
	return true, nil
}

// backoff hands retryablehttp the policy's wait; it counts retries from 0.
func (c *Client) backoff(_, _ time.Duration, retry int, resp *http.Response) time.Duration {
	d, asked := c.retryAfter(resp)
	w, _ := c.quick.Wait(min(retry+1, c.quick.Retries), d, asked)
	return w
}

// retryAfter reads Retry-After on a retryable status: delay-seconds or an
// HTTP-date (RFC 9110 section 10.2.3).
func (c *Client) retryAfter(resp *http.Response) (time.Duration, bool) {
	if resp == nil || Classify(resp.StatusCode) != Retryable {
		return 0, false
	}
	return ParseRetryAfter(resp.Header.Get("Retry-After"), c.opts.Now())
}

// ParseRetryAfter parses a Retry-After value relative to now. A date in the
// past means "now" (0).
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		if n > int64(math.MaxInt64/time.Second) {
			n = int64(math.MaxInt64 / time.Second)
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

func (c *Client) transportError(ctx context.Context, err error, attempts int) *Error {
	e := &Error{Label: c.opts.Label, Op: "post", Retry: true, Attempts: attempts}
	var ue *url.Error
	if errors.As(err, &ue) {
		// url.Error's message quotes the URL; keep only what it wraps.
		err = ue.Err
	}
	e.cause = err
	e.Msg = c.scrub(err.Error())
	if ctx.Err() != nil {
		e.Msg = c.scrub(ctx.Err().Error())
		e.cause = ctx.Err()
	}
	return e
}

func transportMessage(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

func (c *Client) statusError(resp *http.Response, attempts int) *Error {
	class := Classify(resp.StatusCode)
	if class == OK {
		return nil
	}
	e := &Error{
		Label:    c.opts.Label,
		Status:   resp.StatusCode,
		Msg:      resp.Status,
		Retry:    class == Retryable,
		Attempts: attempts,
	}
	if e.Msg == "" {
		e.Msg = strconv.Itoa(resp.StatusCode)
	}
	if e.Retry {
		// Said as the worker will honour it, so the log never promises a
		// wait that does not happen.
		d, _ := c.retryAfter(resp)
		e.RetryAfterDelay = notify.CapRetryAfter(d)
	}
	if d := c.bodySnippet(resp); d != "" {
		e.Detail = d
	}
	if c.opts.Hint != nil {
		e.Hint = c.opts.Hint(resp.StatusCode)
	}
	if e.Hint == "" {
		e.Hint = genericHint(resp.StatusCode)
	}
	return e
}

// bodySnippet keeps the start of a short error body (Slack answers
// "no_service", Alertmanager a validation message). HTML error pages are
// noise in a log line and are left out.
func (c *Client) bodySnippet(resp *http.Response) string {
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	b = bytes.TrimSpace(b)
	var sb strings.Builder
	for _, r := range string(b) {
		if sb.Len() >= 200 {
			sb.WriteString("…")
			break
		}
		if unicode.IsPrint(r) {
			sb.WriteRune(r)
		} else {
			sb.WriteRune(' ')
		}
	}
	return c.scrub(strings.TrimSpace(sb.String()))
}

// Error is a failed delivery. Its message never holds a secret.
type Error struct {
	Label  string // "slack ops"
	Op     string // "post" for transport errors; empty for a status
	Status int    // HTTP status, 0 for transport errors
	Msg    string // "404 Not Found" or the scrubbed transport error
	Detail string // start of the response body, scrubbed
	Hint   string
	Retry  bool
	// RetryAfterDelay is what the server asked for, when it did.
	RetryAfterDelay time.Duration
	Attempts        int
	cause           error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Label != "" {
		b.WriteString(e.Label)
		b.WriteString(": ")
	}
	if e.Retry {
		b.WriteString("retryable: ")
	} else {
		b.WriteString("permanent: ")
	}
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Detail != "" && e.Detail != e.Msg {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Hint != "" {
		fmt.Fprintf(&b, " (%s)", e.Hint)
	}
	if e.RetryAfterDelay > 0 {
		fmt.Fprintf(&b, ", retry after %s", e.RetryAfterDelay)
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	return b.String()
}

// Unwrap exposes the transport error (never a *url.Error, which quotes the
// URL), so errors.Is(err, context.Canceled) works.
func (e *Error) Unwrap() error { return e.cause }

// Temporary reports whether a later retry may succeed.
func (e *Error) Temporary() bool { return e.Retry }

// RetryAfter is how long the server asked the client to wait (0 when it
// did not). The pipeline can look for this method to pace its spool
// retries without importing this package.
func (e *Error) RetryAfter() time.Duration { return e.RetryAfterDelay }

// URLSecrets lists the parts of a secret URL that must never be printed:
// the whole URL, its path (Slack's token lives there), query and password.
func URLSecrets(raw string) []string {
	s := []string{raw}
	if u, err := url.Parse(raw); err == nil {
		s = append(s, u.String(), u.Path, u.EscapedPath(), u.RawQuery)
		if p, ok := u.User.Password(); ok {
			s = append(s, p, url.QueryEscape(p))
		}
		if u.User != nil {
			s = append(s, u.User.String())
		}
	}
	return s
}

// Paths no longer than this are not secrets ("/", "/hook") and scrubbing
// them would mangle every message.
const minSecretLen = 6

func cleanSecrets(in []string) []string {
	var out []string
	for _, s := range in {
		if len(s) >= minSecretLen {
			out = append(out, s)
		}
	}
	// Longest first, so a URL is replaced whole before its path is.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && len(out[j]) > len(out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// scrub replaces every secret in s.
func (c *Client) scrub(s string) string { return Scrub(s, c.secrets) }

// Scrub replaces every secret (at least minSecretLen bytes) in s with
// <redacted>.
func Scrub(s string, secrets []string) string {
	for _, sec := range cleanSecrets(secrets) {
		s = strings.ReplaceAll(s, sec, "<redacted>")
	}
	return s
}
