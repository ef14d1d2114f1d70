// Package rig runs the product the way it is deployed, out of process, for the end-to-end,
// chaos and benchmark suites: a full local cluster from hack/cluster.sh (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, kwok) and the manager binary, which can be
// interrupted, killed and restarted.
package rig
