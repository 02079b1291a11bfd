package probe_test

import (
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
