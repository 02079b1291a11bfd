// SPDX-License-Identifier: Apache-2.0

package config

import (
	"errors"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/execfaild/execfaild/notify"
)

// exampleBlock is one table of the shipped file (or the top-level keys
// before the first): its header line and its commented settings, by line
// index.
type exampleBlock struct {
	name     string
	header   int // -1 for the top level
	parent   *exampleBlock
	settings []int // "#key = value": safe to uncomment as shown
	examples []int // "##key = value": an example to adapt first
}

var (
	commentedHeader = regexp.MustCompile(`^#{0,2}\[\[?\s*([^\]]+?)\s*\]\]?\s*$`)
	commentedKey    = regexp.MustCompile(`^#{1,2}([A-Za-z0-9_-]+) = `)
)

func exampleBlocks(lines []string) []*exampleBlock {
	top := &exampleBlock{name: "(top level)", header: -1}
	blocks := []*exampleBlock{top}
	cur := top
	arrays := map[string]*exampleBlock{}
	for i, l := range lines {
		if m := commentedHeader.FindStringSubmatch(l); m != nil && (l[0] == '[' || l[1] == '[' || strings.HasPrefix(l, "##[")) {
			b := &exampleBlock{name: m[1], header: i}
			// [sink.x.filter] belongs to the [[sink.x]] above it.
			for p, pb := range arrays {
				if strings.HasPrefix(m[1], p+".") {
					b.parent = pb
				}
			}
			if strings.Contains(l, "[[") {
				arrays[m[1]] = b
			}
			blocks = append(blocks, b)
			cur = b
			continue
		}
		switch {
		case setting.MatchString(l):
			cur.settings = append(cur.settings, i)
		case alternative.MatchString(l):
			cur.examples = append(cur.examples, i)
		}
	}
	return blocks
}

// enable uncomments b's header and settings (and its parent's) in lines.
func enable(lines []string, b *exampleBlock) {
	if b.parent != nil {
		enable(lines, b.parent)
	}
	for _, i := range append([]int{b.header}, b.settings...) {
		if i >= 0 {
			lines[i] = strings.TrimLeft(lines[i], "#")
		}
	}
}

// TestExampleBlocksNeverYieldPlaceholders walks the shipped file as an
// operator would. Uncommenting a table with its "#" settings as they stand
// loads and holds no secret inline: those lines are defaults or working
// values (a path to a secret file). Uncommenting a "##" example unchanged
// that holds a secret (a URL, token, password, header) is refused on its
// own line and key as a placeholder; it never loads to fail at the first
// delivery. Any other refusal still names its line.
func TestExampleBlocksNeverYieldPlaceholders(t *testing.T) {
	raw, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	orig := strings.Split(string(raw), "\n")
	old := journalSocket
	journalSocket = "/nonexistent"
	defer func() { journalSocket = old }()
	secrets := 0
	for _, b := range exampleBlocks(orig) {
		lines := append([]string(nil), orig...)
		enable(lines, b)
		c, err := Parse(example, []byte(strings.Join(lines, "\n")))
		if err != nil {
			t.Errorf("[%s] with its # settings uncommented: %v", b.name, err)
			continue
		}
		if k := c.inlineSecret(); k != "" {
			t.Errorf("[%s] with its # settings uncommented holds a secret inline (%s): a placeholder an operator would enable by removing the #", b.name, k)
		}
		for _, i := range b.examples {
			variant := append([]string(nil), lines...)
			variant[i] = strings.TrimPrefix(variant[i], "##")
			key := commentedKey.FindStringSubmatch(orig[i])[1]
			_, err := Parse(example, []byte(strings.Join(variant, "\n")))
			secret := holdsSecret(b.name, key)
			if secret {
				secrets++
			}
			var ce *Error
			switch {
			case secret && err == nil:
				t.Errorf("%s:%d: example secret %s loads when uncommented unchanged", example, i+1, key)
			case secret && (!errors.As(err, &ce) || ce.Line != i+1 || !strings.HasSuffix(ce.Key, "."+key) || !strings.Contains(ce.Err.Error(), "placeholder")):
				t.Errorf("%s:%d: example secret %s refused without its line, key and \"placeholder\": %v", example, i+1, key, err)
			case err != nil && (!errors.As(err, &ce) || ce.Line == 0):
				t.Errorf("%s:%d: example %s refused without a line: %v", example, i+1, key, err)
			}
		}
	}
	if secrets < 5 {
		t.Errorf("only %d example secrets found in %s: the walk no longer sees the sinks' ## lines", secrets, example)
	}
}

// The refusal is one line naming file, line and key, and never the value.
func TestPlaceholderRefused(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"[[sink.slack]]\nurl = \"https://hooks.slack.com/services/T000/B000/XXXX\"\n", "/etc/x.toml:2: sink.slack[0].url: placeholder value"},
		{"[[sink.webhook]]\nurl = \"https://events.example.com/hook\"\n", "/etc/x.toml:2: sink.webhook[0].url: placeholder value"},
		{"[[sink.webhook]]\nurl = \"https://h/\"\nbearer_token = \"token\"\n", "/etc/x.toml:3: sink.webhook[0].bearer_token: placeholder value"},
		{"[[sink.webhook]]\nurl = \"https://h/\"\n[sink.webhook.headers]\nX-Api-Key = \"key\"\n", "/etc/x.toml:4: sink.webhook[0].headers.X-Api-Key: placeholder value"},
		{"[[sink.alertmanager]]\nurls = [\"http://am:9093\", \"http://am-2.example.net:9093\"]\n", "/etc/x.toml:2: sink.alertmanager[0].urls: placeholder value"},
		// check-config's own output pasted back.
		{"[[sink.slack]]\nurl = \"https://hooks.slack.com/<redacted>\"\n", "/etc/x.toml:2: sink.slack[0].url: placeholder value"},
	} {
		_, err := Parse("/etc/x.toml", []byte(tc.text))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), "example.") || strings.Contains(err.Error(), "XXXX") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: got %v, want %q...", tc.text, err, tc.want)
		}
	}
	// Real values that merely look alike load.
	for _, text := range []string{
		"[[sink.slack]]\nurl = \"https://hooks.slack.com/services/T0A1/B0B2/Xy7ZxXq9\"\n",
		"[[sink.webhook]]\nurl = \"https://notexample.com/hook\"\nbearer_token = \"tok-3f9a\"\n",
		"[[sink.alertmanager]]\nurl = \"http://localhost:9093\"\n",
	} {
		if _, err := Parse("/etc/x.toml", []byte(text)); err != nil {
			t.Errorf("%q: %v", text, err)
		}
	}
}

// holdsSecret tells whether key in table (sink.<kind> or a sub-table of
// it) is typed as a secret in that sink's settings: the type, not the
// name, decides what check-config masks and what may hold a placeholder.
func holdsSecret(table, key string) bool {
	parts := strings.Split(table, ".")
	if len(parts) < 2 || parts[0] != "sink" {
		return false
	}
	sc, ok := notify.NewSinkConfig(parts[1])
	if !ok {
		return false
	}
	name := key
	if len(parts) == 3 {
		name = parts[2] // a key of a sub-table: the map holding it
	}
	return secretTyped(reflect.TypeOf(sc), name)
}

func secretTyped(t reflect.Type, name string) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct && secretTyped(f.Type, name) {
			return true
		}
		tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if tag != name {
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Slice || ft.Kind() == reflect.Map {
			ft = ft.Elem()
		}
		return ft == secretType
	}
	return false
}
