// Package instance holds the MarketplaceInstance reconciler: it resolves the instance's order
// through KooGallery's Query Order API, picks the plan, provisions the isolated tenant (namespace,
// quota, limits, network isolation, credentials, the plan's workload), freezes and unfreezes it,
// moves it between plans, and releases it through a finalizer. Each concern has its own file
// and sets its own condition; status is written once per reconcile by patch.
package instance
