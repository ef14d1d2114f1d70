// Package usage meters pay-per-use tenants and pushes their usage to KooGallery. It owns
// status.usage of every MarketplaceInstance whose plan has spec.metering (the ledger: what was
// measured, what was pushed up to which time, and what is being pushed), the application's usage
// channel in the tenant namespace (the marketplace-usage ConfigMap and the Role and RoleBinding
// that let the tenant write it), and the usage finalizer that holds a released instance until its
// last period is pushed. Periods are closed on a fixed schedule, written to the ledger with a
// metering_sn derived from the instance and the period end before they are sent, and sent again
// with the same metering_sn until KooGallery acknowledges them: a manager killed at any point
// neither loses a period nor bills one twice.
package usage
