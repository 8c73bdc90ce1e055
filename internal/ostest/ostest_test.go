package ostest

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestWindowsNameRule(t *testing.T) {
	tests := []struct {
		name string
		want string
	}{
		{"diffusion_pytorch_model.safetensors", ""},
		{"notes\u202etxt.md", ""},
		{"é ü.txt", ""},
		{"a\u0085b", ""},
		{"a\x1b[2Jb", "Windows file names cannot hold control characters (U+001B)"},
		{"evil\nname.txt", "Windows file names cannot hold control characters (U+000A)"},
		{"bad\xff.txt", "Windows file names are UTF-16, so invalid UTF-8 cannot be one"},
		{"flux `dev` | v1.safetensors", `Windows file names cannot hold '|'`},
		{"what?", `Windows file names cannot hold '?'`},
		{"trailing.", "Windows file names cannot end with a dot or a space"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, WindowsNameRule(tt.name), "%q", tt.name)
	}
}
