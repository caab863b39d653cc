// Package deploy holds Sonde's Kubernetes manifests and renders them for the
// CLI.
//
// The YAML files beside this file are the single source: `kubectl apply -k
// deploy/` installs them as they are, and `sonde tap` and `sonde manifests`
// embed the same files and change only what Options names (image,
// namespace, the agents' pod selection, redaction, the hub's storage, the
// ingest token). Render reads kustomization.yaml for the list and the
// order of the files, so a file added there is rendered too.
//
// What the files install: the namespace, a ServiceAccount whose ClusterRole
// only reads pods, services, endpointslices, nodes and namespaces, the agent
// DaemonSet (host network, eBPF and TC capabilities instead of privileged
// mode), the hub Deployment (non-root, read-only root filesystem) with its
// Service, and the Secret holding the token agents present to the hub.
//
// Concurrency: Render is a pure function of its Options and safe for
// concurrent use; the objects it returns belong to the caller.
package deploy
