// SPDX-License-Identifier: Apache-2.0

package probe_test

import (
	"os"
	"strings"
	"testing"

	"github.com/execfaild/execfaild/probe"
)

// checkNoLoss fails for every record a probe dropped or could not decode.
func checkNoLoss(t *testing.T, s probe.Stats) {
	t.Helper()
	if s.LostFailures != 0 || s.LostMarkers != 0 || s.Undecodable != 0 || s.Undrained != 0 {
		t.Errorf("probe lost %d failures and %d markers, left %d undrained, could not decode %d",
			s.LostFailures, s.LostMarkers, s.Undrained, s.Undecodable)
	}
}

// testTransport is the transport EXECFAILD_TEST_TRANSPORT asks for (""
// lets the probe pick).
func testTransport() string { return os.Getenv("EXECFAILD_TEST_TRANSPORT") }

// startProbe starts a probe for a kernel test, with the transport
// EXECFAILD_TEST_TRANSPORT asks for. Where the kernel is known not to
// attach fentry programs (EXECFAILD_TEST_NO_FENTRY names why), a forced
// fentry mode must be refused: the test then skips, and fails if the probe
// attached after all.
func startProbe(t *testing.T, cfg probe.Config) *probe.Probe {
	t.Helper()
	if tr := testTransport(); tr != "" {
		cfg.Transport = tr
	}
	p, err := probe.New(cfg)
	if why := os.Getenv("EXECFAILD_TEST_NO_FENTRY"); why != "" && cfg.Mode == probe.ModeFentry {
		if err == nil {
			p.Close()
			t.Fatalf("fentry mode started on a kernel that cannot attach fentry (%s)", why)
		}
		t.Skipf("fentry refused, as it must be here (%s): %v", why, err)
	}
	if err != nil {
		t.Fatalf("start probe (mode %q): %v", cfg.Mode, err)
	}
	r := p.Report()
	if tr := testTransport(); tr != "" && r.Transport != tr {
		p.Close()
		t.Fatalf("probe sends through %q, EXECFAILD_TEST_TRANSPORT asks for %q", r.Transport, tr)
	}
	for _, h := range r.Hooks {
		if !h.Attached {
			t.Logf("probe (mode %s, build %s): hook %s %s not attached: %s", r.Mode, r.Build, h.Name, h.Function, h.Reason)
		}
	}
	return p
}

// TestKernelFentryRefused: on a kernel that cannot attach fentry programs,
// asking for fentry mode fails with a message that says so.
func TestKernelFentryRefused(t *testing.T) {
	requireRoot(t)
	why := os.Getenv("EXECFAILD_TEST_NO_FENTRY")
	if why == "" || testMode() != probe.ModeFentry {
		t.Skip("runs where fentry is known to be unavailable (EXECFAILD_TEST_NO_FENTRY)")
	}
	cfg := probe.DefaultConfig()
	cfg.Mode = probe.ModeFentry
	p, err := probe.New(cfg)
	if err == nil {
		p.Close()
		t.Fatalf("fentry mode started although %s", why)
	}
	if !strings.Contains(err.Error(), "fentry") {
		t.Errorf("refusal does not name fentry: %v", err)
	}
}
