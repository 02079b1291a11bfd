// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/execfaild/execfaild/probe/event"
)

// RedactConfig is [redact]: how secrets in a failed command's arguments
// are hidden before any sink sees them. The environment's values are the
// probe's business ([probe] environment); a command line carries secrets
// too (mysql -pS3cret, curl -H 'Authorization: Bearer …',
// https://user:pass@host), and a chat channel is no place for them.
type RedactConfig struct {
	// Arguments turns argument redaction on (the default).
	Arguments bool `toml:"arguments"`
	// Flags are more options whose value is secret, as "--vault-password"
	// (value after "=" or in the next argument) or "-k" (value attached or
	// in the next argument), for every program.
	Flags []string `toml:"flags"`
	// Names are more key names whose value is secret in key=value,
	// --name=value, URL query parameters and "Name: value" headers,
	// compared case-insensitively with the whole name or one of its
	// '-', '_' or '.' separated parts.
	Names []string `toml:"names"`
	// Patterns are regular expressions (RE2) applied to every argument;
	// what a match's first group captured, or the whole match when the
	// pattern has no group, becomes <redacted>.
	Patterns []string `toml:"patterns"`
}

// DefaultRedact is the [redact] a fresh install runs with.
func DefaultRedact() RedactConfig { return RedactConfig{Arguments: true} }

// Validate checks [redact]; keys in errors are relative to the section.
func (c *RedactConfig) Validate() error {
	for i, f := range c.Flags {
		if !flagRE.MatchString(f) {
			return Errorf(fmt.Sprintf("flags[%d]", i), "%q is not an option like --vault-password or -k", f)
		}
	}
	for i, n := range c.Names {
		if !nameRE.MatchString(n) {
			return Errorf(fmt.Sprintf("names[%d]", i), "%q is not a key name (letters, digits, '-', '_', '.')", n)
		}
	}
	for i, p := range c.Patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return Errorf(fmt.Sprintf("patterns[%d]", i), "%w", err)
		}
		if re.MatchString("") {
			return Errorf(fmt.Sprintf("patterns[%d]", i), "%q matches the empty string, so it would redact nothing visible everywhere", p)
		}
	}
	return nil
}

var (
	flagRE = regexp.MustCompile(`^(--[A-Za-z0-9][A-Za-z0-9._-]*|-[A-Za-z0-9])$`)
	nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
)

// maxNameLen bounds a key or header name worth looking at.
const maxNameLen = 128

// Redacted replaces a secret.
const Redacted = "<redacted>"

// ArgumentKeeper is implemented by sink configs that may receive the
// arguments as the probe saw them (the journal, when the operator asks):
// such a sink gets the original, every other sink the redacted copy.
type ArgumentKeeper interface {
	KeepsArguments() bool
}

// redactor is a validated RedactConfig.
type redactor struct {
	on       bool
	flags    map[string]bool
	names    map[string]bool
	patterns []*regexp.Regexp
}

func newRedactor(c RedactConfig) *redactor {
	r := &redactor{on: c.Arguments, flags: map[string]bool{}, names: map[string]bool{}}
	for _, f := range c.Flags {
		r.flags[f] = true
	}
	for _, n := range c.Names {
		r.names[normName(n)] = true
	}
	for _, p := range c.Patterns {
		r.patterns = append(r.patterns, regexp.MustCompile(p))
	}
	return r
}

// event returns ev with its arguments redacted, or ev itself when nothing
// in them is secret. ev is not modified.
func (r *redactor) event(ev *event.Event) *event.Event {
	if !r.on || len(ev.Arguments) == 0 {
		return ev
	}
	args, changed := r.args(ev.Arguments)
	if !changed {
		return ev
	}
	cp := *ev
	cp.Arguments, cp.ArgumentsRedacted = args, true
	return &cp
}

// args returns argv with every secret replaced, and whether anything was.
func (r *redactor) args(argv []string) ([]string, bool) {
	out := slices.Clone(argv)
	prog := path.Base(argv[0])
	changed := false
	set := func(i int, v string) {
		if out[i] != v {
			out[i], changed = v, true
		}
	}
	for i := 1; i < len(out); i++ {
		a := out[i]
		if a == "--" {
			break
		}
		if v, next, ok := r.flagValue(prog, a); ok {
			if next {
				if i+1 < len(out) {
					i++
					set(i, userValue(a, out[i]))
				}
				continue
			}
			set(i, v)
			continue
		}
	}
	for i := range out {
		a := out[i]
		if hasBlank(a) {
			a, _ = r.line(a, 0)
		}
		set(i, r.text(a))
	}
	return out, changed
}

