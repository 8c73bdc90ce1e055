package xet

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/pierrec/lz4/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// weights returns n bytes of normally distributed weights (std 0.02, as
// trained layers are) in dtype F32, F16 or BF16.
func weights(dtype string, n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 99))
	out := make([]byte, 0, n)
	for len(out) < n {
		f := float32(rng.NormFloat64() * 0.02)
		switch dtype {
		case "F32":
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(f))
		case "F16":
			out = binary.LittleEndian.AppendUint16(out, f32toF16(f))
		case "BF16":
			out = binary.LittleEndian.AppendUint16(out, uint16(math.Float32bits(f)>>16))
		}
	}
	return out[:n]
}

func TestBG4(t *testing.T) {
	src := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	// Groups: positions 0 mod 4, 1 mod 4, ...; the tail's 3 bytes go to
	// the first three groups.
	assert.Equal(t, []byte{1, 5, 9, 2, 6, 10, 3, 7, 11, 4, 8}, bg4Split(nil, src))
	for n := 1; n < 20; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i * 7)
		}
		assert.Equal(t, b, bg4Join(nil, bg4Split(nil, b)), "n=%d", n)
	}
}

func TestLZ4FrameIsStandard(t *testing.T) {
	// pierrec/lz4's own writer with the same options opens its frames with
	// the header written here, and its reader decodes ours.
	var b bytes.Buffer
	w := lz4.NewWriter(&b)
	require.NoError(t, w.Apply(lz4.BlockSizeOption(lz4.Block256Kb), lz4.ChecksumOption(false)))
	_, err := w.Write([]byte("abcabcabcabcabcabc"))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	assert.Equal(t, lz4FrameHeader[:], b.Bytes()[:7])

	var z compressor
	src := bytes.Repeat([]byte("xet storage "), 5000)
	frame, ok := z.lz4Frame(nil, src)
	require.True(t, ok)
	got, err := io.ReadAll(lz4.NewReader(bytes.NewReader(frame)))
	require.NoError(t, err)
	assert.Equal(t, src, got)

	_, ok = z.lz4Frame(nil, weights("F32", 4096, 1)[:16])
	assert.False(t, ok, "16 random bytes do not compress")
}

func TestXorbRoundTrip(t *testing.T) {
	data := append(append(weights("F32", 1<<20, 1), bytes.Repeat([]byte("text "), 100000)...), weights("BF16", 1<<20, 2)...)
	chunks := Chunks(data)
	for _, policy := range []Policy{PolicyAuto, PolicyNone, PolicyLZ4, PolicyBG4LZ4, PolicyBest} {
		x := NewXorbWriter(policy)
		off := 0
		for _, c := range chunks {
			require.True(t, x.Add(c, data[off:off+int(c.Size)]))
			off += int(c.Size)
		}
		assert.Equal(t, uint64(len(data)), x.RawSize())
		got, err := ReadXorb(x.Bytes(), x.Hash())
		require.NoError(t, err, "policy %d", policy)
		var back []byte
		for i, c := range got {
			assert.Equal(t, chunks[i], c.Chunk)
			back = append(back, c.Data...)
		}
		assert.Equal(t, data, back)
		s := x.Schemes()
		switch policy {
		case PolicyNone:
			assert.Equal(t, len(chunks), s[CompressionNone])
			assert.Equal(t, len(data)+8*len(chunks), x.Len())
		case PolicyBest, PolicyAuto:
			assert.Less(t, s[CompressionNone], len(chunks), "the text compresses")
			assert.Less(t, x.Len(), len(data))
		}
	}
}

func TestXorbLimits(t *testing.T) {
	x := NewXorbWriter(PolicyNone)
	data := make([]byte, MaxChunkSize)
	c := Chunk{Hash: ChunkHash(data), Size: MaxChunkSize}
	n := 0
	for x.Add(c, data) {
		n++
	}
	assert.Equal(t, MaxXorbSize/(MaxChunkSize+chunkHeaderSize), n)
	assert.LessOrEqual(t, x.Len(), MaxXorbSize)
	assert.False(t, x.Fits(MaxChunkSize))

	x.Reset()
	tiny := []byte{1}
	tc := Chunk{Hash: ChunkHash(tiny), Size: 1}
	for x.Add(tc, tiny) {
	}
	assert.Equal(t, MaxXorbChunks, x.NumChunks())
	assert.False(t, x.Add(Chunk{Size: 2}, tiny), "size must match the data")
}

