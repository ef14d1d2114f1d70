// Package webhook is the marketplace endpoint KooGallery calls: the basic activities at the
// production path and the joint-operation kit syncs under /produceAPI/v2/. It verifies every
// request before reading it further, records the buyer's intent in the MarketplaceInstance (create,
// patch or delete, never provisioning anything itself), answers from the instance's status and
// the manager's cache with a signed reply, and stores kit data (tenants, applications, authorised
// users, departments) in the tenant namespace. It runs on every replica of the manager.
package webhook