// flagValue decides whether a is an option whose value is secret. It
// returns the argument with the value redacted, or next when the value is
// the following argument.
func (r *redactor) flagValue(prog, a string) (redacted string, next, ok bool) {
	if strings.HasPrefix(a, "--") {
		name, _, hasValue := strings.Cut(a, "=")
		if !r.flags[name] && !secretFlag(name[2:]) && !r.userFlag(prog, name) {
			return "", false, false
		}
		if hasValue {
			if r.userFlag(prog, name) {
				return name + "=" + userValue(name, a[len(name)+1:]), false, true
			}
			return name + "=" + Redacted, false, true
		}
		if valueless[normName(name[2:])] {
			return "", false, false
		}
		return "", true, true
	}
	if len(a) < 2 || a[0] != '-' || a[1] == '-' {
		return "", false, false
	}
	short := a[:2]
	attached := len(a) > 2
	switch {
	case r.flags[short]:
	case short == "-p" && mysqlLike(prog):
		// mysql's -p takes its password attached only; "-p" alone
		// prompts, and the next argument is a database name.
		if !attached {
			return "", false, false
		}
	case short == "-p" && prog == "sshpass":
	case short == "-u" && prog == "curl":
	default:
		return "", false, false
	}
	if attached {
		return short + userValue(a, a[2:]), false, true
	}
	return "", true, true
}

// userFlag is curl's --user, whose value is user:password.
func (r *redactor) userFlag(prog, name string) bool {
	return prog == "curl" && (name == "--user" || name == "--proxy-user")
}

// userValue redacts a flag's value; for curl's -u/--user it keeps the user
// name in front of the password.
func userValue(flag, v string) string {
	if strings.HasPrefix(flag, "-u") || strings.HasPrefix(flag, "--user") || strings.HasPrefix(flag, "--proxy-user") {
		if user, _, ok := strings.Cut(v, ":"); ok {
			return user + ":" + Redacted
		}
	}
	return Redacted
}

func mysqlLike(prog string) bool {
	switch prog {
	case "mysql", "mysqladmin", "mysqldump", "mysqlimport", "mysqlshow", "mysqlcheck", "mysqlpump", "mysqlslap",
		"mariadb", "mariadb-admin", "mariadb-dump", "mariadb-import", "mariadb-show", "mariadb-check", "mariadb-slap":
		return true
	}
	return false
}

// valueless are secret-sounding options that take no value (docker login
// --password-stdin): the next argument is not theirs.
var valueless = map[string]bool{"passwordstdin": true, "tokenstdin": true, "askpass": true, "askpassword": true, "nopassword": true}

