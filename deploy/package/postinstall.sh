#!/bin/sh
# hbmesh package: after the files are in place (deb postinst, rpm %post).
# A fresh install enables and starts nothing: the services need settings
# (/etc/default/hbmesh-node, /etc/default/hbmesh-monitor) first. An upgrade
# restarts the services that were running, so they run the new binary, and
# leaves stopped ones stopped.
set -e

fresh=false
upgrade=false
case "$1" in
configure) # deb: configure [<version it replaces>]
	if [ -n "$2" ]; then upgrade=true; else fresh=true; fi ;;
1) fresh=true ;;          # rpm: the only version installed
[0-9]*) upgrade=true ;;   # rpm: 2 or more installed, an upgrade
esac

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	if $upgrade; then
		systemctl try-restart hbmesh-node.service hbmesh-monitor.service hbmesh-notify.service >/dev/null 2>&1 || true
	fi
fi
if $fresh; then
	echo "hbmesh: set NATS_URL and credentials in /etc/default/hbmesh-node, then: systemctl enable --now hbmesh-node"
fi
exit 0
