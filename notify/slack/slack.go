// SPDX-License-Identifier: Apache-2.0

// Package slack posts failed execs to a Slack incoming webhook as a Block
// Kit message a person can read in two seconds: what failed and why, who
// ran it, where, and how many times.
package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/notify/httpsink"
	"github.com/execfaild/execfaild/probe/event"
)

// Config is one [[sink.slack]] table.
type Config struct {
	notify.SinkCommon
	// URL is the incoming-webhook URL; its path is the credential.
	URL     notify.Secret `toml:"url"`
	URLFile string        `toml:"url_file"`
	// Channel, Username and the icon override the webhook's defaults where
	// the workspace still allows it (legacy webhooks).
	Channel   string          `toml:"channel"`
	Username  string          `toml:"username"`
	IconEmoji string          `toml:"icon_emoji"`
	IconURL   string          `toml:"icon_url"`
	Timeout   notify.Duration `toml:"timeout"`
}

func init() {
	notify.RegisterSink("slack", func() notify.SinkConfig { return &Config{} })
}

// DefaultRateLimit keeps each webhook at Slack's documented pace of about
// one message per second; what the bucket holds back goes into digests.
func (c *Config) DefaultRateLimit() notify.RateLimitConfig {
	return notify.RateLimitConfig{Rate: 1, Burst: 1}
}

var (
	// Slack channel names are lowercase but may be non-Latin; anything
	// without spaces or markup characters is passed on for Slack to judge.
	channelRE = regexp.MustCompile(`^[#@]?[^\s<>&#@]{1,80}$`)
	emojiRE   = regexp.MustCompile(`^:[a-z0-9_+'-]+:$`)
)

// ApplyDefaults implements notify.Defaulter.
func (c *Config) ApplyDefaults() {
	if c.Timeout == 0 {
		c.Timeout = notify.Duration(httpsink.DefaultTimeout)
	}
}

// Validate implements notify.SinkConfig.
func (c *Config) Validate() error {
	if err := httpsink.RequireURL(c.URL, c.URLFile); err != nil {
		return err
	}
	if c.Channel != "" && !channelRE.MatchString(c.Channel) {
		return notify.Errorf("channel", "%q is not a channel name (#ops), user (@name) or id", c.Channel)
	}
	if strings.ContainsAny(c.Username, "<>&\n") || len(c.Username) > 80 {
		return notify.Errorf("username", "at most 80 characters, no <, >, & or newline")
	}
	if c.IconEmoji != "" && c.IconURL != "" {
		return notify.Errorf("icon_emoji", "set either icon_emoji or icon_url, not both")
	}
	if c.IconEmoji != "" && !emojiRE.MatchString(c.IconEmoji) {
		return notify.Errorf("icon_emoji", "%q: write it as :name:", c.IconEmoji)
	}
	if c.IconURL != "" {
		if u, err := url.Parse(c.IconURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return notify.Errorf("icon_url", "must be an http(s) URL")
		}
	}
	if err := notify.CheckTimeout("timeout", c.Timeout.D()); err != nil {
		return err
	}
	return nil
}

// CheckFiles implements notify.FileChecker.
func (c *Config) CheckFiles() error {
	_, err := httpsink.LoadURL(c.URL, c.URLFile)
	return err
}

// New implements notify.SinkConfig.
func (c *Config) New(env notify.Env) (notify.Sink, error) {
	u, err := httpsink.LoadURL(c.URL, c.URLFile)
	if err != nil {
		return nil, err
	}
	return &Sink{
		cfg: *c,
		url: u,
		client: httpsink.New(httpsink.Options{
			Label:   httpsink.Label("slack", c.Name),
			Timeout: c.Timeout.D(),
			Secrets: httpsink.URLSecrets(u.Reveal()),
			Hint:    hint,
			Logger:  env.Logger,
		}),
		log: env.Logger,
	}, nil
}

// hint explains Slack's answers (api.slack.com incoming webhook errors).
func hint(status int) string {
	switch status {
	case http.StatusNotFound:
		return "webhook removed?"
	case http.StatusGone:
		return "channel archived?"
	case http.StatusForbidden:
		return "posting to this channel is not allowed"
	case http.StatusBadRequest:
		return "Slack rejected the message"
	}
	return ""
}

// Sink posts to one incoming webhook.
type Sink struct {
	cfg    Config
	url    notify.Secret
	client *httpsink.Client
	log    *slog.Logger
}

// Payload renders ev as the JSON body Send posts.
func (s *Sink) Payload(ev *event.Event) ([]byte, error) {
	m := Render(ev)
	m.Channel = s.cfg.Channel
	m.Username = s.cfg.Username
	m.IconEmoji = s.cfg.IconEmoji
	m.IconURL = s.cfg.IconURL
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	// Slack reads &, < and > as markup; the text is already escaped for
	// that, so JSON's \u003c on top only hurts readability of the payload.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("encode slack message: %w", err)
	}
	return b.Bytes(), nil
}

// Send implements notify.Sink.
func (s *Sink) Send(ctx context.Context, ev *event.Event) error {
	body, err := s.Payload(ev)
	if err != nil {
		return notify.Permanent(err)
	}
	return s.client.Post(ctx, s.url.Reveal(), body, http.Header{"Content-Type": {"application/json; charset=utf-8"}}, nil)
}

// Close implements notify.Sink.
func (s *Sink) Close() error {
	s.client.Close()
	return nil
}
