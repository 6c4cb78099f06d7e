package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hbmesh/hbmesh/internal/natstest"
)

// TestBashCompletion: `hbmesh completion bash` is a valid bash script, and
// the completion it registers, run the way bash runs it on <TAB>, offers
// `monitor` for `hbmesh mon` and `--http` for `hbmesh monitor --ht`.
func TestBashCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal("bash not found")
	}
	script, err := exec.Command(hbmeshBin, "completion", "bash").Output()
	if err != nil {
		t.Fatalf("hbmesh completion bash: %v", err)
	}
	path := filepath.Join(t.TempDir(), "hbmesh.bash")
	if err := os.WriteFile(path, script, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bash, "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	// What the script registers for hbmesh.
	spec, err := exec.Command(bash, "-c", `source "$1" && complete -p hbmesh`, "bash", path).Output()
	if err != nil {
		t.Fatalf("complete -p hbmesh: %v", err)
	}
	fields := strings.Fields(string(spec))
	i := slices.Index(fields, "-C")
	if i < 0 || i+1 >= len(fields) {
		t.Fatalf("the script registers %q, not a completion command (-C)", spec)
	}
	prog := strings.Trim(fields[i+1], `'"`)

	// bash runs prog, found on $PATH, with the command line in COMP_LINE
	// and COMP_POINT, and the command, the word and the word before as
	// arguments; each line of its output is a candidate.
	bin := t.TempDir()
	if err := os.Symlink(hbmeshBin, filepath.Join(bin, "hbmesh")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ line, word, prev, want, not string }{
		{"hbmesh mon", "mon", "hbmesh", "monitor", "node"},
		{"hbmesh monitor --ht", "--ht", "monitor", "--http", "--json"},
		{"hbmesh bench ", "", "bench", "ingest", "_publisher"},
	} {
		cmd := exec.Command(bash, "-c", `exec "$@"`, "bash", prog, "hbmesh", tc.word, tc.prev)
		cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
			"COMP_LINE="+tc.line, "COMP_POINT="+strconv.Itoa(len(tc.line)))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%q: %v", tc.line, err)
		}
		got := strings.Fields(string(out))
		if !slices.Contains(got, tc.want) || slices.Contains(got, tc.not) {
			t.Errorf("completing %q offers %q; want %q and not %q", tc.line, got, tc.want, tc.not)
		}
	}
}

// completions runs the completion script for shell (zsh or fish) in that
// shell with hbmesh on PATH: run gets the script's path and returns the
// shell command that completes line and prints the candidates, one per
// line.
func completions(t *testing.T, shell, pkg string, run func(script, line string) string) {
	t.Helper()
	sh := natstest.SystemTool(t, pkg, "", shell)
	script, err := exec.Command(hbmeshBin, "completion", shell).Output()
	if err != nil {
		t.Fatalf("hbmesh completion %s: %v", shell, err)
	}
	path := filepath.Join(t.TempDir(), "hbmesh."+shell)
	if err := os.WriteFile(path, script, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sh, "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("%s -n: %v\n%s", shell, err, out)
	}
	bin := t.TempDir()
	if err := os.Symlink(hbmeshBin, filepath.Join(bin, "hbmesh")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ line, want, not string }{
		{"hbmesh mon", "monitor", "node"},
		{"hbmesh monitor --ht", "--http", "--json"},
		{"hbmesh bench ", "ingest", "_publisher"},
	} {
		cmd := exec.Command(sh, "-c", run(path, tc.line))
		cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s completing %q: %v\n%s", shell, tc.line, err, out)
		}
		got := strings.Fields(string(out))
		if !slices.Contains(got, tc.want) || slices.Contains(got, tc.not) {
			t.Errorf("%s: completing %q offers %q; want %q and not %q", shell, tc.line, got, tc.want, tc.not)
		}
	}
}

// TestFishCompletion: fish's own `complete -C` completes hbmesh command
// lines with the script `hbmesh completion fish` prints.
func TestFishCompletion(t *testing.T) {
	completions(t, "fish", "fish", func(script, line string) string {
		return "source " + strconv.Quote(script) + "; complete -C " + strconv.Quote(line)
	})
}

// TestZshCompletion: the function `hbmesh completion zsh` defines offers
// the right candidates. Outside an interactive shell zsh has no
// completion system, so compdef does nothing and compadd prints what it
// is given; BUFFER and CURSOR are set as the line editor sets them.
func TestZshCompletion(t *testing.T) {
	completions(t, "zsh", "zsh", func(script, line string) string {
		return "compdef() { :; }; compadd() { shift; print -l -- \"$@\"; }; source " + strconv.Quote(script) +
			"; BUFFER=" + strconv.Quote(line) + "; CURSOR=${#BUFFER}; _hbmesh"
	})
}
