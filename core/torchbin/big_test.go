package torchbin

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestConvertBigRSS converts the checkpoint named by TORCHBIN_BIG (skipped
// when unset) and reports the process's peak RSS, which must not grow with
// the tensors' sizes.
func TestConvertBigRSS(t *testing.T) {
	path := os.Getenv("TORCHBIN_BIG")
	if path == "" {
		t.Skip("set TORCHBIN_BIG to a large .bin to run")
	}
	c, err := Open(path)
	require.NoError(t, err)
	defer c.Close()
	out := filepath.Join(t.TempDir(), "big.safetensors")
	require.NoError(t, WriteSafetensors(context.Background(), c, out))
	status, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "VmHWM") {
			t.Log(l)
		}
	}
}
