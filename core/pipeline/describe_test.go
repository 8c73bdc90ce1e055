package pipeline

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestFormatParameters(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 640: "640", 12_345: "12.3K", 859_520_964: "859.5M", 1_234_567_890: "1.23B"} {
		assert.Equal(t, want, FormatParameters(n), "%d", n)
	}
}

func TestDTypeMix(t *testing.T) {
	tests := []struct {
		m    map[string]int64
		want string
	}{
		{nil, "no tensors"},
		{map[string]int64{"F32": 100}, "F32 100%"},
		{map[string]int64{"F32": 980, "I64": 20}, "F32 98%, I64 2%"},
		{map[string]int64{"F32": 100_000, "I64": 8}, "F32 100%, I64 <1%"},
		{map[string]int64{"F16": 50, "BF16": 50}, "BF16 50%, F16 50%"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, DTypeMix(tt.m))
	}
}
