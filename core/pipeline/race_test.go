//go:build race

package pipeline

// raceEnabled skips the timing and memory tests, which -race distorts.
const raceEnabled = true
