//go:build !race

package tensors

// raceEnabled is false: the exhaustive conversion tests sweep every input.
const raceEnabled = false
