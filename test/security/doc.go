// Package security proves, against a real API server, the boundaries SECURITY.md describes: what
// the manager's ServiceAccount may and may not do with the RBAC and admission policies that
// config/default ships, and who may change a tenant namespace's Pod Security labels.
package security
