//go:build linux

package main

import (
	"bufio"
	"os"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	_ "unsafe" // for go:linkname

	_ "github.com/nats-io/nats-server/v2/server/pse" // the sampler stopServerSampler ends
)

// pseProcStatFile is the file nats-server's pse package samples, the
// "/proc/<pid>/stat" of this process.
//
//go:linkname pseProcStatFile github.com/nats-io/nats-server/v2/server/pse.procStatFile
var pseProcStatFile string

// releaseStartupPages drops this process's mappings of its executable's
// read-only pages (code, read-only data, the function tables). Package
// initialisation and start-up touch a few MB of them once, spread over a
// 25 MB binary, and they would otherwise stay mapped, counted in the
// node's RSS, for its whole life. The pages stay in the page cache; the
// few a beat uses map back on their first use.
//
// Only a read-only mapping none of whose pages this process wrote is
// dropped: its pages are the file's own, and mapping them back gives the
// same bytes. A mapping with an anonymous page (a copy made on write: a
// relocation table a dynamic linker or the race runtime wrote before
// making it read-only) is left alone, as are writable ones, since madvise
// would throw those writes away. It is best effort: without /proc/self/smaps
// it does nothing.
func releaseStartupPages() {
	smaps, err := os.Open("/proc/self/smaps")
	if err != nil {
		return
	}
	defer smaps.Close()
	self := uint64(reflect.ValueOf(releaseStartupPages).Pointer())
	type mapping struct {
		lo, hi     uint64
		perms, ino string
		written    bool // a page of its own: one this process wrote
	}
	var all []*mapping
	var cur *mapping
	exe := ""
	sc := bufio.NewScanner(smaps)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(f[0], "-"); ok && len(f) >= 5 {
			// A mapping: address perms offset dev inode [path].
			cur = nil
			l, err1 := strconv.ParseUint(lo, 16, 64)
			h, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 != nil || err2 != nil {
				continue
			}
			cur = &mapping{lo: l, hi: h, perms: f[1], ino: f[3] + " " + f[4]}
			if l <= self && self < h {
				exe = cur.ino
			}
			all = append(all, cur)
			continue
		}
		// A field of the current mapping: "Name: N kB".
		switch f[0] {
		case "Anonymous:": // a private file page written becomes anonymous
			if cur != nil && len(f) >= 2 && f[1] != "0" {
				cur.written = true
			}
		}
	}
	if exe == "" || sc.Err() != nil {
		return
	}
	for _, m := range all {
		if m.ino == exe && !strings.Contains(m.perms, "w") && !m.written {
			_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, uintptr(m.lo), uintptr(m.hi-m.lo), syscall.MADV_DONTNEED)
		}
	}
}
