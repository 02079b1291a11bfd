// SPDX-License-Identifier: Apache-2.0

package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/execfaild/execfaild/config"
)

func runCheckConfig(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	// The same flag as run's, so the command line that starts the daemon
	// checks its file; the positional PATH predates it and stays.
	path := fs.String("config", "", "configuration `file` (default "+config.DefaultPath+"; built-in defaults when that does not exist)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: execfaild check-config [--config FILE | FILE]\n\n"+
			"Loads FILE (default %s, or the built-in defaults when it does not exist),\n"+
			"validates it and prints the effective configuration, every default filled in,\n"+
			"with secrets masked.\n\n", config.DefaultPath)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 1:
		fs.Usage()
		return exitError{code: 2, err: fmt.Errorf("at most one file, got %d", fs.NArg())}
	case fs.NArg() == 1 && *path != "":
		fs.Usage()
		return exitError{code: 2, err: fmt.Errorf("name the file either with --config or as an argument, not both")}
	case fs.NArg() == 1:
		*path = fs.Arg(0)
	}
	c, err := config.Load(*path)
	if err != nil {
		return err
	}
	if w := c.ReadableSecretsWarning(); w != "" {
		fmt.Fprintln(stderr, "warning: "+w)
	}
	for _, w := range c.Deprecated() {
		fmt.Fprintln(stderr, "warning: "+w)
	}
	if n := c.JournalNote(); n != "" {
		fmt.Fprintln(stderr, "note: "+n)
	}
	src := c.File
	if src == "" {
		src = "built-in defaults (" + config.DefaultPath + " does not exist)"
	}
	limit := unitMemoryMax()
	if err := c.CheckMemory(limit, 0); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "# effective configuration from %s\n# secrets are shown as <redacted>\n", src)
	fmt.Fprintf(stdout, "# memory bound %s", config.FormatBytes(c.MemoryBound(0).Total()))
	if limit > 0 {
		fmt.Fprintf(stdout, " (the unit's MemoryMax= is %s)", config.FormatBytes(limit))
	}
	fmt.Fprint(stdout, "\n\n")
	return c.WriteTOML(stdout)
}

// unitMemoryMax is the installed unit's effective MemoryMax= (drop-ins
// included) as systemd reports it, so check-config refuses what the
// service's start would refuse; 0 when systemd or the unit is not there or
// sets no limit. EXECFAILD_MEMORY_MAX overrides it (bytes), for checking a
// file meant for another machine.
func unitMemoryMax() int64 {
	if v := os.Getenv("EXECFAILD_MEMORY_MAX"); v != "" {
		n, _ := strconv.ParseInt(v, 10, 64)
		return n
	}
	out, err := exec.Command("systemctl", "show", "--property=MemoryMax", "--value", "execfaild.service").Output()
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return 0 // "infinity", or a systemd that does not know the unit
	}
	return n
}
