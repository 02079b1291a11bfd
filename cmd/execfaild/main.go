// SPDX-License-Identifier: Apache-2.0

// Command execfaild reports failed program executions.
//
// Each subcommand lives in its own file; the table below lists them all, so
// main only dispatches: one exit point, one place that prints errors.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
)

// command is one subcommand. run gets the arguments after the command name
// and returns an error to print; exitError carries a specific exit code.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"check-config": {
		summary: "validate a configuration file and print the effective settings",
		run:     runCheckConfig,
	},
	"probe-check": {
		summary: "show the attach mode, hooks and fields this kernel provides",
		run:     runProbeCheck,
	},
	"reload": {
		summary: "make the running daemon re-read its configuration and report its verdict",
		run:     runReload,
	},
	"run": {
		summary: "run as a daemon: report failed execs to the configured sinks",
		run:     runDaemon,
	},
	"status": {
		summary: "show the running daemon's probe mode, counters and each sink's state",
		run:     runStatus,
	},
	"test-sinks": {
		summary: "send one synthetic failure through every configured sink",
		run:     runTestSinks,
	},
	"watch": {
		summary: "print each failed exec until interrupted",
		run:     runWatch,
	},
}

// exitError makes run return a chosen exit code; its message (if any) is
// printed as usual.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}
func (e exitError) Unwrap() error { return e.err }

// parseFlags parses a subcommand's flags. The flag package has already
// printed what was wrong and the usage; the error it returns becomes a
// usage error (exit 2) with nothing more to print, so it is said once.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return exitError{code: 2}
}

// version is the release, set from debian/changelog when the package is
// built; a plain go build says the same (TestVersionIsTheRelease).
var version = "0.2.0-1"

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: execfaild <command> [flags]\n\ncommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "  %-14s %s\n", "version", "print the version")
	fmt.Fprintf(w, "\nRun 'execfaild <command> -h' for a command's flags.\n")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "--help", "help":
		usage(stdout)
		return 0
	case "version", "--version":
		fmt.Fprintln(stdout, "execfaild", version)
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "execfaild: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	err := c.run(args[1:], stdout, stderr)
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	code := 1
	var ee exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintf(stderr, "execfaild %s: %s\n", args[0], msg)
	}
	return code
}
