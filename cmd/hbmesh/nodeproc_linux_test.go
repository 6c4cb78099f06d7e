//go:build linux

package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestSamplerFile: the variable stopServerSampler renames is the file
// nats-server's sampler reads, this process's stat file.
func TestSamplerFile(t *testing.T) {
	if want := fmt.Sprintf("/proc/%d/stat", os.Getpid()); pseProcStatFile != want {
		t.Fatalf("pse.procStatFile = %q, want %q", pseProcStatFile, want)
	}
}

// TestReleaseStartupPages: the executable's read-only pages leave this
// process's RSS, and the process goes on running its code.
func TestReleaseStartupPages(t *testing.T) {
	before := rssFileKB(t)
	releaseStartupPages()
	after := rssFileKB(t)
	t.Logf("RssFile %d kB -> %d kB", before, after)
	if after >= before {
		t.Fatalf("RssFile %d kB after, %d kB before: no page released", after, before)
	}
	if code, _, _ := runSync(t, nil, "version"); code != exitOK {
		t.Fatalf("hbmesh version after the release: exit %d", code)
	}
}

func rssFileKB(t *testing.T) int {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "RssFile:"); ok {
			kb, err := strconv.Atoi(strings.Fields(rest)[0])
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}
