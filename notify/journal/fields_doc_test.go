// SPDX-License-Identifier: Apache-2.0

package journal_test

import (
	"encoding/json"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/execfaild/execfaild/notify/journal"
	"github.com/execfaild/execfaild/notify/webhook"
	"github.com/execfaild/execfaild/probe/event"
)

const fieldsPage = "../../packaging/execfaild-fields.7"

// filled sets every field of v to a value that is not its zero, each
// string distinct (so that, say, the binary's path differs from the
// caller's), so no field of a record can hide from the sets below: a field
// added to the event shows up without this test knowing its name.
func filled(v reflect.Value, name string) {
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		filled(v.Elem(), name)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Date(2026, 11, 27, 10, 2, 3, 0, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				filled(v.Field(i), name+"."+v.Type().Field(i).Name)
			}
		}
	case reflect.String:
		v.SetString("v" + strings.ToLower(strings.ReplaceAll(name, ".", "-")))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(-2)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(2)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		filled(s.Index(0), name)
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		e := reflect.New(v.Type().Elem()).Elem()
		filled(e, name)
		m.SetMapIndex(reflect.ValueOf("site"), e)
		v.Set(m)
	}
}

// records are a fully populated failure and the same as a digest.
func records() []*event.Event {
	var single event.Event
	filled(reflect.ValueOf(&single).Elem(), "ev")
	single.Digest = false
	digest := single
	digest.Digest = true
	return []*event.Event{&single, &digest}
}

// emittedJournal is every journal field name a record can carry: the
// entry's own and, for an unprivileged sender, the OBJECT_* ones. A
// label's field stands as EXECFAIL_LABEL_NAME.
func emittedJournal() map[string]bool {
	out := map[string]bool{}
	for _, ev := range records() {
		for _, f := range append(journal.Entry(ev, 4), journal.ObjectFields(ev)...) {
			out[strings.Replace(f.Name, "EXECFAIL_LABEL_SITE", "EXECFAIL_LABEL_NAME", 1)] = true
		}
	}
	return out
}

// emittedJSON is every key path of the JSON the webhook, file and stdout
// sinks send (objects flattened with ".", arrays are one key). A label is
// labels.NAME.
func emittedJSON(t *testing.T) map[string]bool {
	out := map[string]bool{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		obj, ok := v.(map[string]any)
		if !ok {
			out[prefix] = true
			return
		}
		for k, m := range obj {
			if prefix == "labels" {
				k = "NAME"
			}
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			walk(p, m)
		}
	}
	for _, ev := range records() {
		b, err := webhook.Payload(ev)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		walk("", v)
	}
	return out
}

// documented reads the page's field entries: each .TP tag names the
// journal field in bold (\fBEXECFAIL_PID\fR) and the JSON key after
// "JSON " (JSON \fBprocess.pid\fR); \fINAME\fR stands for a label's name.
func documented(t *testing.T) (jour, js map[string]bool) {
	t.Helper()
	b, err := os.ReadFile(fieldsPage)
	if err != nil {
		t.Fatal(err)
	}
	item := regexp.MustCompile(`(JSON )?\\fB([A-Za-z0-9_.]+)(?:\\fI(NAME))?\\fR`)
	jour, js = map[string]bool{}, map[string]bool{}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if l != ".TP" || i+1 == len(lines) {
			continue
		}
		for _, m := range item.FindAllStringSubmatch(lines[i+1], -1) {
			name := m[2] + m[3]
			if m[1] != "" {
				js[name] = true
			} else {
				jour[name] = true
			}
		}
	}
	return jour, js
}

func compare(t *testing.T, what string, emitted, doc map[string]bool) {
	t.Helper()
	for _, k := range slices.Sorted(maps.Keys(emitted)) {
		if !doc[k] {
			t.Errorf("%s %s is emitted but not documented in %s", what, k, fieldsPage)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(doc)) {
		if !emitted[k] {
			t.Errorf("%s %s is documented in %s but never emitted", what, k, fieldsPage)
		}
	}
}

// TestFieldsPageMatchesRecords: execfaild-fields(7) lists exactly the
// journal fields and JSON keys a record carries, no more and no fewer.
func TestFieldsPageMatchesRecords(t *testing.T) {
	jour, js := documented(t)
	compare(t, "journal field", emittedJournal(), jour)
	compare(t, "JSON key", emittedJSON(t), js)
	if len(jour) < 40 || len(js) < 40 {
		t.Errorf("page parsed to %d journal fields and %d JSON keys: its .TP tags are not in the expected form", len(jour), len(js))
	}
}
