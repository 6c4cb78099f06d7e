package node_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/hbmesh/hbmesh/node"
	"github.com/hbmesh/hbmesh/wire"
)

// A Config starts from the defaults; Validate names the field that is
// wrong, and id problems can be recognised with errors.Is.
func ExampleConfig_Validate() {
	cfg := node.DefaultConfig()
	cfg.Interval = 5 * time.Second
	cfg.Labels = map[string]string{"role": "web"}
	fmt.Println(cfg.Validate())

	cfg.ID = "web.1" // an id is one subject token: no dots
	err := cfg.Validate()
	fmt.Println(err)
	fmt.Println(errors.Is(err, wire.ErrInvalidID))

	cfg.ID = "web-1"
	cfg.Interval = 50 * time.Millisecond
	fmt.Println(cfg.Validate())
	// Output:
	// <nil>
	// invalid node config: ID: invalid id "web.1": contains '.' (an id is a single subject token)
	// true
	// invalid node config: Interval 50ms is below the minimum 100ms
}
