// Package render owns the desired state of a tenant: pure functions that turn a
// MarketplaceInstance and its MarketplacePlan into the objects the instance reconciler applies
// with server-side apply (the tenant Namespace with Pod Security labels, its ResourceQuota,
// LimitRange and NetworkPolicies, the credentials Secret, the plan's templated workload, the
// backup Job) and into the buyer-facing URLs. It also owns every name, label and owner reference
// those objects carry (names are deterministic, so the reconciler finds what an earlier pass
// created; the controller reference says whether it is the instance's), the template checks a
// plan controller reports, and the two decisions a plan change rests on, which the reconciler
// and the marketplace endpoint share: which plan serves a SKU, and whether a tenant's usage fits
// a plan's quota. Nothing here talks to the API server, reads a clock or draws randomness
// itself, which is what makes every output table-testable and every reconcile repeatable.
package render
