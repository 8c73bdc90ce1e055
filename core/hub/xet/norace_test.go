//go:build !race

package xet

// raceEnabled is false: the memory test runs.
const raceEnabled = false
