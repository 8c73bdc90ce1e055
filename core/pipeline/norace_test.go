//go:build !race

package pipeline

// raceEnabled is false: the timing and memory tests run.
const raceEnabled = false
