package status_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hbmesh/hbmesh/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	fast     = 100 * time.Millisecond // node beat interval
	deadline = 10 * time.Second       // bound on any wait; passing tests never reach it
)

var subjects = wire.MustSubjects(wire.DefaultPrefix)
