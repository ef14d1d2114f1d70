// Command manager runs marketplace-operator: the MarketplaceInstance and MarketplacePlan
// reconcilers (leader-elected) and the KooGallery marketplace endpoint (on every replica).
// It only parses flags and wires the pieces together.
package main
