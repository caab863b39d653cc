# One static sonde binary for both the node agent and the hub; the demo
# (cmd/sonde-demo) and the lab (lab/) are never built into it.
# The eBPF object and the web UI are committed, so the build needs neither clang nor Node.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/sonde ./cmd/sonde

# distroless/static has no shell and no package manager. The hub runs as the
# non-root user below; the agent's DaemonSet overrides runAsUser to 0 because
# attaching TC programs needs CAP_BPF and CAP_NET_ADMIN in the host network
# namespace, and grants those capabilities instead of privileged mode.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sonde /usr/local/bin/sonde
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/sonde"]
