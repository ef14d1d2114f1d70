// Package testenv starts the real kube-apiserver and etcd (controller-runtime envtest) that the
// operator's integration tests run against, with the project's CRDs installed. The binaries
// come from hack/control-plane.sh through KUBEBUILDER_ASSETS, which `make test` sets; a folder
// set by hand is used only when its binaries are the pinned versions.
package testenv
