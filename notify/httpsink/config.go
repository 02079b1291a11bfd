// SPDX-License-Identifier: Apache-2.0

package httpsink

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/execfaild/execfaild/notify"
)

// Settings is the transport part of an HTTP sink's configuration; sink
// configs embed it so its keys sit flat in the [[sink.<kind>]] table.
type Settings struct {
	// Timeout bounds one attempt; "10s" by default.
	Timeout notify.Duration `toml:"timeout"`
	// TLSCAFile replaces the system roots with the PEM certificates in
	// the file (a private CA in front of an internal receiver).
	TLSCAFile string `toml:"tls_ca_file"`
	// TLSCertFile and TLSKeyFile are a client certificate for mutual TLS;
	// both or neither.
	TLSCertFile   string `toml:"tls_cert_file"`
	TLSKeyFile    string `toml:"tls_key_file"`
	TLSServerName string `toml:"tls_server_name"`
}

// ApplyDefaults implements notify.Defaulter.
func (s *Settings) ApplyDefaults() {
	if s.Timeout == 0 {
		s.Timeout = notify.Duration(DefaultTimeout)
	}
}

// Validate checks the keys without reading files.
func (s *Settings) Validate() error {
	if err := notify.CheckTimeout("timeout", s.Timeout.D()); err != nil {
		return err
	}
	if s.TLSCertFile != "" && s.TLSKeyFile == "" {
		return notify.Errorf("tls_key_file", "required with tls_cert_file")
	}
	if s.TLSKeyFile != "" && s.TLSCertFile == "" {
		return notify.Errorf("tls_cert_file", "required with tls_key_file")
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
		pem, err := notify.ReadFileCapped(s.TLSCAFile, notify.MaxPEMFileBytes)
		if err != nil {
			return nil, &notify.FieldError{Key: "tls_ca_file", Err: err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, notify.Errorf("tls_ca_file", "no PEM certificate in %s", s.TLSCAFile)
		}
		cfg.RootCAs = pool
	}
	if s.TLSCertFile != "" {
		certPEM, err := notify.ReadFileCapped(s.TLSCertFile, notify.MaxPEMFileBytes)
		if err != nil {
			return nil, &notify.FieldError{Key: "tls_cert_file", Err: err}
		}
		keyPEM, err := notify.ReadFileCapped(s.TLSKeyFile, notify.MaxPEMFileBytes)
		if err != nil {
			return nil, &notify.FieldError{Key: "tls_key_file", Err: err}
		}
		// The parse error names neither file nor key material.
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, &notify.FieldError{Key: "tls_cert_file", Err: fmt.Errorf("load key pair %s, %s: %w", s.TLSCertFile, s.TLSKeyFile, err)}
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
	if a.BearerToken != "" && a.BearerTokenFile != "" {
		return notify.Errorf("bearer_token", "set either bearer_token or bearer_token_file, not both")
	}
	if a.Password != "" && a.PasswordFile != "" {
		return notify.Errorf("password", "set either password or password_file, not both")
	}
	bearer := a.BearerToken != "" || a.BearerTokenFile != ""
	basic := a.Username != "" || a.Password != "" || a.PasswordFile != ""
	if bearer && basic {
		return notify.Errorf("username", "set either bearer_token or username/password, not both")
	}
	if basic && a.Username == "" {
		return notify.Errorf("username", "required with password")
	}
	if strings.Contains(a.Username, ":") {
		return notify.Errorf("username", "must not contain ':'")
	}
	return nil
}

// Header resolves the secrets and returns the Authorization header value
// ("" for none) and the secrets to scrub from errors.
func (a *Auth) Header() (string, []string, error) {
	if a.BearerToken != "" || a.BearerTokenFile != "" {
		tok, err := notify.ResolveSecret(a.BearerToken, a.BearerTokenFile, "bearer_token")
		if err != nil {
			return "", nil, err
		}
		return "Bearer " + tok.Reveal(), []string{tok.Reveal()}, nil
	}
	if a.Username == "" {
		return "", nil, nil
	}
	var pw notify.Secret
	if a.Password != "" || a.PasswordFile != "" {
		var err error
		if pw, err = notify.ResolveSecret(a.Password, a.PasswordFile, "password"); err != nil {
			return "", nil, err
		}
	}
	enc := base64.StdEncoding.EncodeToString([]byte(a.Username + ":" + pw.Reveal()))
	return "Basic " + enc, []string{pw.Reveal(), enc}, nil
}

// CheckURL validates a destination URL without quoting it: url.Parse
// errors repeat the whole URL, which may be the secret.
func CheckURL(key string, raw notify.Secret) error {
	u, err := url.Parse(raw.Reveal())
	if err != nil {
		return notify.Errorf(key, "not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return notify.Errorf(key, "scheme must be http or https")
	}
	if u.Host == "" {
		return notify.Errorf(key, "no host")
	}
	if u.Fragment != "" {
		return notify.Errorf(key, "must not have a #fragment")
	}
	return nil
}

// RequireURL checks the url/url_file pair after decoding: exactly one set,
// and an inline url well-formed. A url_file is checked when read.
func RequireURL(raw notify.Secret, file string) error {
	if raw != "" && file != "" {
		return notify.Errorf("url", "set either url or url_file, not both")
	}
	if raw == "" && file == "" {
		return notify.Errorf("url", "missing: set url or url_file")
	}
	if raw != "" {
		return CheckURL("url", raw)
	}
	return nil
}

// LoadURL resolves url/url_file and validates the result.
func LoadURL(raw notify.Secret, file string) (notify.Secret, error) {
	u, err := notify.ResolveSecret(raw, file, "url")
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
		return notify.Errorf(key, "empty header name")
	}
	for _, r := range name {
		if r > 0x7e || r <= ' ' || strings.ContainsRune("\"(),/:;<=>?@[\\]{}", r) {
			return notify.Errorf(key, "%q is not a valid header name", name)
		}
	}
	if http.CanonicalHeaderKey(name) == "Host" || http.CanonicalHeaderKey(name) == "Content-Length" {
		return notify.Errorf(key, "%s cannot be set", name)
	}
	return nil
}

// Target is an authenticated destination with its secrets resolved.
type Target struct {
	URL notify.Secret
	TLS *tls.Config
	// Header carries Content-Type and, when configured, Authorization.
	Header http.Header
	// Secrets are every value to scrub from errors and logs: the URL's
	// secret parts and the credentials.
	Secrets []string
}

// Resolve reads url/url_file and the credentials, and builds the TLS
// settings: the part every authenticated JSON sink does the same way.
func Resolve(rawURL notify.Secret, urlFile string, a *Auth, s *Settings) (*Target, error) {
	u, err := LoadURL(rawURL, urlFile)
	if err != nil {
		return nil, err
	}
	tlsCfg, err := s.TLSConfig()
	if err != nil {
		return nil, err
	}
	authz, secrets, err := a.Header()
	if err != nil {
		return nil, err
	}
	t := &Target{URL: u, TLS: tlsCfg, Header: http.Header{"Content-Type": {"application/json"}}}
	t.Secrets = append(secrets, URLSecrets(u.Reveal())...)
	if authz != "" {
		t.Header.Set("Authorization", authz)
		t.Secrets = append(t.Secrets, authz)
	}
	return t, nil
}
