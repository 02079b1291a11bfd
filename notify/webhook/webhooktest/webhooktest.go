// SPDX-License-Identifier: Apache-2.0

// Package webhooktest is a webhook receiver for tests that does what a
// careful real receiver does: checks credentials, verifies the HMAC
// signature and its timestamp, decodes the body strictly into the event
// schema, and drops duplicate deliveries. It can be taken down (503, or its
// port closed) and brought back, to test delivery across an outage.
//
// The signature check is written here independently of the sink, from the
// documented scheme, so a signing bug in the sink fails the test.
package webhooktest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/execfaild/execfaild/probe/event"
)

// Options say what the receiver demands.
type Options struct {
	HMACSecret  string        // verify signatures when set
	Tolerance   time.Duration // accepted clock difference; 5m when zero
	BearerToken string        // demand "Authorization: Bearer <token>"
	Username    string        // demand basic auth
	Password    string
	Now         func() time.Time // the receiver's clock
}

// Request is one request the receiver saw.
type Request struct {
	Time    time.Time
	Header  http.Header
	Body    []byte
	Status  int
	Problem string
}

// Receiver is a running receiver.
type Receiver struct {
	opts Options
	addr string

	mu        sync.Mutex
	srv       *http.Server
	down      bool
	requests  []Request
	events    []event.Event
	delivered map[string]bool
	dups      int
}

// Start listens on a free loopback port.
func Start(o Options) (*Receiver, error) {
	if o.Tolerance == 0 {
		o.Tolerance = 5 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &Receiver{opts: o, delivered: map[string]bool{}}
	if err := r.listen("127.0.0.1:0"); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Receiver) listen(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("webhook receiver listen: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 5 * time.Second}
	r.mu.Lock()
	r.addr = l.Addr().String()
	r.srv = srv
	r.mu.Unlock()
	go srv.Serve(l)
	return nil
}

// URL is the receiver's endpoint.
func (r *Receiver) URL() string { return "http://" + r.addr + "/hooks/execfaild" }

// SetDown makes the receiver answer 503 (true) or work again (false).
func (r *Receiver) SetDown(down bool) {
	r.mu.Lock()
	r.down = down
	r.mu.Unlock()
}

// Stop closes the port: connections are refused until Restart.
func (r *Receiver) Stop() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// Restart listens again on the same port.
func (r *Receiver) Restart() error { return r.listen(r.addr) }

// Close stops the receiver for good.
func (r *Receiver) Close() { r.Stop() }

// Events are the events accepted, in arrival order, duplicates dropped.
func (r *Receiver) Events() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.Event(nil), r.events...)
}

// Requests are every request seen.
func (r *Receiver) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.requests...)
}

// Duplicates counts deliveries dropped as already seen.
func (r *Receiver) Duplicates() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dups
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, 4<<20))
	rec := Request{Time: time.Now(), Header: req.Header.Clone(), Body: body}
	reply := func(status int, problem string) {
		rec.Status, rec.Problem = status, problem
		r.mu.Lock()
		r.requests = append(r.requests, rec)
		r.mu.Unlock()
		w.WriteHeader(status)
		if problem != "" {
			io.WriteString(w, problem)
		}
	}
	r.mu.Lock()
	down := r.down
	r.mu.Unlock()
	switch {
	case down:
		reply(http.StatusServiceUnavailable, "down for maintenance")
		return
	case req.Method != http.MethodPost:
		reply(http.StatusMethodNotAllowed, "POST only")
		return
	case req.URL.Path != "/hooks/execfaild":
		reply(http.StatusNotFound, "no such hook")
		return
	case !strings.HasPrefix(req.Header.Get("Content-Type"), "application/json"):
		reply(http.StatusUnsupportedMediaType, "want application/json")
		return
	}
	if err := r.authorize(req); err != nil {
		reply(http.StatusUnauthorized, err.Error())
		return
	}
	if err := r.verify(req.Header, body); err != nil {
		reply(http.StatusUnauthorized, err.Error())
		return
	}
	var ev event.Event
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		reply(http.StatusBadRequest, "body is not an event: "+err.Error())
		return
	}
	id := req.Header.Get("X-Execfaild-Delivery")
	r.mu.Lock()
	if id != "" && r.delivered[id] {
		r.dups++
	} else {
		r.delivered[id] = true
		r.events = append(r.events, ev)
	}
	r.mu.Unlock()
	reply(http.StatusNoContent, "")
}

func (r *Receiver) authorize(req *http.Request) error {
	switch {
	case r.opts.BearerToken != "":
		if req.Header.Get("Authorization") != "Bearer "+r.opts.BearerToken {
			return errors.New("bad bearer token")
		}
	case r.opts.Username != "":
		u, p, ok := req.BasicAuth()
		if !ok || u != r.opts.Username || p != r.opts.Password {
			return errors.New("bad basic auth")
		}
	}
	return nil
}

func (r *Receiver) verify(h http.Header, body []byte) error {
	if r.opts.HMACSecret == "" {
		return nil
	}
	ts := h.Get("X-Execfaild-Timestamp")
	sig, ok := strings.CutPrefix(h.Get("X-Execfaild-Signature"), "sha256=")
	if ts == "" || !ok {
		return errors.New("signature headers missing")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("bad timestamp")
	}
	if d := r.opts.Now().Sub(time.Unix(sec, 0)); d > r.opts.Tolerance || d < -r.opts.Tolerance {
		return fmt.Errorf("timestamp %s is %s off", ts, d)
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return errors.New("signature is not hex")
	}
	m := hmac.New(sha256.New, []byte(r.opts.HMACSecret))
	m.Write([]byte(ts + "." + string(body)))
	if !hmac.Equal(got, m.Sum(nil)) {
		return errors.New("signature mismatch")
	}
	return nil
}
