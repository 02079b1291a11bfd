// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// ".." after a symlink goes up from where the link led, as exec's walk
// goes: /a/link/../x with link -> /b/c is /b/x. Cleaned as a string first,
// it would be /a/x.
func TestRootDirDotDotAfterSymlink(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"a", "b/c"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/b/c", filepath.Join(root, "a", "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "b", "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var want unix.Stat_t
	if err := unix.Stat(filepath.Join(root, "b", "x"), &want); err != nil {
		t.Fatal(err)
	}
	r := procRootDir(root)
	defer r.close()
	if r.plain {
		t.Skip("no openat2 on this kernel: paths are walked as strings")
	}
	var st unix.Stat_t
	if err := r.stat("/a/link/../x", &st); err != nil || st.Ino != want.Ino {
		t.Errorf("stat /a/link/../x in the root: inode %d (%v), want /b/x's %d", st.Ino, err, want.Ino)
	}
}
