package httpsink

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/execfaild/execfaild/notify"
)

// Settings is the transport part of an HTTP sink's configuration; sink
// configs embed it so its keys sit flat in the [[sink.<kind>]] table.
type Settings struct {
	// Timeout bounds one attempt; "10s" by default.
	Timeout time.Duration `toml:"timeout"`
	// TLSCAFile replaces the system roots with the PEM certificates in
	// the file (a private CA in front of an internal receiver).
	TLSCAFile string `toml:"tls_ca_file"`
	// TLSCertFile and TLSKeyFile are a client certificate for mutual TLS;
	// both or neither.
	TLSCertFile   string `toml:"tls_cert_file"`
	TLSKeyFile    string `toml:"tls_key_file"`
	TLSServerName string `toml:"tls_server_name"`
}

// Validate checks the keys without reading files.
func (s *Settings) Validate() error {
	if s.Timeout < 0 {
		return errors.New("timeout: must not be negative")
	}
	if (s.TLSCertFile == "") != (s.TLSKeyFile == "") {
		return errors.New("tls_cert_file, tls_key_file: set both or neither")
	}
	return nil
}

// TLSConfig reads the files; nil means Go's defaults.
func (s *Settings) TLSConfig() (*tls.Config, error) {
	if s.TLSCAFile == "" && s.TLSCertFile == "" && s.TLSServerName == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.TLSServerName}
	if s.TLSCAFile != "" {
		pem, err := os.ReadFile(s.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls_ca_file: no PEM certificate in %s", s.TLSCAFile)
		}
		cfg.RootCAs = pool
	}
	if s.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.TLSCertFile, s.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls_cert_file, tls_key_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Auth is HTTP authentication for receivers that need it: a bearer token
// or basic auth, each secret inline or from a file.
type Auth struct {
	BearerToken     notify.Secret `toml:"bearer_token"`
	BearerTokenFile string        `toml:"bearer_token_file"`
	Username        string        `toml:"username"`
	Password        notify.Secret `toml:"password"`
	PasswordFile    string        `toml:"password_file"`
}

// Validate checks the keys without reading files.
func (a *Auth) Validate() error {
	if err := bothSet(a.BearerToken, a.BearerTokenFile, "bearer_token"); err != nil {
		return err
	}
	if err := bothSet(a.Password, a.PasswordFile, "password"); err != nil {
		return err
	}
	bearer := a.BearerToken != "" || a.BearerTokenFile != ""
	basic := a.Username != "" || a.Password != "" || a.PasswordFile != ""
	if bearer && basic {
		return errors.New("bearer_token, username: choose bearer or basic auth, not both")
	}
	if basic && a.Username == "" {
		return errors.New("username: required with password")
	}
	if strings.Contains(a.Username, ":") {
		return errors.New("username: must not contain ':'")
	}
	return nil
}

// Header resolves the secrets and returns the Authorization header value
// ("" for none) and the secrets to scrub from errors.
func (a *Auth) Header() (string, []string, error) {
	tok, err := ResolveSecret(a.BearerToken, a.BearerTokenFile, "bearer_token")
	if err != nil {
		return "", nil, err
	}
	if tok != "" {
		return "Bearer " + tok.Reveal(), []string{tok.Reveal()}, nil
	}
	if a.Username == "" {
		return "", nil, nil
	}
	pw, err := ResolveSecret(a.Password, a.PasswordFile, "password")
	if err != nil {
		return "", nil, err
	}
	enc := base64.StdEncoding.EncodeToString([]byte(a.Username + ":" + pw.Reveal()))
	return "Basic " + enc, []string{pw.Reveal(), enc}, nil
}

func bothSet(v notify.Secret, file, key string) error {
	if v != "" && file != "" {
		return fmt.Errorf("%s, %s_file: set one, not both", key, key)
	}
	return nil
}

// ResolveSecret returns value, or the content of file (trailing newline
// trimmed) when value is empty. key names the setting in errors; the secret
// itself never appears in one.
func ResolveSecret(value notify.Secret, file, key string) (notify.Secret, error) {
	if err := bothSet(value, file, key); err != nil {
		return "", err
	}
	if file == "" {
		return value, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s_file: %w", key, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if strings.TrimSpace(s) == "" {
		return "", fmt.Errorf("%s_file: %s is empty", key, file)
	}
	if strings.ContainsAny(s, "\r\n") {
		return "", fmt.Errorf("%s_file: %s holds more than one line", key, file)
	}
	return notify.Secret(s), nil
}

// CheckURL validates a destination URL without quoting it: url.Parse
// errors repeat the whole URL, which may be the secret.
func CheckURL(key string, raw notify.Secret) error {
	u, err := url.Parse(raw.Reveal())
	if err != nil {
		return fmt.Errorf("%s: not a valid URL", key)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%s: scheme must be http or https", key)
	}
	if u.Host == "" {
		return fmt.Errorf("%s: no host", key)
	}
	if u.Fragment != "" {
		return fmt.Errorf("%s: must not have a #fragment", key)
	}
	return nil
}

// RequireURL checks the url/url_file pair after decoding: exactly one set,
// and an inline url well-formed. A url_file is checked when read.
func RequireURL(raw notify.Secret, file string) error {
	if err := bothSet(raw, file, "url"); err != nil {
		return err
	}
	if raw == "" && file == "" {
		return errors.New("url: required (or url_file)")
	}
	if raw != "" {
		return CheckURL("url", raw)
	}
	return nil
}

// LoadURL resolves url/url_file and validates the result.
func LoadURL(raw notify.Secret, file string) (notify.Secret, error) {
	u, err := ResolveSecret(raw, file, "url")
	if err != nil {
		return "", err
	}
	key := "url"
	if file != "" {
		key = "url_file"
	}
	if err := CheckURL(key, u); err != nil {
		return "", err
	}
	return u, nil
}

// CheckHeaderName rejects names net/http would refuse at send time, so the
// mistake shows up in check-config instead.
func CheckHeaderName(key, name string) error {
	if name == "" {
		return fmt.Errorf("%s: empty header name", key)
	}
	for _, r := range name {
		if r > 0x7e || r <= ' ' || strings.ContainsRune("\"(),/:;<=>?@[\\]{}", r) {
			return fmt.Errorf("%s: %q is not a valid header name", key, name)
		}
	}
	if http.CanonicalHeaderKey(name) == "Host" || http.CanonicalHeaderKey(name) == "Content-Length" {
		return fmt.Errorf("%s: %s cannot be set", key, name)
	}
	return nil
}