func TestReadXorbRefuses(t *testing.T) {
	x := NewXorbWriter(PolicyBest)
	data := bytes.Repeat([]byte("compressible "), 10000)
	for _, c := range Chunks(data) {
		require.True(t, x.Add(c, data[:c.Size]))
		data = data[c.Size:]
	}
	good := append([]byte(nil), x.Bytes()...)
	corrupt := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name string
		b    []byte
		want Hash
		err  error
	}{
		{"truncated header", good[:len(good)-len(good)+5], Hash{}, ErrFormat},
		{"truncated body", good[:len(good)-1], Hash{}, ErrFormat},
		{"version", corrupt(func(b []byte) []byte { b[0] = 1; return b }), Hash{}, ErrFormat},
		{"scheme", corrupt(func(b []byte) []byte { b[4] = 9; return b }), Hash{}, ErrFormat},
		{"lz4 magic", corrupt(func(b []byte) []byte { b[8] ^= 0xff; return b }), Hash{}, ErrFormat},
		{"lz4 block size", corrupt(func(b []byte) []byte { b[8+7] ^= 0xff; return b }), Hash{}, ErrFormat},
		{"flipped data byte", corrupt(func(b []byte) []byte { b[len(b)-10] ^= 0xff; return b }), x.Hash(), nil},
		{"wrong hash", good, ChunkHash([]byte("other")), ErrHashMismatch},
		{"raw size zero", corrupt(func(b []byte) []byte { b[5], b[6], b[7] = 0, 0, 0; return b }), Hash{}, ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadXorb(tt.b, tt.want)
			if tt.err == nil {
				// A flipped byte decodes, to other chunk hashes, or fails
				// to decode: either way it is refused.
				require.Error(t, err)
				return
			}
			require.ErrorIs(t, err, tt.err)
		})
	}
	// A footer other writers add is skipped.
	withFooter := append(append([]byte(nil), good...), make([]byte, 48)...)
	withFooter = binary.LittleEndian.AppendUint32(withFooter, 48)
	got, err := ReadXorb(withFooter, x.Hash())
	require.NoError(t, err)
	assert.Len(t, got, x.NumChunks())
}

// BenchmarkCompression measures each policy's ratio (stored/raw) and speed
// on weights of each dtype and on the real safetensors files in testdata.
func BenchmarkCompression(b *testing.B) {
	inputs := map[string][]byte{
		"F32":  weights("F32", 8<<20, 1),
		"F16":  weights("F16", 8<<20, 2),
		"BF16": weights("BF16", 8<<20, 3),
	}
	for _, name := range []string{"lora_disney_inpainting.safetensors", "pytorch_lora_weights.safetensors"} {
		data, err := os.ReadFile(filepath.Join("testdata", "real", name))
		if err != nil {
			b.Fatal(err)
		}
		inputs[name[:8]] = data
	}
	policies := []struct {
		name string
		p    Policy
	}{{"none", PolicyNone}, {"lz4", PolicyLZ4}, {"bg4", PolicyBG4LZ4}, {"best", PolicyBest}, {"auto", PolicyAuto}}
	for _, in := range []string{"F32", "F16", "BF16", "lora_dis", "pytorch_"} {
		data := inputs[in]
		chunks := Chunks(data)
		for _, p := range policies {
			b.Run(in+"/"+p.name, func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				x := NewXorbWriter(p.p)
				for b.Loop() {
					x.Reset()
					off := 0
					for _, c := range chunks {
						if !x.Add(c, data[off:off+int(c.Size)]) {
							b.Fatal("xorb full")
						}
						off += int(c.Size)
					}
				}
				b.ReportMetric(float64(x.Len())/float64(len(data)), "stored/raw")
			})
		}
	}
}

func TestReadXorbIndexKeepsNoData(t *testing.T) {
	x := NewXorbWriter(PolicyBest)
	zero := make([]byte, MaxChunkSize)
	c := Chunk{Hash: ChunkHash(zero), Size: MaxChunkSize}
	for range 200 {
		require.True(t, x.Add(c, zero))
	}
	assert.Less(t, x.Len(), 200*1024, "zeros compress: 25 MiB of chunks in a small xorb")
	idx, err := ReadXorbIndex(x.Bytes(), x.Hash())
	require.NoError(t, err)
	require.Len(t, idx, 200)
	for _, ic := range idx {
		assert.Nil(t, ic.Data)
		assert.Equal(t, c, ic.Chunk)
	}
	_, err = ReadXorbIndex(x.Bytes(), ChunkHash([]byte("other")))
	require.ErrorIs(t, err, ErrHashMismatch)
}
