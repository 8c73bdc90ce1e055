package xet

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// packFiles packs files and returns the emitted xorbs by hash, the file
// infos in order, and the packer.
func packFiles(t *testing.T, p *Packer, files ...[]byte) (map[Hash][]byte, []FileInfo) {
	t.Helper()
	xorbs := map[Hash][]byte{}
	p.emit = func(x SealedXorb) error {
		require.LessOrEqual(t, len(x.Bytes), MaxXorbSize)
		xorbs[x.Info.Hash] = append([]byte(nil), x.Bytes...)
		return nil
	}
	var packed []*PackedFile
	for _, f := range files {
		pf, err := p.AddFile(bytes.NewReader(f))
		require.NoError(t, err)
		packed = append(packed, pf)
	}
	require.NoError(t, p.Flush())
	var infos []FileInfo
	for _, pf := range packed {
		info, err := pf.Info()
		require.NoError(t, err)
		infos = append(infos, info)
	}
	return xorbs, infos
}

// reconstruct rebuilds a file from its terms, checking each term's size
// and verification hash against the xorb's chunks, as a CAS does.
func reconstruct(t *testing.T, xorbs map[Hash][]XorbChunk, f FileInfo) []byte {
	t.Helper()
	var out []byte
	for _, term := range f.Terms {
		cs, ok := xorbs[term.Xorb]
		require.True(t, ok, "xorb %s", term.Xorb)
		require.LessOrEqual(t, int(term.End), len(cs))
		var hs []Hash
		var size uint32
		for _, c := range cs[term.Start:term.End] {
			out = append(out, c.Data...)
			hs = append(hs, c.Hash)
			size += c.Size
		}
		assert.Equal(t, term.Size, size)
		assert.Equal(t, VerificationHash(hs), term.Verification)
	}
	return out
}

func TestPackerShardRoundTrip(t *testing.T) {
	a := weights("BF16", 5<<20, 1)
	b := append(append([]byte(nil), a[:3<<20]...), weights("F32", 1<<20, 2)...) // shares a's first 3 MiB
	small := []byte("a small file\n")
	p := NewPacker(PolicyAuto, nil)
	xorbs, infos := packFiles(t, p, a, b, small, nil, a)

	decoded := map[Hash][]XorbChunk{}
	for h, x := range xorbs {
		cs, err := ReadXorb(x, h)
		require.NoError(t, err)
		decoded[h] = cs
	}
	for i, f := range [][]byte{a, b, small, nil, a} {
		assert.Equal(t, sha256.Sum256(f), infos[i].SHA256, "file %d", i)
		assert.Equal(t, FileHash(Chunks(f)), infos[i].Hash, "file %d", i)
		assert.Equal(t, f, reconstruct(t, decoded, infos[i]), "file %d", i)
		assert.Equal(t, uint64(len(f)), infos[i].Size())
	}
	assert.Equal(t, infos[0], infos[4], "the same file twice")
	st := p.Stats()
	assert.Equal(t, uint64(2*len(a)+len(b)+len(small)), st.Bytes)
	assert.Less(t, st.NewBytes, uint64(len(a)+len(b)-(3<<20)+len(small)+2*MaxChunkSize),
		"b's shared prefix and a's second copy are not packed again")
	assert.Equal(t, st.Bytes, st.NewBytes+st.DedupedBytes)

	// The shard: upload form (no footer) and with a footer.
	var xinfos []XorbInfo
	for h, cs := range decoded {
		xi := XorbInfo{Hash: h, StoredSize: uint32(len(xorbs[h]))}
		for _, c := range cs {
			xi.Chunks = append(xi.Chunks, c.Chunk)
		}
		xinfos = append(xinfos, xi)
	}
	s := &Shard{Files: infos, Xorbs: xinfos}
	for _, footer := range []bool{false, true} {
		raw, err := s.Marshal(footer)
		require.NoError(t, err)
		assert.Equal(t, shardMagic[:], raw[:32])
		got, err := ParseShard(raw)
		require.NoError(t, err)
		assert.Equal(t, s.Files, got.Files)
		assert.Equal(t, s.Xorbs, got.Xorbs)
		if !footer {
			assert.Equal(t, uint64(0), binary.LittleEndian.Uint64(raw[40:48]), "footer_size 0")
		}
	}
}

