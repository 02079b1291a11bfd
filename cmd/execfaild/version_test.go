// SPDX-License-Identifier: Apache-2.0

package main

import (
	"os"
	"regexp"
	"testing"
)

// TestVersionIsTheRelease: a binary built without the package's flags
// (go run, go build) names the release debian/changelog describes, not
// the one before it.
func TestVersionIsTheRelease(t *testing.T) {
	b, err := os.ReadFile("../../debian/changelog")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`^execfaild \(([^)]+)\)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("debian/changelog: no version on its first line")
	}
	if version != string(m[1]) {
		t.Errorf("version %q, debian/changelog's release is %q", version, m[1])
	}
}
