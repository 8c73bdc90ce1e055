// Package crossos holds tests that compare what Modelpub writes on one OS
// with what it writes on another: make test runs them on Linux, then their
// Windows build under Wine against the Linux results. It has no code.
package crossos
