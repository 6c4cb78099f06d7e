package bench

import "runtime"

func runtimeVersion() string { return runtime.Version() }
func gomaxprocs() int        { return runtime.GOMAXPROCS(0) }
