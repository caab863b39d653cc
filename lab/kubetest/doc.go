// Package kubetest runs a real Kubernetes control plane for tests: etcd and
// kube-apiserver, and on request kube-scheduler, kube-controller-manager and
// kwok playing the kubelet of fake nodes. The binaries come from
// lab/testenv/build.sh, which builds them once into a cache outside the
// clone (BinDir); tests never download or build anything themselves.
//
// Where the binaries are missing, Start fails the test when the CI
// environment variable is set (CI runs `make deps`, which builds them) and
// otherwise skips it with a message that names the build script.
//
// Each Env has its own directory, ports, certificates and etcd data, so
// several may run at once. Shared starts one Env per test binary and
// options; Main stops them when the tests are done. Tests sharing an Env
// keep to namespaces of their own.
//
// Concurrency: an Env's methods are safe for concurrent use.
package kubetest
