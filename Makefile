# Sonde's build. `make` alone lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO       ?= go
BIN      := bin/sonde
DEMO_BIN := bin/sonde-demo
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
# Debian packages the tests drive for real: tshark (conformance reference and
# benchmarks), redis-server/redis-tools, rabbitmq-server and kcat (protocol
# peers), iperf3 and wrk (capture load), clang/llvm/libbpf-dev (rebuilding the
# eBPF object), iproute2/iptables (network lab), chromium and nodejs (the
# browser tests).
APT_PACKAGES := tshark redis-server redis-tools rabbitmq-server kcat iperf3 wrk clang llvm libbpf-dev \
	iproute2 iptables chromium nodejs $(IMAGE_PACKAGES) $(NODE_PACKAGES)
# buildah builds the image from the Dockerfile without a daemon; the real node
# of the Kubernetes tests (lab/node) runs pods with containerd, runc and the
# CNI bridge and host-local plugins.
IMAGE_PACKAGES := buildah ca-certificates
NODE_PACKAGES := containerd runc containernetworking-plugins
IMAGE      ?= ghcr.io/sondehq/sonde:$(VERSION)
IMAGE_ARCH ?= $(shell $(GO) env GOARCH)
IMAGE_TAR  := bin/sonde-image.tar
# The packages that start goroutines of their own, or hold state shared between
# goroutines (the protocols' counter sets and memory budget), tested again under
# the race detector by `make test`. A package that gains a goroutine joins the list.
RACE_PACKAGES := ./agent/emit/... ./agent/runner/... ./agent/capture/live/... ./apiserver/... ./protocols/ ./protocols/wire/ ./lab/netlab/...
FUZZTIME ?= 60s
TEST_TIMEOUT ?= 75m

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build bin/sonde (static, no cgo)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/sonde

.PHONY: image
image: ## build the Sonde image from the Dockerfile into bin/sonde-image.tar (OCI archive; buildah, no registry, no daemon)
	$(call apt_install,$(IMAGE_PACKAGES))
	@# The build context: the static binary for the target architecture and the
	@# few files a FROM scratch image needs (see the Dockerfile).
	rm -rf bin/image/$(IMAGE_ARCH) && mkdir -p bin/image/$(IMAGE_ARCH)
	CGO_ENABLED=0 GOOS=linux GOARCH=$(IMAGE_ARCH) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/image/$(IMAGE_ARCH)/sonde ./cmd/sonde
	cp /etc/ssl/certs/ca-certificates.crt bin/image/$(IMAGE_ARCH)/
	printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >bin/image/$(IMAGE_ARCH)/passwd
	printf 'root:x:0:\nnonroot:x:65532:\n' >bin/image/$(IMAGE_ARCH)/group
	@# A throwaway vfs store: nothing is left behind but the archive, and vfs
	@# works wherever the build runs (inside a container too). --timestamp 0
	@# and no identity label or history make the image's digest depend on its
	@# files and labels alone.
	@set -e; store=$$(mktemp -d); trap 'rm -rf "$$store"' EXIT; \
	b="buildah --root $$store/root --runroot $$store/run --storage-driver vfs"; \
	$$b build --quiet --timestamp 0 --identity-label=false --omit-history --platform linux/$(IMAGE_ARCH) \
		--build-arg VERSION=$(VERSION) -t $(IMAGE) -f Dockerfile bin/image/$(IMAGE_ARCH) >/dev/null; \
	rm -f $(IMAGE_TAR); \
	$$b push --quiet --format oci $(IMAGE) oci-archive:$(IMAGE_TAR):$(IMAGE); \
	echo "$(IMAGE_TAR): $(IMAGE), $$(du -h $(IMAGE_TAR) | cut -f1)"

.PHONY: sample
sample: build ## run `sonde read` on the sample capture the project recorded
	$(BIN) read cmd/sonde/testdata/sample.pcapng

# apt_install installs the Debian packages in $(1) that are missing; quick when none is.
define apt_install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages: "$$missing" (run as root)"; exit 1; fi; \
		echo "installing:" $$missing; \
		export DEBIAN_FRONTEND=noninteractive; \
		echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

# The demo's real servers; without them Redis and AMQP are skipped, one line each.
DEMO_PACKAGES := redis-server rabbitmq-server iproute2 iptables

.PHONY: demo
demo: ## build and run bin/sonde-demo: real services in network namespaces, captured live; UI on localhost:8899 (root)
	$(call apt_install,$(DEMO_PACKAGES))
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DEMO_BIN) ./cmd/sonde-demo
	$(DEMO_BIN)

.PHONY: deps
deps: ## install what the tests need (Debian packages, Go modules, npm packages); quick when already there
	$(call apt_install,$(APT_PACKAGES))
	$(GO) mod download
	@# A real kube-apiserver, etcd, scheduler, controller-manager, kubectl, kwok and
	@# the real node's kubelet for the Kubernetes tests, built once into a cache
	@# outside the clone.
	@bash lab/testenv/build.sh
	@# The browser tests drive Chromium with playwright-core from web/node_modules.
	@if [ ! -d web/node_modules ] || [ web/package-lock.json -nt web/node_modules ]; then \
		cd web && npm ci --no-audit --no-fund >/dev/null; fi

.PHONY: test
test: deps ## run every test (installs what they need first)
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod/go.sum are not tidy: run 'go mod tidy' and commit"; exit 1; }
	@$(MAKE) --no-print-directory gofmt
	$(GO) vet ./...
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(RACE_PACKAGES)
	$(MAKE) --no-print-directory check-generate check-web

.PHONY: generate
generate: ## rebuild generated files (the eBPF object and its Go bindings)
	$(GO) generate ./bpf/...

.PHONY: check-generate
check-generate: ## fail when committed generated files differ from a rebuild
	@if [ -d bpf ] && ls bpf/*.bpf.c >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory generate && git diff --exit-code --stat -- bpf/ \
		|| { echo "generated files in bpf/ differ from a rebuild: run 'make generate' and commit"; exit 1; }; \
	fi

.PHONY: web
web: ## rebuild the browser UI into web/dist (TypeScript types from Go, npm ci, tsc, esbuild)
	$(GO) generate ./web/...
	cd web && npm ci --no-audit --no-fund && npm run build

.PHONY: check-web
check-web: web ## fail when the committed web/dist or web/src/types.gen.ts differs from a rebuild
	@test -z "$$(git status --porcelain -- web/dist web/src/types.gen.ts)" || { git status --short -- web/dist web/src/types.gen.ts; \
		echo "web/dist or web/src/types.gen.ts differs from a rebuild: run 'make web' and commit"; exit 1; }

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each (default 60s)
	@set -e; for pkg in $$($(GO) list ./...); do \
		dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
		for target in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/func //'); do \
			echo "== $$pkg $$target"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg; \
		done; \
	done

.PHONY: bench
bench: deps ## benchmarks, side by side with tshark on the same input
	$(GO) test -run '^$$' -bench . -benchmem -count=1 -timeout 60m ./...

.PHONY: gofmt
gofmt: ## fail when a Go file is not gofmt-formatted (generated eBPF bindings aside)
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '_bpfel.go$$')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

.PHONY: lint
lint: gofmt ## gofmt and go vet
	$(GO) vet ./...

.PHONY: clean
clean: ## remove build output
	rm -rf bin
