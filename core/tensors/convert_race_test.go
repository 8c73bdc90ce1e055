//go:build race

package tensors

// raceEnabled makes the exhaustive conversion test sample instead of
// sweeping all 2³² inputs, which would take many minutes under -race.
const raceEnabled = true
