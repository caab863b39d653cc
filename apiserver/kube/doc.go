// Package kube names addresses after the Kubernetes objects that held them:
// a pod IP resolves to the pod, its namespace, its workload (the owner that
// made it: Deployment, StatefulSet, DaemonSet, Job, or a ReplicaSet or other
// controller on its own), its node and the service whose endpoints list it;
// a service's cluster IP resolves to the service. It implements the hub's
// enrich.Resolver.
//
// One watch per kind: shared informers on pods, services and endpointslices
// list once and then follow changes; nothing polls the API server.
//
// Addresses are reused (a pod IP goes to the next pod scheduled on the node;
// a deleted service's cluster IP to a later service), so the resolver keeps
// for each address the spans of time each object held it and answers for
// the moment the entry was captured, not for now. A span starts when the
// pod started (status.startTime) or the service was created, but never
// before the previous holder let go; it ends when the informer sees the pod
// finish or go away. An entry from before the first span known resolves to
// that first holder (the hub may start after the pod); one from after the
// last span ended resolves to it for Config.Linger more, then to nothing.
//
// History is bounded: ended spans are forgotten after Config.Retention or,
// beyond Config.MaxEnded of them, oldest first (counted in Stats.Evicted).
// The informers keep only the fields naming needs (see strip).
//
// Concurrency: Resolve, Lookup and Stats are safe for concurrent use with
// each other and with the informers' event handlers, which update the
// history under a lock that readers share.
package kube
