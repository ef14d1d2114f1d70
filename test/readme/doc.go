// Package readme runs the README's shell blocks as a newcomer would, in a fresh copy of the
// repository, on the local cluster `make dev` starts there: a block that no longer works as
// written fails the test. Each block carries a marker comment on the line before it that says
// how it is run, or why it is not:
//
//	<!-- readme-test: run -->
//	<!-- readme-test: run; background "make dev" until "dev: ready"; expect "text" -->
//	<!-- readme-test: skip: why -->
//
// Blocks run in order, each in bash with `set -euo pipefail`, and each sees what the ones before
// it exported, as one terminal would. A line starting with a background prefix keeps running in
// the background once its output shows the text; it is interrupted (Ctrl-C) when the test ends.
// An expected text must appear in the block's output.
package readme
