// Package metricsauth guards the manager's metrics endpoint: a caller must present a bearer token
// the API server accepts (TokenReview) for an identity that RBAC allows to get the path
// (SubjectAccessReview on the non-resource URL, such as "/metrics"). It does what
// controller-runtime's metrics filters do with two API calls and a small cache, without their
// dependency on the API server's own libraries (k8s.io/apiserver, CEL, gRPC), which would make
// the manager's binary and its resident size markedly larger.
package metricsauth
