package publish

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// The summary says what the Hub already held (after a publish through
// Xet) and the dry run's Xet estimate, in the words the CLI and the app
// print.
func TestSummaryWords(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"sent through LFS", Summary{Sent: 3, Bytes: 12_000_000, Unchanged: 1}.String(),
			"3 files sent (12.0 MB), 1 unchanged, 0 deleted"},
		{"sent through Xet", Summary{Sent: 3, Bytes: 12_000_000, Deduped: 4_190_000_000, Unchanged: 1}.String(),
			"3 files sent (12.0 MB; 4.19 GB already on the Hub), 1 unchanged, 0 deleted"},
		{"plan without estimate", planString(Summary{New: 2, Bytes: 4_200_000_000}),
			"2 new, 0 changed (4.20 GB to send), 0 unchanged, 0 to delete"},
		{"plan with the Xet estimate", planString(Summary{New: 2, Bytes: 4_200_000_000, Estimated: true, Cached: 4_188_000_000}),
			"2 new, 0 changed (4.20 GB to send; ≈ 12.0 MB new, 4.19 GB already in the local Xet cache), 0 unchanged, 0 to delete"},
		{"unknown remote with the estimate", planString(Summary{Unknown: 2, Bytes: 4_200_000_000, Estimated: true}),
			"the Hub was not read: 2 files (4.20 GB; ≈ 4.20 GB new, 0 B already in the local Xet cache) would be sent unless the Hub has them"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.want, tt.got) })
	}
}
