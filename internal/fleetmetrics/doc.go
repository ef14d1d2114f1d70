// Package fleetmetrics owns the marketplace_instances gauge: how many MarketplaceInstances are in
// each phase, and why, as the manager's cache sees them at scrape time. It reads the cache and
// writes nothing, so it runs on every replica, leader or not, and costs one cache list a scrape.
package fleetmetrics
