// Package pkgtest checks the release `make dist` builds in dist/ as a user
// would receive it: every archive and package is in checksums.txt with its
// digest; each archive holds a binary for its platform (static on Linux),
// the units, environment files, man page and completions; and the .deb and
// .rpm install those files with the modes and owners an operator expects.
// The .deb for this machine is unpacked with dpkg-deb: its binary runs and
// prints the release's version, its files match the repository's, its man
// page renders without warnings, and systemd-analyze verify accepts its
// units with the packaged binary and man page. The maintainer scripts run
// as dpkg and rpm would run them, for install, upgrade, removal and purge,
// in a mount namespace with a copy of /etc and a systemctl that only
// records its calls, so the host is left as it was (this needs root).
//
// The tests have the build tag dist:
//
//	make dist-check    # make dist, then go test -tags dist ./internal/pkgtest
//
// They need dpkg-deb, man, systemd-analyze (Debian's systemd package), rpm
// (Debian's rpm package) and unshare; without one, or without root, they
// fail under CI and are skipped, with the package to install, elsewhere.
package pkgtest
