// SPDX-License-Identifier: Apache-2.0

package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/execfaild/execfaild/probe"
)

func runProbeCheck(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("probe-check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mode := fs.String("mode", probe.ModeAuto, "attach mode to check: one of "+strings.Join(probe.Modes, ", "))
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg := probe.DefaultConfig()
	cfg.Mode = *mode
	p, err := probe.New(cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	fmt.Fprint(stdout, p.Report().String())
	return nil
}
