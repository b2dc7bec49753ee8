package state_test

import (
	"testing"

	"github.com/concord-sync/concord/pipeline/state"
	"github.com/concord-sync/concord/pipeline/state/statetest"
)

func TestMemoryContract(t *testing.T) {
	statetest.Run(t, func(*testing.T) state.Store { return state.NewMemory() })
}
