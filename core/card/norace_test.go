//go:build !race

package card

// raceEnabled is false: the timing and memory tests run.
const raceEnabled = false
