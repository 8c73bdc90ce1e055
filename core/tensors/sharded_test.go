package tensors

import (
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// f32Tensor is an F32 tensor of n values i*scale, in memory.
func f32Tensor(name string, n int, scale float32) WriteTensor {
	b := make([]byte, 4*n)
	for i := range n {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(i)*scale))
	}
	return WriteTensor{Name: name, DType: F32, Shape: []int64{int64(n)}, Data: Bytes(b)}
}

func TestWriteShardedSplitsLikeHuggingfaceHub(t *testing.T) {
	dir := t.TempDir()
	// Sizes 40, 400 (over the limit), 40, 40, 24: the big one gets its own
	// shard first, then [a, c] (80 fits in 100), then [d, e] (40+40+24 > 100).
	ws := []WriteTensor{
		f32Tensor("a", 10, 1), f32Tensor("big", 100, 2), f32Tensor("c", 10, 3), f32Tensor("d", 10, 4), f32Tensor("e", 6, 5),
	}
	var last, calls int64
	res, err := WriteSharded(context.Background(), dir, ws, ShardedOptions{
		MaxShardSize: 100, Base: "diffusion_pytorch_model",
		Progress: func(done, total int64) {
			calls++
			assert.GreaterOrEqual(t, done, last)
			last = done
		},
	})
	require.NoError(t, err)
	assert.Equal(t, []string{
		"diffusion_pytorch_model-00001-of-00003.safetensors",
		"diffusion_pytorch_model-00002-of-00003.safetensors",
		"diffusion_pytorch_model-00003-of-00003.safetensors",
	}, res.Files)
	assert.Equal(t, "diffusion_pytorch_model.safetensors.index.json", res.IndexFile)
	assert.Equal(t, int64(5), calls)

	index, err := os.ReadFile(filepath.Join(dir, res.IndexFile))
	require.NoError(t, err)
	assert.Equal(t, `{
  "metadata": {
    "total_parameters": 136,
    "total_size": 544
  },
  "weight_map": {
    "a": "diffusion_pytorch_model-00002-of-00003.safetensors",
    "big": "diffusion_pytorch_model-00001-of-00003.safetensors",
    "c": "diffusion_pytorch_model-00002-of-00003.safetensors",
    "d": "diffusion_pytorch_model-00003-of-00003.safetensors",
    "e": "diffusion_pytorch_model-00003-of-00003.safetensors"
  }
}
`, string(index))

	set, err := OpenShardedSet(filepath.Join(dir, res.IndexFile))
	require.NoError(t, err)
	var size int64
	for _, f := range res.Files {
		st, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err)
		size += st.Size()
		v, _ := set.Shards[f].Metadata.Get("format")
		assert.Equal(t, "pt", v)
	}
	assert.Equal(t, res.Bytes, size+int64(len(index)))
	assert.Equal(t, last, size, "progress ends at the size of the shards")
	for _, w := range ws {
		ti, shard, ok := set.Tensor(w.Name)
		require.True(t, ok, w.Name)
		f, err := Open(filepath.Join(dir, shard))
		require.NoError(t, err)
		got := make([]byte, ti.Size())
		_, err = f.ReadAt(got, f.Header.DataStart+ti.Begin)
		require.NoError(t, err)
		f.Close()
		assert.Equal(t, []byte(w.Data.(bytesSource)), got, w.Name)
	}
}

func TestWriteShardedSingleFileAndVariant(t *testing.T) {
	tests := []struct {
		name    string
		variant string
		max     int64
		files   []string
		index   string
	}{
		{"one shard keeps the plain name", "", 0, []string{"model.safetensors"}, ""},
		{"one variant shard", "fp16", 0, []string{"model.fp16.safetensors"}, ""},
		{"variant shards", "fp16", 40, []string{"model.fp16-00001-of-00002.safetensors", "model.fp16-00002-of-00002.safetensors"},
			"model.safetensors.index.fp16.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			res, err := WriteSharded(context.Background(), dir, []WriteTensor{f32Tensor("x", 10, 1), f32Tensor("y", 10, 1)},
				ShardedOptions{MaxShardSize: tt.max, Base: "model", Variant: tt.variant})
			require.NoError(t, err)
			assert.Equal(t, tt.files, res.Files)
			assert.Equal(t, tt.index, res.IndexFile)
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			want := append([]string(nil), tt.files...)
			if tt.index != "" {
				want = append(want, tt.index)
			}
			assert.ElementsMatch(t, want, names, "nothing else is written")
		})
	}
}

