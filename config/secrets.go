// SPDX-License-Identifier: Apache-2.0

package config

import (
	"fmt"
	"os"
	"reflect"

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
	for _, e := range c.Sinks {
		if k := secretIn(reflect.ValueOf(e.Config)); k != "" {
			return fmt.Sprintf("sink.%s[%d].%s", e.Kind, e.Index, k)
		}
	}
	return ""
}

func secretIn(v reflect.Value) string {
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
		name := f.Tag.Get("toml")
		switch {
		case f.Type == secretType && fv.String() != "":
			return name
		case (f.Type.Kind() == reflect.Map || f.Type.Kind() == reflect.Slice) && f.Type.Elem() == secretType && fv.Len() > 0:
			return name
		case f.Anonymous:
			if k := secretIn(fv); k != "" {
				return k
			}
		}
	}
	return ""
}
