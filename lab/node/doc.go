// Package node runs a real Kubernetes node for tests: containerd with runc
// and the CNI bridge and host-local plugins, and a kubelet joined to a
// control plane from lab/kubetest. Pods on it are real containers with
// their own network namespaces, veths on a bridge in the host's network
// namespace, and the security contexts their manifests ask for, enforced
// by runc and the kernel; Sonde's agent runs on it from the image `make
// image` builds.
//
// Versions. The kubelet is built from the same k8s.io/kubernetes module as
// the control plane (lab/testenv/build.sh), so node and API server are the
// same release and no version skew arises between them. The runtime is
// Debian's containerd 1.6.20 with Debian's runc 1.1.5 and
// containernetworking-plugins 1.1.1: installed by `make deps` as packages,
// with no build at all, they are what a Debian node runs. The kubelet
// speaks CRI v1, which containerd 1.6 serves; what containerd 1.6 lacks
// (the RuntimeConfig call that reports the cgroup driver) the kubelet's
// configuration supplies (cgroupDriver: cgroupfs).
//
// cgroups. The project's machines mount cgroup v1 (cgroup2 only at
// /sys/fs/cgroup/unified); the kubelet refuses v1 unless its configuration
// says failCgroupV1: false. Each node gets a cgroup root of its own.
//
// Images. No registry is reachable: pods name images that were imported
// into the node's containerd (Import) and say imagePullPolicy: Never. The
// sandbox ("pause") image is the small program in ./pause, assembled into
// an OCI archive here (Image), as are the workload images of the tests.
//
// Networking. Every node's pods get addresses from one /24 of PodNetwork
// on a bridge of its own; there is no masquerading and no route beyond the
// node, so pods reach each other and the node, nothing else. The host end
// of each pod's veth is in the host's network namespace, which is where
// Sonde's agent (hostNetwork) finds it.
//
// What this machine's own limits change. The project's machines drop
// CAP_SYS_RESOURCE from every process's bounding set, so no runtime here
// can grant it: containerd is told to clamp the pod sandboxes'
// oom_score_adj (restrict_oom_score_adj; -998 needs that capability and
// runc could start no pod), and the agent's tests leave SYS_RESOURCE out of
// the DaemonSet's list (runc would fail "unable to apply caps"; the agent
// needs it only on kernels before 5.11).
//
// Seccomp. containerd 1.6's RuntimeDefault profile allows bpf(2) to a
// process holding CAP_BPF, so the agent loads its programs under it; the
// profile podman and CRI-O take from Debian's containers-common 0.50 allows
// bpf(2) only with CAP_SYS_ADMIN. A container that declares no profile runs
// unconfined on a kubelet without seccompDefault.
//
// The kubelet authenticates to the API server as the admin (the control
// plane authorises with RBAC only, without the Node authorizer), and
// trusts requests from the API server signed by the cluster's CA.
//
// Concurrency: a Node's methods are safe for concurrent use; Stop is
// called once, by the test's cleanup.
package node
