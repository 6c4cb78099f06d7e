#!/bin/sh
# hbmesh package: before the files are unpacked (deb preinst, rpm %pre).
# Creates the hbmesh system user and group the services run as, so the
# files the package owns as hbmesh (/etc/hbmesh, /var/lib/hbmesh) get them.
set -e

if ! getent group hbmesh >/dev/null; then
	groupadd --system hbmesh
fi
if ! getent passwd hbmesh >/dev/null; then
	shell=$(command -v nologin || echo /bin/false)
	useradd --system --gid hbmesh --home-dir /var/lib/hbmesh --no-create-home \
		--shell "$shell" --comment "hbmesh heartbeat mesh" hbmesh
fi
exit 0
