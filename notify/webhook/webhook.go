// SPDX-License-Identifier: Apache-2.0

// Package webhook POSTs each notification as the event JSON of
// probe/event to any HTTP endpoint, optionally authenticated (bearer or
// basic), signed (HMAC-SHA256) and over mutual TLS.
//
// Signature: when hmac_secret is set every request carries
//
//	X-Execfaild-Timestamp: <unix seconds>
//	X-Execfaild-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//
// A receiver recomputes the HMAC over the raw body, compares in constant
// time and rejects timestamps too far from its clock (replays). Every
// attempt is signed afresh. X-Execfaild-Delivery is the same for every
// attempt of one notification, so a receiver can drop a duplicate that a
// lost response caused.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/notify/httpsink"
	"github.com/execfaild/execfaild/probe/event"
)

// Header names of the signature scheme.
const (
	HeaderTimestamp = "X-Execfaild-Timestamp"
	HeaderSignature = "X-Execfaild-Signature"
	HeaderDelivery  = "X-Execfaild-Delivery"
)

// Config is one [[sink.webhook]] table.
type Config struct {
	notify.SinkCommon
	URL     notify.Secret `toml:"url"`
	URLFile string        `toml:"url_file"`
	// Headers are added to every request. Values are treated as secrets
	// (an API key header is common): masked when printed, scrubbed from
	// errors.
	Headers map[string]notify.Secret `toml:"headers"`
	// HMACSecret signs each request (see the package comment).
	HMACSecret     notify.Secret `toml:"hmac_secret"`
	HMACSecretFile string        `toml:"hmac_secret_file"`
	httpsink.Auth
	httpsink.Settings
}

func init() {
	notify.RegisterSink("webhook", func() notify.SinkConfig { return &Config{} })
}

// Validate implements notify.SinkConfig.
func (c *Config) Validate() error {
	if err := httpsink.RequireURL(c.URL, c.URLFile); err != nil {
		return err
	}
	if c.HMACSecret != "" && c.HMACSecretFile != "" {
		return notify.Errorf("hmac_secret", "set either hmac_secret or hmac_secret_file, not both")
	}
	if err := c.Auth.Validate(); err != nil {
		return err
	}
	if err := c.Settings.Validate(); err != nil {
		return err
	}
	auth := c.BearerToken != "" || c.BearerTokenFile != "" || c.Username != ""
	signed := c.HMACSecret != "" || c.HMACSecretFile != ""
	for _, name := range c.headerNames() {
		key := "headers." + name
		if err := httpsink.CheckHeaderName(key, name); err != nil {
			return err
		}
		switch canon := http.CanonicalHeaderKey(name); {
		case canon == "Authorization" && auth:
			return notify.Errorf(key, "conflicts with bearer_token/username")
		case (canon == HeaderTimestamp || canon == HeaderSignature) && signed:
			return notify.Errorf(key, "conflicts with hmac_secret")
		case canon == HeaderDelivery:
			return notify.Errorf(key, "is set by execfaild")
		}
		if strings.ContainsAny(c.Headers[name].Reveal(), "\r\n") {
			return notify.Errorf(key, "value must be one line")
		}
	}
	return nil
}

func (c *Config) headerNames() []string {
	names := make([]string, 0, len(c.Headers))
	for n := range c.Headers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// CheckFiles implements notify.FileChecker.
func (c *Config) CheckFiles() error {
	if _, err := httpsink.Resolve(c.URL, c.URLFile, &c.Auth, &c.Settings); err != nil {
		return err
	}
	if c.HMACSecret != "" || c.HMACSecretFile != "" {
		if _, err := notify.ResolveSecret(c.HMACSecret, c.HMACSecretFile, "hmac_secret"); err != nil {
			return err
		}
	}
	return nil
}

// New implements notify.SinkConfig.
func (c *Config) New(env notify.Env) (notify.Sink, error) {
	t, err := httpsink.Resolve(c.URL, c.URLFile, &c.Auth, &c.Settings)
	if err != nil {
		return nil, err
	}
	secrets := t.Secrets
	s := &Sink{url: t.URL, header: http.Header{}, now: time.Now}
	if c.HMACSecret != "" || c.HMACSecretFile != "" {
		key, err := notify.ResolveSecret(c.HMACSecret, c.HMACSecretFile, "hmac_secret")
		if err != nil {
			return nil, err
		}
		s.hmacKey = []byte(key.Reveal())
		secrets = append(secrets, key.Reveal())
	}
	for _, name := range c.headerNames() {
		v := c.Headers[name].Reveal()
		s.header.Set(name, v)
		secrets = append(secrets, v)
	}
	// Credentials and Content-Type win over a custom header of the same name.
	for name, v := range t.Header {
		s.header[name] = v
	}
	o := httpsink.Options{
		Label:   httpsink.Label("webhook", c.Name),
		Timeout: c.Timeout.D(),
		TLS:     t.TLS,
		Secrets: secrets,
		Logger:  env.Logger,
	}
	tuneClient(&o)
	s.client = httpsink.New(o)
	return s, nil
}

// tuneClient lets tests shorten retry waits.
var tuneClient = func(*httpsink.Options) {}

// Sink posts to one endpoint.
type Sink struct {
	url     notify.Secret
	header  http.Header
	hmacKey []byte
	client  *httpsink.Client
	now     func() time.Time
}

// Payload is the request body for ev: the event as encoding/json writes it.
func Payload(ev *event.Event) ([]byte, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	return notify.OmitUnshared(ev, b)
}

// Sign returns the X-Execfaild-Signature value for body sent at ts.
func Sign(key []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Send implements notify.Sink.
func (s *Sink) Send(ctx context.Context, ev *event.Event) error {
	body, err := Payload(ev)
	if err != nil {
		return notify.Permanent(err)
	}
	h := s.header.Clone()
	sum := sha256.Sum256(body)
	h.Set(HeaderDelivery, hex.EncodeToString(sum[:16]))
	var prepare func(*http.Request) error
	if s.hmacKey != nil {
		prepare = func(r *http.Request) error {
			ts := strconv.FormatInt(s.now().Unix(), 10)
			r.Header.Set(HeaderTimestamp, ts)
			r.Header.Set(HeaderSignature, Sign(s.hmacKey, ts, body))
			return nil
		}
	}
	return s.client.Post(ctx, s.url.Reveal(), body, h, prepare)
}

// Close implements notify.Sink.
func (s *Sink) Close() error {
	s.client.Close()
	return nil
}
