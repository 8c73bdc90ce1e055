//go:build race

package card

// raceEnabled skips the timing and memory tests, which -race distorts.
const raceEnabled = true
