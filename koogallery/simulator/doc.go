// Package simulator is a spec-faithful stand-in for KooGallery. Its OpenAPIServer serves Query
// Order (with the MOCK* debug orders and any order a test registers) and usage push, verifying
// the callers' signatures, and can be told to fail. Its Simulator plays KooGallery against a
// merchant's production URL: it signs and sends every activity, checks the Body-Sign of each
// reply, polls queryInstance after an asynchronous create, retries failures on the documented
// schedule (compressible for tests), records every exchange, and drives whole lifecycles and
// bounded load for the tests, the e2e suite, the benchmarks and the koosim CLI.
package simulator
