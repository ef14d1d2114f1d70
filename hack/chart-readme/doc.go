// Command chart-readme writes the Helm chart's README.md from its Chart.yaml and the comments of
// its values.yaml, so that every value is documented in one place, next to its default.
//
// A value is documented by a comment directly above its key that starts with "# --"; the lines
// after it continue the description. A documented mapping is one row (its default is the whole
// mapping); an undocumented one is documented through its keys. Any other value without a
// description is an error, as is a README that differs from what would be written (-check).
package main
