// Package fakemerchant is a minimal merchant production interface for tests: it verifies
// KooGallery's signatures with the koogallery library, keeps instances in memory, answers every
// activity and kit sync with a signed reply, and reports an instance ready after a configurable
// number of queryInstance polls. It exists so that the simulator and koosim can be tested
// end to end without the operator.
package fakemerchant
