// SPDX-License-Identifier: Apache-2.0

package config

import (
	"errors"
	"net/url"
	"slices"
	"strings"
)

// errPlaceholder names no value: the value is a secret's place.
var errPlaceholder = errors.New("placeholder value from the example, replace it with the real one (or read it from the *_file key)")

// placeholderWords are the sample secrets an example shows; nobody's real
// token is one of them.
var placeholderWords = []string{"token", "secret", "key", "password", "change-me", "changeme"}

// placeholderDomains are reserved for documentation (RFC 2606): no real
// endpoint lives there.
var placeholderDomains = []string{"example.com", "example.net", "example.org"}

// isPlaceholder tells whether a secret's value is an example's stand-in
// rather than a credential: one of the sample words, check-config's own
// <redacted> pasted back, a URL on a documentation domain, or one with an
// all-X path part (Slack's /T000/B000/XXXX).
func isPlaceholder(v string) bool {
	s := strings.ToLower(strings.TrimSpace(v))
	if slices.Contains(placeholderWords, s) || strings.Contains(s, "<redacted>") {
		return true
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return false
	}
	host := u.Hostname()
	for _, d := range placeholderDomains {
		if host == d || strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	for _, part := range strings.Split(u.Path, "/") {
		if len(part) >= 3 && strings.Trim(part, "x") == "" {
			return true
		}
	}
	return false
}

// placeholders refuses a sink whose secret still holds an example's
// placeholder, at its line and key: uncommented unchanged, it would load
// and fail only at the first delivery, or never be noticed.
func (c *Config) placeholders(file string, loc *lines) error {
	if key := c.firstSecret(isPlaceholder); key != "" {
		return &Error{File: file, Line: loc.find(key), Key: key, Err: errPlaceholder}
	}
	return nil
}
