package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
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
