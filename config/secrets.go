// SPDX-License-Identifier: Apache-2.0

package config

import (
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/execfaild/execfaild/notify"
)

// ReadableSecretsWarning is a one-line warning when the file holds a
// secret inline and its group or others may read it, as ssh warns about
// keys; "" when there is nothing to say.
func (c *Config) ReadableSecretsWarning() string {
	if c.File == "" {
		return ""
	}
	fi, err := os.Stat(c.File)
	if err != nil || fi.Mode().Perm()&0o044 == 0 {
		return ""
	}
	key := c.inlineSecret()
	if key == "" {
		return ""
	}
	return fmt.Sprintf("%s is readable by group or others (mode %04o) and holds a secret inline (%s): chmod 600 it or move the secret to a *_file", c.File, fi.Mode().Perm(), key)
}

var secretType = reflect.TypeOf(notify.Secret(""))

// inlineSecret names the first sink key holding a secret value.
func (c *Config) inlineSecret() string {
	return c.firstSecret(func(v string) bool { return v != "" })
}

// firstSecret names the first sink key whose secret value is, by is, the
// one looked for: "sink.webhook[0].url", "sink.webhook[0].headers.X-Api-Key".
func (c *Config) firstSecret(is func(string) bool) string {
	for _, e := range c.Sinks {
		if k := secretIn(reflect.ValueOf(e.Config), is); k != "" {
			return fmt.Sprintf("sink.%s[%d].%s", e.Kind, e.Index, k)
		}
	}
	return ""
}

// secretIn names the first secret field of v (a sink's settings) whose
// value is: "url", "urls", "headers.X-Api-Key".
func secretIn(v reflect.Value, is func(string) bool) string {
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
			if is(fv.String()) {
				return name
			}
		case f.Type.Kind() == reflect.Slice && f.Type.Elem() == secretType:
			for j := range fv.Len() {
				if is(fv.Index(j).String()) {
					return name
				}
			}
		case f.Type.Kind() == reflect.Map && f.Type.Elem() == secretType:
			keys := fv.MapKeys()
			slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
			for _, k := range keys {
				if is(fv.MapIndex(k).String()) {
					return name + "." + k.String()
				}
			}
		case f.Anonymous:
			if k := secretIn(fv, is); k != "" {
				return k
			}
		}
	}
	return ""
}