func TestPackerLookupReferencesTheCAS(t *testing.T) {
	base := weights("F16", 3<<20, 4)
	p1 := NewPacker(PolicyNone, nil)
	xorbs, infos := packFiles(t, p1, base)
	require.Len(t, xorbs, 1)
	var known Hash
	for h := range xorbs {
		known = h
	}
	cs, err := ReadXorb(xorbs[known], known)
	require.NoError(t, err)
	index := map[Hash]uint32{}
	for i, c := range cs {
		index[c.Hash] = uint32(i)
	}

	// A second session knows the first xorb's chunks: only the edit is new.
	edited := append(append(append([]byte(nil), base[:1<<20]...), []byte("an edit")...), base[1<<20:]...)
	p2 := NewPacker(PolicyNone, nil)
	p2.Lookup = func(h Hash) (Located, bool) {
		i, ok := index[h]
		return Located{Xorb: known, Index: i}, ok
	}
	newXorbs, newInfos := packFiles(t, p2, edited)
	assert.Less(t, p2.Stats().NewBytes, uint64(3*MaxChunkSize))
	all := map[Hash][]XorbChunk{known: cs}
	for h, x := range newXorbs {
		d, err := ReadXorb(x, h)
		require.NoError(t, err)
		all[h] = d
	}
	assert.Equal(t, edited, reconstruct(t, all, newInfos[0]))
	assert.Equal(t, known, newInfos[0].Terms[0].Xorb)
	_ = infos
}

func TestPackerErrors(t *testing.T) {
	boom := errors.New("network down")
	p := NewPacker(PolicyNone, func(SealedXorb) error { return boom })
	pf, err := p.AddFile(bytes.NewReader(make([]byte, 1<<20)))
	require.NoError(t, err)
	_, err = pf.Info()
	require.Error(t, err, "not sealed yet")
	require.ErrorIs(t, p.Flush(), boom)
}

func TestParseShardRefuses(t *testing.T) {
	data := weights("F32", 300<<10, 9)
	p := NewPacker(PolicyNone, nil)
	xorbs, infos := packFiles(t, p, data)
	var xi []XorbInfo
	for h, x := range xorbs {
		cs, err := ReadXorb(x, h)
		require.NoError(t, err)
		info := XorbInfo{Hash: h, StoredSize: uint32(len(x))}
		for _, c := range cs {
			info.Chunks = append(info.Chunks, c.Chunk)
		}
		xi = append(xi, info)
	}
	good, err := (&Shard{Files: infos, Xorbs: xi}).Marshal(true)
	require.NoError(t, err)
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	le := binary.LittleEndian
	fileHdr := shardHeaderSize
	for _, tt := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"magic", mod(func(b []byte) []byte { b[0] = 'X'; return b })},
		{"header version", mod(func(b []byte) []byte { le.PutUint64(b[32:], 3); return b })},
		{"footer size", mod(func(b []byte) []byte { le.PutUint64(b[40:], 7); return b })},
		{"huge term count", mod(func(b []byte) []byte { le.PutUint32(b[fileHdr+36:], 1<<31); return b })},
		{"empty term range", mod(func(b []byte) []byte {
			le.PutUint32(b[fileHdr+48+44:], le.Uint32(b[fileHdr+48+40:]))
			return b
		})},
		{"truncated", good[:len(good)-201]},
		{"footer version", mod(func(b []byte) []byte { le.PutUint64(b[len(b)-200:], 2); return b })},
		{"footer offset", mod(func(b []byte) []byte { le.PutUint64(b[len(b)-8:], 5); return b })},
		{"trailing bytes", append(append([]byte(nil), good...), 0)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseShard(tt.b)
			require.ErrorIs(t, err, ErrFormat)
		})
	}
	_, err = (&Shard{Files: []FileInfo{{Hash: ChunkHash([]byte("x"))}}}).Marshal(false)
	require.ErrorIs(t, err, ErrFormat, "a non-empty file needs terms")
}

// The metadata extension holds the sha256 as a Xet hash, as xet-core's
// Sha256Generator makes it (MerkleHash::from_hex of the hex digest, its
// test vector "some data") and @huggingface/hub writes it: read as a Hash,
// the field prints as the digest's hex; ParseShard gives the digest back.
func TestShardSHA256IsAXetHash(t *testing.T) {
	const want = "1307990e6ba5ca145eb35e99182a9bec46531bc54ddf656a602c780fa0240dee"
	sum := sha256.Sum256([]byte("some data"))
	require.Equal(t, want, hex.EncodeToString(sum[:]))
	chunks := Chunks([]byte("some data"))
	f := FileInfo{Hash: FileHash(chunks), SHA256: sum,
		Terms: []Term{{Xorb: XorbHash(chunks), Start: 0, End: 1, Size: 9, Verification: VerificationHash([]Hash{chunks[0].Hash})}}}
	b, err := (&Shard{Files: []FileInfo{f}}).Marshal(false)
	require.NoError(t, err)
	// header, file header, one term, one verification entry, then the extension
	ext := shardHeaderSize + 3*shardEntrySize
	assert.Equal(t, want, Hash(b[ext:ext+32]).String())
	assert.NotEqual(t, sum[:], b[ext:ext+32], "not the digest's raw bytes")
	s, err := ParseShard(b)
	require.NoError(t, err)
	assert.Equal(t, sum, s.Files[0].SHA256)
}
