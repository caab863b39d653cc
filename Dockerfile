# The one Sonde image: the static sonde binary for both the node agent and the
# hub, on an empty base. The demo (cmd/sonde-demo) and the lab (lab/) are never
# built into it.
#
# No base image is pulled, so it builds where no registry is reachable. The
# build context is the directory `make image` assembles (bin/image/<arch>):
#   sonde                 CGO_ENABLED=0 go build ./cmd/sonde, for the target arch
#   ca-certificates.crt   the trust store the hub and agents use for outgoing
#                         TLS (OTLP endpoints, a hub behind a public CA)
#   passwd, group         the non-root user, so that the process has a name
# Built by `make image` with buildah (daemonless):
#   buildah build --timestamp 0 -f Dockerfile bin/image/amd64
# Other architectures: build the binary with GOARCH set into bin/image/<arch>
# and pass --platform linux/<arch>; nothing here runs a program of the target
# architecture, so a multi-arch manifest list needs no emulation.
FROM scratch
COPY passwd group /etc/
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY sonde /usr/local/bin/sonde
# The hub runs as this non-root user. The agent's DaemonSet overrides
# runAsUser to 0 because attaching TC programs needs CAP_BPF and CAP_NET_ADMIN
# in the host network namespace, and grants those capabilities instead of
# privileged mode.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/sonde"]
ARG VERSION=dev
LABEL org.opencontainers.image.title="sonde" \
      org.opencontainers.image.description="Kubernetes traffic viewer: node agent and hub" \
      org.opencontainers.image.source="https://github.com/sondehq/sonde" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