func TestOpenShardedSetErrors(t *testing.T) {
	// A good two-shard set to break in different ways.
	build := func(t *testing.T) string {
		dir := t.TempDir()
		_, err := WriteSharded(context.Background(), dir, []WriteTensor{f32Tensor("x", 10, 1), f32Tensor("y", 10, 1)},
			ShardedOptions{MaxShardSize: 40, Base: "model"})
		require.NoError(t, err)
		return dir
	}
	const s1, s2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
	writeIndex := func(t *testing.T, dir, body string) string {
		p := filepath.Join(dir, "model.safetensors.index.json")
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
		return p
	}
	tests := []struct {
		name   string
		break_ func(t *testing.T, dir string) string
		want   error
		msg    string
	}{
		{"path traversal", func(t *testing.T, dir string) string {
			return writeIndex(t, dir, `{"metadata":{"total_size":80},"weight_map":{"x":"../`+s1+`","y":"`+s2+`"}}`)
		}, ErrUnsafeShardName, "../"},
		{"absolute path", func(t *testing.T, dir string) string {
			return writeIndex(t, dir, `{"metadata":{"total_size":80},"weight_map":{"x":"/etc/passwd","y":"`+s2+`"}}`)
		}, ErrUnsafeShardName, "/etc/passwd"},
		{"missing shard", func(t *testing.T, dir string) string {
			require.NoError(t, os.Remove(filepath.Join(dir, s2)))
			return filepath.Join(dir, "model.safetensors.index.json")
		}, ErrMissingShard, s2},
		{"tensor mapped to the wrong shard", func(t *testing.T, dir string) string {
			return writeIndex(t, dir, `{"metadata":{"total_size":80},"weight_map":{"x":"`+s1+`","y":"`+s1+`","z":"`+s2+`"}}`)
		}, ErrTensorNotInShard, `tensor "y"`},
		{"shard tensor missing from the index", func(t *testing.T, dir string) string {
			_, err := WriteFile(context.Background(), filepath.Join(dir, s2), []WriteTensor{f32Tensor("y", 10, 1), f32Tensor("w", 1, 1)}, nil, WriteOptions{})
			require.NoError(t, err)
			return filepath.Join(dir, "model.safetensors.index.json")
		}, ErrUnmappedTensor, `tensor "w"`},
		{"mapped tensor not in its shard", func(t *testing.T, dir string) string {
			return writeIndex(t, dir, `{"metadata":{"total_size":80},"weight_map":{"x":"`+s1+`","y":"`+s2+`","ghost":"`+s2+`"}}`)
		}, ErrTensorNotInShard, `tensor "ghost"`},
		{"tensor in two shards", func(t *testing.T, dir string) string {
			_, err := WriteFile(context.Background(), filepath.Join(dir, s2), []WriteTensor{f32Tensor("x", 10, 1), f32Tensor("y", 10, 1)}, nil, WriteOptions{})
			require.NoError(t, err)
			return filepath.Join(dir, "model.safetensors.index.json")
		}, ErrTensorInTwoShards, `tensor "x"`},
		{"broken shard", func(t *testing.T, dir string) string {
			require.NoError(t, os.Truncate(filepath.Join(dir, s2), 100))
			return filepath.Join(dir, "model.safetensors.index.json")
		}, ErrTruncated, s2},
		{"malformed index", func(t *testing.T, dir string) string {
			return writeIndex(t, dir, `{"weight_map": [`)
		}, ErrIndexInvalid, "model.safetensors.index.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.break_(t, build(t))
			_, err := OpenShardedSet(p)
			require.ErrorIs(t, err, tt.want)
			assert.Contains(t, err.Error(), tt.msg)
			// ReadShardedSet refuses it with the same error.
			err2 := ReadShardedSet(p, func(string, *Header) {})
			require.Error(t, err2)
			assert.Equal(t, err.Error(), err2.Error())
			assert.ErrorIs(t, err2, tt.want)
		})
	}
}
