// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestReadmeFirstCommandDropsCapabilities: the README's first command
// builds the daemon as the package does, without cgo. With cgo linked (the
// net package's resolver, whenever a C compiler is present) the runtime
// cannot change every thread's capabilities, and `watch` would run with
// all of root's kept after attaching.
func TestReadmeFirstCommandDropsCapabilities(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var first string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "sudo ") {
			first = l
			break
		}
	}
	f := strings.Fields(first)
	if len(f) < 4 || !strings.Contains(first, "go run ./cmd/execfaild") {
		t.Fatalf("README's first command is not a go run of the daemon: %q", first)
	}
	env := os.Environ()
	for _, w := range f[1:] {
		if !strings.Contains(w, "=") {
			break
		}
		env = append(env, w)
	}
	cmd := exec.Command("go", "list", "-deps", "./cmd/execfaild")
	cmd.Dir = "../.."
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list with the README's environment: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p == "runtime/cgo" {
			t.Fatalf("%q links runtime/cgo: capabilities could not be dropped after attaching", first)
		}
	}
}

// TestDocsAgreeOnTheUnitPath: execfaild(8) and README.Debian name the
// unit file where the package installs it (debhelper's /lib/systemd/system
// on Debian 12).
func TestDocsAgreeOnTheUnitPath(t *testing.T) {
	unit := regexp.MustCompile(`/[a-z/]*systemd/system/execfaild\.service`)
	for _, f := range []string{"../../packaging/execfaild.8", "../../debian/README.Debian"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got := unit.FindAllString(string(b), -1)
		if len(got) == 0 {
			t.Errorf("%s names no unit path", f)
		}
		for _, p := range got {
			if p != "/lib/systemd/system/execfaild.service" {
				t.Errorf("%s names the unit %s, the package installs /lib/systemd/system/execfaild.service", f, p)
			}
		}
	}
}

// TestManPageDocumentsEveryFlag: every flag of every subcommand, as its
// usage prints it, is in execfaild(8).
func TestManPageDocumentsEveryFlag(t *testing.T) {
	b, err := os.ReadFile("../../packaging/execfaild.8")
	if err != nil {
		t.Fatal(err)
	}
	man := string(b)
	flagLine := regexp.MustCompile(`(?m)^  -([a-z][a-z-]*)`)
	for name := range commands {
		var out, errb bytes.Buffer
		run([]string{name, "-h"}, &out, &errb)
		flags := flagLine.FindAllStringSubmatch(errb.String(), -1)
		for _, f := range flags {
			if !strings.Contains(man, `\-\-`+strings.ReplaceAll(f[1], "-", `\-`)) {
				t.Errorf("execfaild %s --%s is not in execfaild(8)", name, f[1])
			}
		}
	}
}

// TestBashCompletionKnowsEveryFlag: the package's bash completion offers
// every subcommand and, for each, every flag its usage prints.
func TestBashCompletionKnowsEveryFlag(t *testing.T) {
	b, err := os.ReadFile("../../packaging/execfaild.bash-completion")
	if err != nil {
		t.Fatal(err)
	}
	script := string(b)
	cmds := regexp.MustCompile(`local commands="([^"]*)"`).FindStringSubmatch(script)
	if cmds == nil {
		t.Fatal("no command list in the completion")
	}
	flagLine := regexp.MustCompile(`(?m)^  -([a-z][a-z-]*)`)
	for name := range commands {
		if !slices.Contains(strings.Fields(cmds[1]), name) {
			t.Errorf("completion lacks the command %s", name)
		}
		m := regexp.MustCompile(`(?m)^\t` + regexp.QuoteMeta(name) + `\) flags="([^"]*)"`).FindStringSubmatch(script)
		var offered []string
		if m != nil {
			offered = strings.Fields(m[1])
		}
		var out, errb bytes.Buffer
		run([]string{name, "-h"}, &out, &errb)
		for _, f := range flagLine.FindAllStringSubmatch(errb.String(), -1) {
			if !slices.Contains(offered, "--"+f[1]) {
				t.Errorf("completion of %s lacks --%s", name, f[1])
			}
		}
	}
}
