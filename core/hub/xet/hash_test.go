package xet

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHashString(t *testing.T) {
	// The example of docs/xet/api.md, "Converting Hashes to Strings"; the
	// spec prints it with the byte 0x10 missing (62 digits).
	var h Hash
	for i := range h {
		h[i] = byte(i)
	}
	const want = "07060504030201000f0e0d0c0b0a090817161514131211101f1e1d1c1b1a1918"
	assert.Equal(t, want, h.String())
	back, err := ParseHash(want)
	require.NoError(t, err)
	assert.Equal(t, h, back)
}

func TestParseHashRefuses(t *testing.T) {
	for _, s := range []string{
		"",
		"07060504030201000f0e0d0c0b0a0908171615141312111f1e1d1c1b1a19",    // short
		"07060504030201000F0E0D0C0B0A0908171615141312111F1E1D1C1B1A1918",  // upper case
		"+706050403020100f0e0d0c0b0a0908171615141312111f1e1d1c1b1a191811", // sign
		"zz060504030201000f0e0d0c0b0a0908171615141312111f1e1d1c1b1a1918",  // not hex
	} {
		_, err := ParseHash(s)
		assert.Error(t, err, "%q", s)
	}
}

// The internal-node text of docs/xet/hashing.md's example: the spec writes
// each line as "{hash} : {size}\n" with the hash as String writes it.
func TestMergeNodeText(t *testing.T) {
	lines := []struct {
		hex  string
		size uint64
	}{
		{"1f6a2b8e9d3c4075a2e8c5fd4f0b763e6f3c1d7a9b2e6487de3f91ab7c6d5401", 10000},
		{"7c94fe2a38bdcf9b4d2a6f7e1e08ac35bc24a7903d6f5a0e7d1c2b93e5f748de", 20000},
		{"cfd18a92e0743bb09e56dbf76ea2c34d99b5a0cf271f8d429b6cd148203df061", 25000},
		{"e38d7c09a21b4cf8d0f92b3a85e6df19f7c20435e0b1c78a9d635f7b8c2e4da1", 64000},
	}
	var nodes []node
	for _, l := range lines {
		h, err := ParseHash(l.hex)
		require.NoError(t, err)
		nodes = append(nodes, node{hash: h, size: l.size})
	}
	n, text := mergeNode(keyedHasher(&internalNodeKey), nil, nodes)
	assert.Equal(t, "1f6a2b8e9d3c4075a2e8c5fd4f0b763e6f3c1d7a9b2e6487de3f91ab7c6d5401 : 10000\n"+
		"7c94fe2a38bdcf9b4d2a6f7e1e08ac35bc24a7903d6f5a0e7d1c2b93e5f748de : 20000\n"+
		"cfd18a92e0743bb09e56dbf76ea2c34d99b5a0cf271f8d429b6cd148203df061 : 25000\n"+
		"e38d7c09a21b4cf8d0f92b3a85e6df19f7c20435e0b1c78a9d635f7b8c2e4da1 : 64000\n", string(text))
	assert.Equal(t, uint64(119000), n.size)
}

func TestMerkleShape(t *testing.T) {
	chunk := func(b byte, mod4 byte) Chunk {
		var h Hash
		h[0] = b
		h[24] = mod4 // the byte nextCut reads the remainder from
		return Chunk{Hash: h, Size: 1000}
	}
	t.Run("empty is zero", func(t *testing.T) {
		assert.True(t, XorbHash(nil).IsZero())
		assert.True(t, FileHash(nil).IsZero())
	})
	t.Run("one chunk is its own root", func(t *testing.T) {
		c := chunk(1, 1)
		assert.Equal(t, c.Hash, XorbHash([]Chunk{c}))
		assert.NotEqual(t, c.Hash, FileHash([]Chunk{c}), "the file hash re-hashes the root")
	})
	t.Run("cuts", func(t *testing.T) {
		level := func(mods ...byte) []node {
			var out []node
			for i, m := range mods {
				c := chunk(byte(i), m)
				out = append(out, node{hash: c.Hash, size: 1})
			}
			return out
		}
		assert.Equal(t, 2, nextCut(level(0, 0)), "two or fewer: all")
		assert.Equal(t, 3, nextCut(level(1, 1, 0, 1)), "the first multiple of 4 from the third entry")
		assert.Equal(t, 3, nextCut(level(0, 0, 4, 0)), "entries before the third never cut")
		assert.Equal(t, 9, nextCut(level(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)), "at most 9 children")
		assert.Equal(t, 5, nextCut(level(1, 1, 1, 1, 1)), "the rest when no cut")
	})
}

func TestVerificationAndHMAC(t *testing.T) {
	a, b := ChunkHash([]byte("a")), ChunkHash([]byte("b"))
	assert.NotEqual(t, VerificationHash([]Hash{a, b}), VerificationHash([]Hash{b, a}), "order matters")
	assert.NotEqual(t, HMAC(a, b), HMAC(a, a))
	assert.Equal(t, HMAC(a, b), HMAC(a, b))
	assert.NotEqual(t, a, ChunkHash([]byte("a\x00")))
}
