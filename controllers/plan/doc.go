// Package plan holds the MarketplacePlan controller: it checks that a plan's templates parse
// and render for a sample instance, and reports the outcome as the plan's Ready condition, so
// a broken plan is visible in `kubectl get mpp` before any tenant is moved onto it.
package plan
