//go:build linux && !race

package main

// stopServerSampler ends nats-server's CPU sampler in a process that runs
// no server. hbmesh links nats-server (for `hbmesh server`, the embedded
// server, and jsm.go under natscontext), and the init of its pse package
// starts a timer that reads /proc/self/stat every second, forever, for the
// CPU figure of a server's /varz: in `hbmesh node`, as much CPU as the
// beats themselves. pse has no API to stop it; its sampler stops re-arming
// once the file cannot be read. So this renames the file to one that
// cannot be opened. The write races, formally, with the sampler's reads
// (a race build leaves the sampler alone, see sampler_race.go), so the new
// name has the old one's length: were the sampler reading at that very
// instant, it would see one name or the other whole, and it ticks a second
// after init while main calls this within milliseconds of it. A process
// that runs a server must not call it. Should nats-server rename the
// variable, the build fails at link time rather than silently.
func stopServerSampler() {
	if f := pseProcStatFile; f != "" {
		pseProcStatFile = f[:len(f)-1] + "\x00" // a NUL makes every open fail
	}
}
