package cli

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/tensors"
)

// writeModel writes a small safetensors file: three F32 tensors (one with a
// value fp16 cannot hold) and one I64 tensor.
func writeModel(t *testing.T, path string) {
	t.Helper()
	f32 := func(vals ...float32) tensors.Source {
		b := make([]byte, 4*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		return tensors.Bytes(b)
	}
	big := make([]float32, 64)
	for i := range big {
		big[i] = float32(i) / 7
	}
	_, err := tensors.WriteFile(context.Background(), path, []tensors.WriteTensor{
		{Name: "a.weight", DType: tensors.F32, Shape: []int64{64}, Data: f32(big...)},
		{Name: "b.weight", DType: tensors.F32, Shape: []int64{2}, Data: f32(1e6, -0.5)},
		{Name: "c.weight", DType: tensors.F32, Shape: []int64{64}, Data: f32(big...)},
		{Name: "steps", DType: tensors.I64, Shape: []int64{1}, Data: tensors.Bytes([]byte{7, 0, 0, 0, 0, 0, 0, 0})},
	}, nil, tensors.WriteOptions{})
	require.NoError(t, err)
}

func TestShardCommand(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "diffusion_pytorch_model.safetensors")
	writeModel(t, src)
	out := filepath.Join(dir, "out")

	var stdout, stderr bytes.Buffer
	code := Run([]string{"shard", src, out, "--max-shard-size", "200", "--dtype", "f16", "--variant", "fp16"}, &stdout, &stderr)
	require.Equal(t, ExitOK, code, stderr.String())
	assert.Contains(t, stdout.String(), "diffusion_pytorch_model.fp16-00001-of-00002.safetensors")
	assert.Contains(t, stdout.String(), "diffusion_pytorch_model.safetensors.index.fp16.json")
	assert.Contains(t, stdout.String(), `warning: tensor "b.weight": 1 values overflowed to ±inf`)

	set, err := tensors.OpenShardedSet(filepath.Join(out, "diffusion_pytorch_model.safetensors.index.fp16.json"))
	require.NoError(t, err)
	ti, _, ok := set.Tensor("a.weight")
	require.True(t, ok)
	assert.Equal(t, tensors.F16, ti.DType)
	ti, _, ok = set.Tensor("steps")
	require.True(t, ok)
	assert.Equal(t, tensors.I64, ti.DType, "integers are copied unchanged")

	// And back: the sharded set as input, one file out.
	stdout.Reset()
	code = Run([]string{"shard", filepath.Join(out, "diffusion_pytorch_model.safetensors.index.fp16.json"), filepath.Join(dir, "one")}, &stdout, &stderr)
	require.Equal(t, ExitOK, code, stderr.String())
	h, err := tensors.ReadHeaderFile(filepath.Join(dir, "one", "diffusion_pytorch_model.safetensors"))
	require.NoError(t, err)
	assert.Len(t, h.Tensors, 4)
}

func TestShardCommandErrors(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "model.safetensors")
	writeModel(t, src)
	broken := filepath.Join(dir, "broken.safetensors")
	require.NoError(t, os.WriteFile(broken, []byte{1, 2, 3}, 0o644))
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{"bad size", []string{"shard", src, dir, "--max-shard-size", "5XB"}, "KiB"},
		{"bad dtype", []string{"shard", src, dir, "--dtype", "f8"}, "use f16, bf16 or f32"},
		{"missing source", []string{"shard", filepath.Join(dir, "nope.safetensors"), dir}, "nope.safetensors"},
		{"broken source", []string{"shard", broken, dir}, "broken.safetensors: file is shorter"},
		{"missing argument", []string{"shard", src}, "usage: modelpub shard"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Run(tt.args, &stdout, &stderr)
			assert.Equal(t, ExitUsage, code)
			assert.Contains(t, stderr.String(), tt.msg)
		})
	}
}
