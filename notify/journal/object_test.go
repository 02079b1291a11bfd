// SPDX-License-Identifier: Apache-2.0

package journal

import (
	"context"
	"os"
	"reflect"
	"testing"

	"github.com/execfaild/execfaild/notify"
	"github.com/execfaild/execfaild/probe/event"
)

func TestObjectFields(t *testing.T) {
	ev := event.Synthetic(fixedTime, "web-1")
	want := []Field{
		{Name: "OBJECT_UID", Value: "1000"},
		{Name: "OBJECT_GID", Value: "1000"},
		{Name: "OBJECT_COMM", Value: "deployer"},
		{Name: "OBJECT_EXE", Value: "/usr/bin/deployer"},
		{Name: "OBJECT_AUDIT_LOGINUID", Value: "1000"},
		{Name: "OBJECT_SYSTEMD_CGROUP", Value: "/system.slice/deployer.service"},
	}
	got := ObjectFields(&ev)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ObjectFields = %v\nwant %v", got, want)
	}
	for _, f := range got {
		if !ValidFieldName(f.Name) {
			t.Errorf("invalid field name %q", f.Name)
		}
	}

	// uid 0 is a real value and stays; what the event lacks is left out
	// rather than sent empty.
	ev.Process.UID, ev.Process.Exe, ev.Process.LoginUID, ev.Process.Cgroup = 0, "", nil, ""
	want = []Field{
		{Name: "OBJECT_UID", Value: "0"},
		{Name: "OBJECT_GID", Value: "1000"},
		{Name: "OBJECT_COMM", Value: "deployer"},
	}
	if got := ObjectFields(&ev); !reflect.DeepEqual(got, want) {
		t.Errorf("sparse event: ObjectFields = %v\nwant %v", got, want)
	}

	// Without a process there is nothing for journald to have derived.
	ev.Process = event.Process{}
	if got := ObjectFields(&ev); got != nil {
		t.Errorf("no process: ObjectFields = %v, want none", got)
	}
}

// A sink that is not root sends the OBJECT_* fields after the usual ones;
// one that is root leaves them to journald.
func TestSendAddsObjectFields(t *testing.T) {
	c := DefaultConfig()
	s, err := c.New(notify.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.(*Sink).object, os.Geteuid() != 0; got != want {
		t.Errorf("object = %v for euid %d, want %v", got, os.Geteuid(), want)
	}

	l := listen(t)
	s = newSink(t, l.path, "")
	s.(*Sink).object = true
	ev := event.Synthetic(fixedTime, "web-1")
	if err := s.Send(context.Background(), &ev); err != nil {
		t.Fatalf("send: %v", err)
	}
	raw, _ := l.receive()
	fields, err := parseNative(raw)
	if err != nil {
		t.Fatalf("parse native protocol: %v", err)
	}
	got := map[string]string{}
	for _, f := range fields {
		got[f.name] = f.value
	}
	for _, f := range ObjectFields(&ev) {
		if got[f.Name] != f.Value {
			t.Errorf("%s = %q, want %q", f.Name, got[f.Name], f.Value)
		}
	}
	if got["OBJECT_PID"] != "4242" || got["EXECFAIL_EXE"] != "/usr/bin/deployer" {
		t.Errorf("usual fields missing: OBJECT_PID=%q EXECFAIL_EXE=%q", got["OBJECT_PID"], got["EXECFAIL_EXE"])
	}
}