var (
	// userinfo is scheme://user:password@ in a URL anywhere in an argument.
	userinfoRE = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)([^/?#@\s:]*)(:[^/?#@\s]*)?@`)
	// queryRE is one URL query parameter.
	queryRE = regexp.MustCompile(`([?&;])([^=&#;\s]+)=([^&#;\s]*)`)
	// headerRE is "Name: value" (curl -H, wget --header).
	headerRE = regexp.MustCompile(`^([A-Za-z0-9_-]+):\s*(.*)$`)
	// optPrefixRE is the "--option=" in front of an attached value.
	optPrefixRE = regexp.MustCompile(`^--[A-Za-z0-9][A-Za-z0-9_-]*=`)
	// assignRE is the key= of key=value, also as --key=value.
	assignRE = regexp.MustCompile(`^-{0,2}([A-Za-z_][A-Za-z0-9_.-]*)=$`)
)

// text redacts what is secret inside one argument, whatever flag it
// follows: URL credentials and secret query parameters, secret headers,
// key=value with a secret key, and the operator's patterns.
func (r *redactor) text(a string) string { return r.textOf(a, true) }

// textOf is text, with the operator's patterns only when patterns is set
// (a word of an argument is not matched alone: the whole argument is).
func (r *redactor) textOf(a string, patterns bool) string {
	if strings.Contains(a, "://") {
		a = userinfoRE.ReplaceAllStringFunc(a, func(m string) string {
			sub := userinfoRE.FindStringSubmatch(m)
			if sub[3] != "" {
				return sub[1] + sub[2] + ":" + Redacted + "@"
			}
			// A user name alone is no secret; a token in its place
			// (https://ghp_…@github.com) is long.
			if len(sub[2]) >= 20 {
				return sub[1] + Redacted + "@"
			}
			return m
		})
	}
	if strings.ContainsAny(a, "?&;") {
		a = queryRE.ReplaceAllStringFunc(a, func(m string) string {
			sub := queryRE.FindStringSubmatch(m)
			if sub[3] != "" && r.secretName(sub[2]) {
				return sub[1] + sub[2] + "=" + Redacted
			}
			return m
		})
	}
	// A header may come attached to its option: --header=Name: value.
	opt, hdr := "", a
	if strings.HasPrefix(a, "--") {
		if m := optPrefixRE.FindString(a); m != "" {
			opt, hdr = m, a[len(m):]
		}
	}
	// The cheap checks first: a hostile argv is 64 arguments of 4 KiB, and
	// a regular expression over each would cost milliseconds per failure.
	if c := strings.IndexByte(hdr, ':'); c <= 0 || c > maxNameLen {
		hdr = ""
	}
	if m := headerRE.FindStringSubmatch(hdr); m != nil && m[2] != "" && r.secretHeader(m[1]) {
		v := Redacted
		// Keep the scheme: "Bearer" or "Basic" tells what kind of
		// credential was sent without revealing it.
		if scheme, _, ok := strings.Cut(m[2], " "); ok && authSchemes[strings.ToLower(scheme)] {
			v = scheme + " " + Redacted
		}
		a = opt + m[1] + ": " + v
	} else if eq := strings.IndexByte(a, '='); eq > 0 && eq <= maxNameLen+2 && eq < len(a)-1 {
		if m := assignRE.FindStringSubmatch(a[:eq+1]); m != nil && r.secretName(m[1]) && !strings.Contains(a[eq+1:], Redacted) {
			a = a[:eq+1] + Redacted
		}
	}
	if patterns {
		for _, re := range r.patterns {
			a = redactPattern(re, a)
		}
	}
	return a
}

var authSchemes = map[string]bool{"bearer": true, "basic": true, "digest": true, "token": true, "negotiate": true, "aws4-hmac-sha256": true}

// redactPattern replaces the first group of every match of re, or the
// whole match when re has no group.
func redactPattern(re *regexp.Regexp, s string) string {
	locs := re.FindAllStringSubmatchIndex(s, -1)
	if locs == nil {
		return s
	}
	var b strings.Builder
	last := 0
	for _, l := range locs {
		start, end := l[0], l[1]
		if len(l) >= 4 && l[2] >= 0 {
			start, end = l[2], l[3]
		}
		if start < last || start == end {
			continue
		}
		b.WriteString(s[last:start])
		b.WriteString(Redacted)
		last = end
	}
	b.WriteString(s[last:])
	return b.String()
}

// secretWords mark a name as naming a secret when they are the whole name
// or one of its parts.
var secretWords = map[string]bool{
	"password": true, "passwd": true, "passphrase": true, "pass": true, "pwd": true, "pw": true,
	"secret": true, "token": true, "apikey": true, "credential": true, "credentials": true,
	"auth": true, "authorization": true, "cookie": true, "privatekey": true, "accesskey": true,
	"secretkey": true, "sessionid": true, "signature": true, "sig": true, "key": true,
}

// notSecret are parts that make a secret-sounding name name something else:
// --password-file takes a path, --token-ttl a duration.
var notSecret = map[string]bool{
	"file": true, "path": true, "dir": true, "env": true, "stdin": true, "fd": true, "prompt": true,
	"cmd": true, "command": true, "length": true, "len": true, "policy": true, "ttl": true, "type": true,
	"expiry": true, "expires": true, "name": true, "id": true, "url": true, "endpoint": true,
}

// secretFlag judges a long option's name (without "--").
func secretFlag(name string) bool {
	parts := nameParts(name)
	// A lone "key" as an option names a file or a sort key far more
	// often than a secret (curl --key, sort --key); as a query parameter
	// (?key=) it is an API key.
	if len(parts) == 1 && (parts[0] == "key" || parts[0] == "sig" || parts[0] == "pw" || parts[0] == "auth") {
		return false
	}
	return secretParts(parts)
}

// secretName judges a key=value key, a query parameter or a header name.
func (r *redactor) secretName(name string) bool {
	if r.names[normName(name)] {
		return true
	}
	for _, p := range nameParts(name) {
		if r.names[p] {
			return true
		}
	}
	return secretParts(nameParts(name))
}

func (r *redactor) secretHeader(name string) bool {
	switch strings.ToLower(name) {
	case "http", "https", "ftp", "file":
		return false // "https://…" is a URL, not a header
	}
	return r.secretName(name)
}

// hasSecretSuffix catches words run together (PGPASSWORD, authtoken,
// clientsecret); a prefix would catch "tokenizer" too.
func hasSecretSuffix(p string) bool {
	for _, w := range []string{"password", "passwd", "passphrase", "secret", "token", "apikey", "credentials"} {
		if strings.HasSuffix(p, w) {
			return true
		}
	}
	return false
}

func secretParts(parts []string) bool {
	secret := false
	for i, p := range parts {
		if notSecret[p] {
			return false
		}
		if secretWords[p] || hasSecretSuffix(p) {
			secret = true
		}
		// api-key, access_token, client.secret: a pair joined again.
		if i > 0 && secretWords[parts[i-1]+p] {
			secret = true
		}
	}
	return secret || secretWords[strings.Join(parts, "")]
}

// nameParts splits a name at '-', '_' and '.', and where camelCase
// turns upper (apiKey, accessToken), in lower case.
func nameParts(name string) []string {
	var b strings.Builder
	prevLower := false
	for _, c := range name {
		if c >= 'A' && c <= 'Z' && prevLower {
			b.WriteByte('-')
		}
		prevLower = c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		b.WriteRune(c)
	}
	return strings.FieldsFunc(strings.ToLower(b.String()), func(c rune) bool { return c == '-' || c == '_' || c == '.' })
}

func normName(name string) string {
	return strings.Join(nameParts(strings.TrimLeft(name, "-")), "")
}
