// Package packaging tests what the project ships: the kustomize install (config/default and the
// optional config/prometheus component) and the Helm chart (charts/marketplace-operator). It
// renders both with the kubectl and helm that hack/control-plane.sh builds (KUBEBUILDER_ASSETS)
// and checks that they carry the same hardened Deployment, exactly the generated CRDs and
// ClusterRole rules, the same alerts, and never a key where a Secret is only referenced.
package packaging
