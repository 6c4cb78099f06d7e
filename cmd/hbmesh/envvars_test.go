package main

import (
	"context"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// serviceCommands are the commands the systemd units run: every flag of
// theirs is a setting an environment file must be able to carry.
var serviceCommands = []string{"node", "monitor", "notify"}

// noVariable lists, by command and flag, the flags of serviceCommands
// that deliberately have no environment variable, with why; help and
// version are left out everywhere. None has one yet.
var noVariable = map[string]string{}

// serviceFlags calls fn with each flag of each of serviceCommands but
// help and version.
func serviceFlags(t *testing.T, fn func(cmd string, f *kong.Flag)) {
	t.Helper()
	e := &env{stdout: io.Discard, stderr: io.Discard, getenv: noEnv, from: map[string]string{}}
	k, err := newParser(context.Background(), &cli{}, e, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, n := range k.Model.Leaves(true) {
		if n.Parent != k.Model.Node || !slices.Contains(serviceCommands, n.Name) {
			continue // not a service, or a bench (hbmesh bench node)
		}
		seen[n.Name] = true
		for _, group := range n.AllFlags(true) {
			for _, f := range group {
				if f.Name != "help" && f.Name != "version" {
					fn(n.Name, f)
				}
			}
		}
	}
	if len(seen) != len(serviceCommands) {
		t.Fatalf("found commands %v, want %v", seen, serviceCommands)
	}
}

// TestEveryFlagHasVariable: every flag of node, monitor and notify reads
// an environment variable, so the units' environment files can set it,
// unless noVariable says why not. A new flag without `env:` fails here.
func TestEveryFlagHasVariable(t *testing.T) {
	serviceFlags(t, func(cmd string, f *kong.Flag) {
		_, exempt := noVariable[cmd+" --"+f.Name]
		switch {
		case len(f.Envs) == 0 && !exempt:
			t.Errorf("hbmesh %s --%s has no environment variable: give it env:\"HBMESH_%s\"", cmd, f.Name, envName(f.Name))
		case len(f.Envs) > 0 && exempt:
			t.Errorf("hbmesh %s --%s has %v, but noVariable says it has none", cmd, f.Name, f.Envs)
		}
	})
}

// envName is the variable a flag named name is expected to read:
// HBMESH_ and its name in upper case, dashes as underscores.
func envName(name string) string {
	return strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// TestDeployDocListsVariableExceptions: DEPLOY.md says every flag reads
// HBMESH_<FLAG>, the connection flags the nats CLI's NATS_* names, and
// lists the exceptions in a table of flag, command and variable. That
// table is exactly the flags of node, monitor and notify whose variable
// is neither; a NATS_* variable belongs to a connection flag only.
func TestDeployDocListsVariableExceptions(t *testing.T) {
	type exception struct{ flag, variable string }
	want := map[exception][]string{}
	serviceFlags(t, func(cmd string, f *kong.Flag) {
		for _, v := range f.Envs {
			switch {
			case strings.HasPrefix(v, "NATS_"):
				if f.Group == nil || f.Group.Key != "conn" {
					t.Errorf("hbmesh %s --%s reads %s: NATS_* names are for the connection flags", cmd, f.Name, v)
				}
			case v != "HBMESH_"+envName(f.Name):
				ex := exception{f.Name, v}
				want[ex] = append(want[ex], cmd)
			}
		}
	})
	doc, err := os.ReadFile("../../docs/DEPLOY.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| `--([a-z-]+)` \\| ([a-z, ]+) \\| `([A-Z_]+)`")
	got := map[exception][]string{}
	for _, line := range strings.Split(string(doc), "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			got[exception{m[1], m[3]}] = strings.Split(m[2], ", ")
		}
	}
	for ex, cmds := range want {
		if g, ok := got[ex]; !ok {
			t.Errorf("DEPLOY.md does not list --%s (%s), whose variable is %s", ex.flag, strings.Join(cmds, ", "), ex.variable)
		} else if !slices.Equal(g, cmds) {
			t.Errorf("DEPLOY.md lists --%s %s for %q, want %q", ex.flag, ex.variable, g, cmds)
		}
	}
	for ex := range got {
		if _, ok := want[ex]; !ok {
			t.Errorf("DEPLOY.md lists --%s as %s, which is no exception", ex.flag, ex.variable)
		}
	}
}
