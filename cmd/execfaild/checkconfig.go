package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/execfaild/execfaild/config"
)

func init() {
	register("check-config", command{
		summary: "validate a configuration file and print the effective settings",
		run:     runCheckConfig,
	})
}

func runCheckConfig(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: execfaild check-config [PATH]\n\n"+
			"Loads PATH (default %s, or the built-in defaults when it does not exist),\n"+
			"validates it and prints the effective configuration with secrets masked.\n", config.DefaultPath)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return exitError{code: 2, err: fmt.Errorf("at most one PATH, got %d", fs.NArg())}
	}
	c, err := config.Load(fs.Arg(0))
	if err != nil {
		return err
	}
	if w := c.ReadableSecretsWarning(); w != "" {
		fmt.Fprintln(stderr, "warning: "+w)
	}
	src := c.File
	if src == "" {
		src = "built-in defaults (" + config.DefaultPath + " does not exist)"
	}
	fmt.Fprintf(stdout, "# effective configuration from %s\n# secrets are shown as <redacted>\n\n", src)
	return c.WriteTOML(stdout)
}
