// Package pkgtest checks the release `make dist` builds in dist/ as a user
// would receive it: every archive and package is in checksums.txt with its
// digest; each archive holds a binary for its platform (static on Linux),
// the units, environment files, man page, completions and the
// documentation and examples, and nothing else; and the .deb and .rpm
// install those files with the modes and owners an operator expects, the
// documentation and examples under /usr/share/doc/hbmesh, and only the
// /etc/default files as configuration.
//
// The documentation and examples (README, CHANGELOG, docs/*.md, the
// Prometheus rules, their tests and a configuration, the Alertmanager
// route, the Grafana dashboard, the auth templates) keep the repository's
// layout in the archives and in /usr/share/doc/hbmesh. Each shipped file
// must be the repository's, byte for byte (rpm's recorded SHA-256 for the
// .rpm), and every relative link of a shipped page must resolve inside
// the shipped tree (internal/doclinks, the check the repository's own
// pages pass). promtool checks the rules and runs their unit tests as the
// .deb installs them, and amtool the Alertmanager example. DEPLOY.md's
// "Installed files" table names every file of the packages and archives,
// and nothing they lack.
//
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
// (Debian's rpm package), promtool (prometheus), amtool
// (prometheus-alertmanager) and unshare; without one, or without root,
// they fail under CI and are skipped, with the package to install,
// elsewhere.
package pkgtest
