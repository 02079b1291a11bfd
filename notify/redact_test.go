// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"slices"
	"strings"
	"testing"

	"github.com/execfaild/execfaild/probe/event"
)

func TestRedactArguments(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want []string // nil: unchanged
		cfg  RedactConfig
	}{
		{name: "mysql -p attached", in: []string{"mysql", "-uroot", "-pS3cret", "db"}, want: []string{"mysql", "-uroot", "-p<redacted>", "db"}},
		{name: "mysql -p alone prompts", in: []string{"/usr/bin/mysql", "-p", "db"}},
		{name: "mariadb-dump --password=", in: []string{"mariadb-dump", "--password=S3cret"}, want: []string{"mariadb-dump", "--password=<redacted>"}},
		{name: "-p is a port elsewhere", in: []string{"ssh", "-p", "2222", "host"}},
		{name: "--password next", in: []string{"tool", "--password", "S3cret", "x"}, want: []string{"tool", "--password", "<redacted>", "x"}},
		{name: "--token next", in: []string{"gh", "--token", "ghp_abc"}, want: []string{"gh", "--token", "<redacted>"}},
		{name: "--api-key=", in: []string{"x", "--api-key=k1"}, want: []string{"x", "--api-key=<redacted>"}},
		{name: "--client-secret next", in: []string{"x", "--client-secret", "cs"}, want: []string{"x", "--client-secret", "<redacted>"}},
		{name: "--password-file is a path", in: []string{"x", "--password-file", "/etc/pw"}},
		{name: "--password-stdin takes nothing", in: []string{"docker", "login", "--password-stdin", "registry"}},
		{name: "--no-password takes nothing", in: []string{"x", "--no-password", "arg"}},
		{name: "--key is a file", in: []string{"curl", "--key", "/etc/k.pem", "https://h/"}},
		{name: "--tokenizer is no token", in: []string{"x", "--tokenizer=bert"}},
		{name: "curl bearer header", in: []string{"curl", "-H", "Authorization: Bearer abc.def", "https://api/"}, want: []string{"curl", "-H", "Authorization: Bearer <redacted>", "https://api/"}},
		{name: "header attached to --header=", in: []string{"wget", "--header=X-Api-Key: k"}, want: []string{"wget", "--header=X-Api-Key: <redacted>"}},
		{name: "private-token header", in: []string{"curl", "--header", "PRIVATE-TOKEN: glpat"}, want: []string{"curl", "--header", "PRIVATE-TOKEN: <redacted>"}},
		{name: "harmless header", in: []string{"curl", "-H", "Accept: application/json"}},
		{name: "curl -u user:pass", in: []string{"curl", "-u", "alice:pw", "https://h/"}, want: []string{"curl", "-u", "alice:<redacted>", "https://h/"}},
		{name: "curl --user=", in: []string{"curl", "--user=alice:pw"}, want: []string{"curl", "--user=alice:<redacted>"}},
		{name: "sshpass -p", in: []string{"sshpass", "-p", "pw", "ssh", "h"}, want: []string{"sshpass", "-p", "<redacted>", "ssh", "h"}},
		{name: "key=value", in: []string{"env", "DB_PASSWORD=pw", "AWS_SECRET_ACCESS_KEY=sk", "PGPASSWORD=pg", "PATH=/bin", "app"}, want: []string{"env", "DB_PASSWORD=<redacted>", "AWS_SECRET_ACCESS_KEY=<redacted>", "PGPASSWORD=<redacted>", "PATH=/bin", "app"}},
		{name: "camelCase key", in: []string{"x", "accessToken=t", "apiKey=k"}, want: []string{"x", "accessToken=<redacted>", "apiKey=<redacted>"}},
		{name: "url userinfo", in: []string{"git", "clone", "https://bob:pa55@git.example/r.git"}, want: []string{"git", "clone", "https://bob:<redacted>@git.example/r.git"}},
		{name: "url token as user", in: []string{"git", "clone", "https://ghp_0123456789abcdefghij@github.com/r"}, want: []string{"git", "clone", "https://<redacted>@github.com/r"}},
		{name: "url plain user", in: []string{"git", "clone", "ssh://git@host/r"}},
		{name: "url inside option", in: []string{"x", "--url=postgres://u:p@db/x"}, want: []string{"x", "--url=postgres://u:<redacted>@db/x"}},
		{name: "query parameters", in: []string{"curl", "https://h/x?user=bob&token=abc&access_token=def&key=k&api_key=a&password=p&client_secret=c&q=1"}, want: []string{"curl", "https://h/x?user=bob&token=<redacted>&access_token=<redacted>&key=<redacted>&api_key=<redacted>&password=<redacted>&client_secret=<redacted>&q=1"}},
		{name: "signed url", in: []string{"curl", "https://b.s3/o?X-Amz-Signature=abc&X-Amz-Expires=60"}, want: []string{"curl", "https://b.s3/o?X-Amz-Signature=<redacted>&X-Amz-Expires=60"}},
		{name: "argv[0] kept, after -- kept", in: []string{"x", "--", "--password", "literal"}},
		{name: "operator flag", cfg: RedactConfig{Flags: []string{"--vault-pass", "-k"}}, in: []string{"x", "--vault-pass", "v", "-kK", "-k", "K2"}, want: []string{"x", "--vault-pass", "<redacted>", "-k<redacted>", "-k", "<redacted>"}},
		{name: "operator name", cfg: RedactConfig{Names: []string{"pin"}}, in: []string{"x", "PIN=1234", "https://h/?pin=1"}, want: []string{"x", "PIN=<redacted>", "https://h/?pin=<redacted>"}},
		{name: "operator pattern with group", cfg: RedactConfig{Patterns: []string{`sk_live_([A-Za-z0-9]+)`}}, in: []string{"x", "charge sk_live_abc123 now"}, want: []string{"x", "charge sk_live_<redacted> now"}},
		{name: "operator pattern whole", cfg: RedactConfig{Patterns: []string{`AKIA[0-9A-Z]{16}`}}, in: []string{"x", "id=AKIAABCDEFGHIJKLMNOP"}, want: []string{"x", "id=<redacted>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Arguments = true
			if err := tc.cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			r := newRedactor(tc.cfg)
			in := slices.Clone(tc.in)
			got, changed := r.args(in)
			want := tc.want
			if want == nil {
				want = tc.in
			}
			if !slices.Equal(got, want) {
				t.Errorf("got  %q\nwant %q", got, want)
			}
			if changed != (tc.want != nil) {
				t.Errorf("changed = %v", changed)
			}
			if !slices.Equal(in, tc.in) {
				t.Errorf("input modified: %q", in)
			}
		})
	}
}

func TestRedactConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  RedactConfig
		want string
	}{
		{RedactConfig{Flags: []string{"password"}}, "flags[0]: "},
		{RedactConfig{Names: []string{"a b"}}, "names[0]: "},
		{RedactConfig{Patterns: []string{"("}}, "patterns[0]: "},
		{RedactConfig{Patterns: []string{"x*"}}, "patterns[0]: "},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%+v: %v, want %q…", tc.cfg, err, tc.want)
		}
	}
}

// Secrets inside an argument that holds a command line (sh -c, ssh host
// '…', su -c, python3 -c, or anything else that wraps one) are redacted
// word by word like separate arguments, the other words kept as written;
// a secret word loses what followed it in the same word (a closing
// bracket, say), never keeps a part of the secret. Whatever the form, the
// secret never reaches the output.
func TestRedactInsideArguments(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     []string
		want   []string
		secret string
	}{
		{name: "issue form", in: []string{"tool", "-c", "deploy --password=S3cretQQ5 now"}, want: []string{"tool", "-c", "deploy --password=<redacted> now"}, secret: "S3cretQQ5"},
		{name: "sh -c", in: []string{"/bin/sh", "-c", "deploy --password=S3cretQQ5 now"}, want: []string{"/bin/sh", "-c", "deploy --password=<redacted> now"}, secret: "S3cretQQ5"},
		{name: "bash -c --token next word", in: []string{"bash", "-c", "gh auth --token ghp_T0ken99 && echo ok"}, want: []string{"bash", "-c", "gh auth --token <redacted> && echo ok"}, secret: "ghp_T0ken99"},
		{name: "bash -c key=value", in: []string{"bash", "-c", "PGPASSWORD=Pg5ecret psql -h db"}, want: []string{"bash", "-c", "PGPASSWORD=<redacted> psql -h db"}, secret: "Pg5ecret"},
		{name: "python3 -c", in: []string{"python3", "-c", "import subprocess; subprocess.run(['deploy', '--password=Py5ecret'])"}, want: []string{"python3", "-c", "import subprocess; subprocess.run(['deploy', '--password=<redacted>'"}, secret: "Py5ecret"},
		{name: "python3 -c keyword argument", in: []string{"python3", "-c", "import db; db.connect(host='h', password='Kw5ecret')"}, want: []string{"python3", "-c", "import db; db.connect(host='h', password='<redacted>'"}, secret: "Kw5ecret"},
		{name: "ssh host command", in: []string{"ssh", "host", "mysql -uroot -pSsh5ecret db"}, want: []string{"ssh", "host", "mysql -uroot -p<redacted> db"}, secret: "Ssh5ecret"},
		{name: "su -c", in: []string{"su", "-c", "vault login -method=userpass password=Su5ecret", "deploy"}, want: []string{"su", "-c", "vault login -method=userpass password=<redacted>", "deploy"}, secret: "Su5ecret"},
		{name: "quoted attached -p", in: []string{"sh", "-c", "mysql -p'Qu0ted' db"}, want: []string{"sh", "-c", "mysql -p'<redacted>' db"}, secret: "Qu0ted"},
		{name: "quoted value after flag", in: []string{"sh", "-c", `tool --password "two words" next`}, want: []string{"sh", "-c", `tool --password "<redacted>" next`}, secret: "two words"},
		{name: "nested quotes", in: []string{"bash", "-c", "ssh host 'mysql -pNe5ted db'"}, want: []string{"bash", "-c", "ssh host 'mysql -p<redacted> db'"}, secret: "Ne5ted"},
		{name: "after a separator", in: []string{"sh", "-c", "cd /srv; mysql -pSep5ecret db"}, want: []string{"sh", "-c", "cd /srv; mysql -p<redacted> db"}, secret: "Sep5ecret"},
		{name: "harmless command kept", in: []string{"sh", "-c", "ls -l /tmp && echo 'a b'"}},
		{name: "-p elsewhere kept", in: []string{"sh", "-c", "ssh -p 2222 host"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRedactor(DefaultRedact())
			got, changed := r.args(slices.Clone(tc.in))
			want := tc.want
			if want == nil {
				want = tc.in
			}
			if !slices.Equal(got, want) {
				t.Errorf("got  %q\nwant %q", got, want)
			}
			if changed != (tc.want != nil) {
				t.Errorf("changed = %v", changed)
			}
			if tc.secret != "" && strings.Contains(strings.Join(got, "\x00"), tc.secret) {
				t.Errorf("the secret %q is still in %q", tc.secret, got)
			}
		})
	}
}

