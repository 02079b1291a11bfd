package main

import (
	"flag"
	"fmt"
	"io"

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
	if err := fs.Parse(args); err != nil {
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
	src := c.File
	if src == "" {
		src = "built-in defaults (" + config.DefaultPath + " does not exist)"
	}
	fmt.Fprintf(stdout, "# effective configuration from %s\n# secrets are shown as <redacted>\n\n", src)
	return c.WriteTOML(stdout)
}
