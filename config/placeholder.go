// SPDX-License-Identifier: Apache-2.0

package config

import (
	"errors"
	"fmt"
	"net/url"
	"reflect"
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
	for _, e := range c.Sinks {
		prefix := fmt.Sprintf("sink.%s[%d]", e.Kind, e.Index)
		if key := placeholderIn(reflect.ValueOf(e.Config)); key != "" {
			key = prefix + "." + key
			return &Error{File: file, Line: loc.find(key), Key: key, Err: errPlaceholder}
		}
	}
	return nil
}

// placeholderIn names the first secret field of v (a sink's settings)
// holding a placeholder: "url", "urls", "headers.X-Api-Key".
func placeholderIn(v reflect.Value) string {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return ""
	}
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		switch {
		case f.Type == secretType:
			if isPlaceholder(fv.String()) {
				return name
			}
		case f.Type.Kind() == reflect.Slice && f.Type.Elem() == secretType:
			for j := range fv.Len() {
				if isPlaceholder(fv.Index(j).String()) {
					return name
				}
			}
		case f.Type.Kind() == reflect.Map && f.Type.Elem() == secretType:
			keys := fv.MapKeys()
			slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
			for _, k := range keys {
				if isPlaceholder(fv.MapIndex(k).String()) {
					return name + "." + k.String()
				}
			}
		case f.Anonymous:
			if k := placeholderIn(fv); k != "" {
				return k
			}
		}
	}
	return ""
}