// Every secret form, inside every wrapper and quoting, comes out without
// the secret and with arguments_redacted set.
func TestRedactInsideArgumentsNeverLeaks(t *testing.T) {
	const secret = "Zq7Secret"
	forms := []string{
		"deploy --password=" + secret + " now",
		"deploy --password " + secret + " now",
		"gh --token " + secret,
		"PASSWORD=" + secret + " deploy",
		"DB_PASSWORD='" + secret + "' deploy",
		"mysql -p'" + secret + "' db",
		`mysql -p"` + secret + `" db`,
		"mysql -p" + secret + " db",
		"curl -u bob:" + secret + " https://h/",
		"curl -H 'Authorization: Bearer " + secret + "' https://h/",
		"git clone https://bob:" + secret + "@git.example/r",
		"cd /srv && sudo mysql -p" + secret,
	}
	wrap := []func(string) []string{
		func(c string) []string { return []string{"sh", "-c", c} },
		func(c string) []string { return []string{"bash", "-c", c} },
		func(c string) []string { return []string{"su", "-c", c, "deploy"} },
		func(c string) []string { return []string{"ssh", "host", c} },
		func(c string) []string {
			return []string{"bash", "-c", "ssh host '" + strings.ReplaceAll(c, "'", `'\''`) + "'"}
		},
		func(c string) []string {
			return []string{"python3", "-c", "import os; os.system('" + strings.ReplaceAll(c, "'", `\'`) + "')"}
		},
	}
	r := newRedactor(DefaultRedact())
	for _, f := range forms {
		for i, w := range wrap {
			in := w(f)
			ev := r.event(&event.Event{Arguments: in})
			if strings.Contains(strings.Join(ev.Arguments, " "), secret) || !ev.ArgumentsRedacted {
				t.Errorf("wrapper %d: %q\ngave %q redacted=%v", i, in, ev.Arguments, ev.ArgumentsRedacted)
			}
		}
	}
}
