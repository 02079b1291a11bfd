// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
)

// Secret holds a webhook URL, token or password. It prints as <redacted>
// through fmt, JSON, TOML and slog, so configs and errors can be printed
// freely; Reveal is the only way to the value.
type Secret string

const redacted = "<redacted>"

func (s Secret) String() string                { return s.mask() }
func (s Secret) GoString() string              { return s.mask() }
func (s Secret) LogValue() slog.Value          { return slog.StringValue(s.mask()) }
func (s Secret) MarshalText() ([]byte, error)  { return []byte(s.mask()), nil }
func (s Secret) Format(f fmt.State, verb rune) { fmt.Fprint(f, s.mask()) }

// UnmarshalText lets TOML decode into a Secret.
func (s *Secret) UnmarshalText(b []byte) error { *s = Secret(b); return nil }

// Reveal returns the secret value. Call it only where the value is used.
func (s Secret) Reveal() string { return string(s) }

func (s Secret) mask() string {
	if s == "" {
		return ""
	}
	// A URL's scheme and host say where notifications go and are no
	// secret; its user, path and query may be (a Slack webhook's path is
	// its token), and go.
	if u, err := url.Parse(string(s)); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		return u.Scheme + "://" + u.Host + "/" + redacted
	}
	return redacted
}

// ResolveSecret returns the secret a sink entry configured either inline
// (value) or through a file (file), never both. key is the inline key's
// name ("url", "token") and names the problem in errors; the file variant is
// key+"_file". The file content is trimmed of surrounding whitespace so an
// editor's trailing newline does not end up in a URL or header.
//
// Errors never contain the secret: a read error names the file path only,
// which is not secret.
func ResolveSecret(value Secret, file, key string) (Secret, error) {
	switch {
	case value != "" && file != "":
		return "", &FieldError{Key: key, Err: fmt.Errorf("set either %s or %s_file, not both", key, key)}
	case file != "":
		b, err := ReadFileCapped(file, MaxSecretFileBytes)
		if err != nil {
			// The error names the file and the operation, not the content.
			return "", &FieldError{Key: key + "_file", Err: fmt.Errorf("read secret: %w", err)}
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", &FieldError{Key: key + "_file", Err: fmt.Errorf("secret file %s is empty", file)}
		}
		return Secret(s), nil
	case value != "":
		return value, nil
	}
	return "", &FieldError{Key: key, Err: fmt.Errorf("missing: set %s or %s_file", key, key)}
}
