#!/bin/sh
# hbmesh package: before the files are removed (deb prerm, rpm %preun).
# On removal, not on upgrade, stops and disables the services; a stopped
# node says goodbye, so monitors report it "left".
set -e

case "$1" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl disable --now hbmesh-node.service hbmesh-monitor.service hbmesh-notify.service >/dev/null 2>&1 || true
	fi
	;;
esac
exit 0
