package monitor_test

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/hbmesh/hbmesh/monitor"
)

// TestEveryWarningIsInTheRunbook keeps docs/OPERATIONS.md's "When
// something is wrong" table in step with the monitor and what runs around
// it: every message the monitor, the event sinks and notify log as a
// warning or an error must appear there.
func TestEveryWarningIsInTheRunbook(t *testing.T) {
	doc, err := os.ReadFile("../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, dir := range []string{".", "../internal/events", "../internal/notify"} {
		fs, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		files = append(files, fs...)
	}
	call := regexp.MustCompile(`\.(Warn|Error)\("([^"]+)"`)
	found := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range call.FindAllStringSubmatch(string(src), -1) {
			found++
			if !strings.Contains(string(doc), "`"+m[2]+"`") {
				t.Errorf("%s logs %q, which docs/OPERATIONS.md does not explain", f, m[2])
			}
		}
	}
	if found < 5 {
		t.Fatalf("found only %d log calls; the pattern no longer matches the code", found)
	}
}

// TestOperationsDocListsStatusFields: the /api/status row of
// docs/OPERATIONS.md names every field of StatusJSON, in order, and no
// other.
func TestOperationsDocListsStatusFields(t *testing.T) {
	doc, err := os.ReadFile("../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `/api/status` \\| [^`]*`([^`]+)`").FindSubmatch(doc)
	if row == nil {
		t.Fatal("docs/OPERATIONS.md has no /api/status row with a list of fields")
	}
	var want []string
	typ := reflect.TypeFor[monitor.StatusJSON]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		want = append(want, name)
	}
	if got := strings.Join(want, ", "); string(row[1]) != got {
		t.Errorf("docs/OPERATIONS.md lists the /api/status fields\n%s\nStatusJSON has\n%s", row[1], got)
	}
}
