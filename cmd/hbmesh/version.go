package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"sync"

	"github.com/alecthomas/kong"
)

// version, commit and date describe the build. The Makefile sets them
// with -ldflags "-X main.version=... -X main.commit=... -X main.date=...";
// left empty, buildVersion takes what the Go toolchain recorded.
var (
	version string
	commit  string
	date    string
)

// versionInfo is what `hbmesh version` prints.
type versionInfo struct {
	Version, Commit, Date, Go, Platform string
}

// buildVersion returns the build's version information: the -ldflags
// values, else the module version and VCS settings in the binary's build
// info, else "dev" and "unknown".
var buildVersion = sync.OnceValue(func() versionInfo {
	v := versionInfo{Version: version, Commit: commit, Date: date, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		dirty := false
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && v.Commit == "":
				v.Commit = s.Value
			case s.Key == "vcs.time" && v.Date == "":
				v.Date = s.Value
			case s.Key == "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty && commit == "" && v.Commit != "" {
			v.Commit += "-dirty"
		}
	}
	for _, p := range []*string{&v.Version, &v.Commit, &v.Date} {
		if *p == "" {
			*p = "unknown"
		}
	}
	if version == "" && v.Version == "unknown" {
		v.Version = "dev"
	}
	return v
})

func (v versionInfo) print(w io.Writer) {
	fmt.Fprintf(w, "hbmesh %s\n  commit:   %s\n  built:    %s\n  go:       %s\n  platform: %s\n", v.Version, v.Commit, v.Date, v.Go, v.Platform)
}

// versionCmd is `hbmesh version`.
type versionCmd struct{}

func (c *versionCmd) Run(e *env) error {
	buildVersion().print(e.stdout)
	return nil
}

// versionFlag is `hbmesh --version`: `hbmesh version`, from anywhere on
// the command line.
type versionFlag bool

func (versionFlag) BeforeReset(k *kong.Kong) error {
	buildVersion().print(k.Stdout)
	k.Exit(exitOK)
	return nil
}
