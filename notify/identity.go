// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/execfaild/execfaild/probe/event"
)

// BuiltinLabels are the Alertmanager labels execfaild sets from every
// event; a configured label cannot take their names.
var BuiltinLabels = []string{"alertname", "host", "error", "binary", "unit", "cause"}

// LabelField prefixes a static label's name where it becomes a field of
// its own: the syslog SD-PARAM label_site, the journal field
// EXECFAIL_LABEL_SITE.
const LabelField = "label_"

// Bounds of the static labels. A name becomes an RFC 5424 SD-PARAM name
// (at most 32 characters) after LabelField.
const (
	MaxLabels     = 32
	MaxLabelName  = 32 - len(LabelField)
	MaxLabelValue = 256
	MaxHostName   = 255 // RFC 5424 HOSTNAME
)

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// Hostname is the name events carry: the host setting, else the one the
// daemon was started with (Env.Host), else event.LocalHost.
func (c *Config) Hostname(env Env) string {
	switch {
	case c.Host != "":
		return c.Host
	case env.Host != "":
		return env.Host
	}
	return event.LocalHost()
}

// validateIdentity checks host and [labels]; keys are rooted at the file.
func (c *Config) validateIdentity() error {
	if c.Host != "" {
		if err := CheckHost("host", c.Host); err != nil {
			return err
		}
	}
	if len(c.Labels) > MaxLabels {
		return Errorf("labels", "at most %d labels, not %d", MaxLabels, len(c.Labels))
	}
	upper := map[string]string{}
	for name, v := range c.Labels {
		if err := CheckLabel("labels."+name, name, v); err != nil {
			return err
		}
		// The journal field names are upper case: two names that differ
		// only in case would write one field.
		u := strings.ToUpper(name)
		if other, dup := upper[u]; dup {
			return Errorf("labels."+name, "differs from labels.%s only in case", other)
		}
		upper[u] = name
	}
	return nil
}

// CheckHost validates a host name as every sink can carry it: printable
// ASCII without spaces (an RFC 5424 HOSTNAME), at most 255 bytes.
func CheckHost(key, h string) error {
	if len(h) > MaxHostName {
		return Errorf(key, "at most %d characters", MaxHostName)
	}
	for _, r := range h {
		if r <= ' ' || r > '~' {
			return Errorf(key, "use printable ASCII without spaces")
		}
	}
	return nil
}

// CheckLabel validates one static label: a Prometheus label name that is
// not a built-in one, fit for a syslog SD-PARAM name, and a short
// printable value.
func CheckLabel(key, name, value string) error {
	switch {
	case !labelNameRE.MatchString(name) || strings.HasPrefix(name, "__"):
		return Errorf(key, "%q is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, no leading __)", name)
	case len(name) > MaxLabelName:
		return Errorf(key, "label name longer than %d characters", MaxLabelName)
	case contains(BuiltinLabels, name):
		return Errorf(key, "%s is set by execfaild", name)
	case value == "" || !utf8.ValidString(value):
		return Errorf(key, "value must be non-empty UTF-8")
	case len(value) > MaxLabelValue:
		return Errorf(key, "value longer than %d bytes", MaxLabelValue)
	case strings.IndexFunc(value, unicode.IsControl) >= 0:
		return Errorf(key, "value must not contain control characters")
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
