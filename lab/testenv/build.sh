#!/usr/bin/env bash
# Builds the control plane Sonde's Kubernetes tests run against — kube-apiserver,
# kube-scheduler, kube-controller-manager, kubectl, etcd and kwok — and the
# kubelet of the real node (lab/node) from the
# modules pinned in this directory's go.mod, into a cache outside the clone:
#
#   ${SONDE_K8S_CACHE:-/var/cache/sonde/k8s}/<kubernetes version>/bin
#
# and kwok's stage files next to it (…/<version>/kwok-stages). A cold build
# costs tens of CPU-minutes, so binaries that are already there and were built
# from the same go.mod, go.sum and this script are kept: a second run only
# hashes two files. Prints the bin directory on its last line.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"

k8s_version=$(awk '$1 == "k8s.io/kubernetes" {print $2; exit}' go.mod)
kwok_version=$(awk '$1 == "sigs.k8s.io/kwok" {print $2; exit}' go.mod)
if [[ -z $k8s_version || -z $kwok_version ]]; then
	echo "build.sh: go.mod names no k8s.io/kubernetes or sigs.k8s.io/kwok version" >&2
	exit 1
fi

cache=${SONDE_K8S_CACHE:-/var/cache/sonde/k8s}
root=$cache/$k8s_version
bin=$root/bin
stages=$root/kwok-stages
mkdir -p "$bin" "$stages"

# name → package. Order matters for nothing; the build shares one go invocation.
declare -A pkgs=(
	[kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
	[kube-scheduler]=k8s.io/kubernetes/cmd/kube-scheduler
	[kube-controller-manager]=k8s.io/kubernetes/cmd/kube-controller-manager
	[kubectl]=k8s.io/kubernetes/cmd/kubectl
	[etcd]=go.etcd.io/etcd/server/v3
	[kwok]=sigs.k8s.io/kwok/cmd/kwok
	[kubelet]=k8s.io/kubernetes/cmd/kubelet
)

major=${k8s_version#v}; major=${major%%.*}
minor=${k8s_version#v*.}; minor=${minor%%.*}
# The version stamps kube-apiserver reports on /version; without them
# kubectl and client libraries see v0.0.0 and refuse or misbehave.
ldflags="-s -w"
for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
	ldflags+=" -X $p.gitVersion=$k8s_version -X $p.gitMajor=$major -X $p.gitMinor=$minor"
	ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done
ldflags+=" -X sigs.k8s.io/kwok/pkg/consts.Version=${kwok_version#v}"
ldflags+=" -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${k8s_version#v}"

# What a binary is built from: the modules, the flags and its package. A
# change to any of them rebuilds it; editing this script's prose, or moving
# the module (its module line), does not.
stamp_of() { printf '%s\n%s\n%s\n' "$(grep -v '^module ' go.mod; cat go.sum)" "$ldflags" "$1" | sha256sum | cut -c1-16; }

# One builder at a time: `make deps` and a test run may start together.
exec 9>"$root/.lock"
flock 9

missing=()
for name in "${!pkgs[@]}"; do
	if [[ ! -x $bin/$name || "$(cat "$bin/.$name.stamp" 2>/dev/null)" != "$(stamp_of "${pkgs[$name]}")" ]]; then
		missing+=("$name")
	fi
done

if ((${#missing[@]} > 0)); then
	echo "building ${missing[*]} (Kubernetes $k8s_version, kwok $kwok_version) into $bin"
	targets=()
	for name in "${missing[@]}"; do targets+=("${pkgs[$name]}"); done
	tmp=$(mktemp -d "$root/.build.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	start=$SECONDS
	# The machines are shared and small: run below everyone else, and let
	# SONDE_BUILD_PARALLEL lower the number of packages compiled at once.
	CGO_ENABLED=0 nice -n 10 go build -trimpath -p "${SONDE_BUILD_PARALLEL:-2}" \
		-ldflags "$ldflags" -o "$tmp/" "${targets[@]}"
	for name in "${missing[@]}"; do
		# go names a binary after the last path element that is not a
		# major-version suffix: go.etcd.io/etcd/server/v3 becomes "server".
		built=${pkgs[$name]%/v[0-9]*}
		built=$tmp/${built##*/}
		mv "$built" "$bin/$name"
		stamp_of "${pkgs[$name]}" >"$bin/.$name.stamp"
	done
	echo "built in $((SECONDS - start)) s"
fi

# kwok ships no stages in its binary; its module carries the ones that make
# nodes Ready (with leases) and pods Running with an IP quickly.
stamp=$(stamp_of kwok-stages)
if [[ "$(cat "$stages/.stamp" 2>/dev/null)" != "$stamp" ]]; then
	kwok_dir=$(go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
	rm -rf "$stages"/*.yaml
	for s in node/fast node/heartbeat-with-lease pod/fast; do
		for f in "$kwok_dir/kustomize/stage/$s"/*.yaml; do
			[[ $(basename "$f") == kustomization.yaml ]] && continue
			cp "$f" "$stages/${s//\//-}-$(basename "$f")"
		done
	done
	chmod 0644 "$stages"/*.yaml
	echo "$stamp" >"$stages/.stamp"
fi

echo "$bin"
