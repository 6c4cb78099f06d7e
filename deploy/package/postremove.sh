#!/bin/sh
# hbmesh package: after the files are removed (deb postrm, rpm %postun).
# A deb purge also deletes the monitor's restart memory; the hbmesh user
# stays, so files it owns elsewhere keep a named owner.
set -e

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
if [ "$1" = purge ]; then
	rm -rf /var/lib/hbmesh
fi
exit 0
