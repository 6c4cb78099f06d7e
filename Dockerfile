# The hbmesh image: the static binary from `make build` and nothing else.
# Build it with `make image` (which builds bin/hbmesh first); the context is
# only bin/hbmesh and deploy/docker/rootfs (see .dockerignore).
#
# FROM scratch has no shell, no /tmp, no CA certificates and no passwd, so:
#   - health checks run `hbmesh healthcheck --url ...`, not curl;
#   - rootfs/ supplies /tmp and /data, both owned by 65532, so a named
#     volume mounted on /data starts out writable by the non-root user
#     (Docker copies the image directory's ownership into a new volume);
#     servers keep their JetStream store under /data;
#   - TLS to NATS needs the CA mounted and passed with --tlsca.
FROM scratch
COPY --chown=65532:65532 deploy/docker/rootfs/ /
COPY bin/hbmesh /hbmesh
USER 65532:65532
ENV TMPDIR=/tmp
# 4222 clients, 6222 routes, 8222 server monitoring, 8080 monitor dashboard.
EXPOSE 4222 6222 8222 8080
ENTRYPOINT ["/hbmesh"]
CMD ["help"]
