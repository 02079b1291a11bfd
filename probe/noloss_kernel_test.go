package probe_test

import (
	"testing"

	"github.com/execfaild/execfaild/probe"
)

// checkNoLoss fails for every record a probe dropped or could not decode.
func checkNoLoss(t *testing.T, s probe.Stats) {
	t.Helper()
	if s.Lost != 0 || s.DecodeErrors != 0 {
		t.Errorf("probe lost %d records and could not decode %d", s.Lost, s.DecodeErrors)
	}
}
