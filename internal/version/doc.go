// Package version owns the operator's identity at run time: the release version and source
// commit stamped into the binary at build time (-ldflags -X, from the repository's VERSION
// file), the Go release that built it, and the build_info metric that exposes all three.
package version
