//go:build !race

package tensors

// raceEnabled is false: the exhaustive conversion test sweeps every input
// (unless -short).
const raceEnabled = false
