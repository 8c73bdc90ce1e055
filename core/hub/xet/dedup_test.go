package xet

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDedupEligible(t *testing.T) {
	var h Hash
	binary.LittleEndian.PutUint64(h[24:], 4096)
	assert.True(t, DedupEligible(h, false))
	binary.LittleEndian.PutUint64(h[24:], 4097)
	assert.False(t, DedupEligible(h, false))
	assert.True(t, DedupEligible(h, true), "the first chunk of a file always")
}

// cacheShard is a shard describing one xorb of n chunks named by seed.
func cacheShard(t *testing.T, seed byte, n int, key Hash, expiry uint64) ([]byte, []Chunk, Hash) {
	t.Helper()
	var cs []Chunk
	for i := 0; i < n; i++ {
		cs = append(cs, Chunk{Hash: ChunkHash([]byte{seed, byte(i)}), Size: 1000})
	}
	x := XorbInfo{Hash: XorbHash(cs), StoredSize: 1000 * uint32(n)}
	for _, c := range cs {
		kc := c
		if !key.IsZero() {
			kc.Hash = HMAC(c.Hash, key)
		}
		x.Chunks = append(x.Chunks, kc)
	}
	b, err := (&Shard{Xorbs: []XorbInfo{x}, HMACKey: key, KeyExpiry: expiry}).Marshal(!key.IsZero())
	require.NoError(t, err)
	return b, cs, x.Hash
}

func TestShardCache(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	c, err := OpenShardCache(dir, 0, clock)
	require.NoError(t, err)

	plain, pcs, px := cacheShard(t, 1, 5, Hash{}, 0)
	key := ChunkHash([]byte("server key"))
	keyed, kcs, kx := cacheShard(t, 2, 5, key, uint64(now.Add(time.Hour).Unix()))
	require.NoError(t, c.Add(plain))
	require.NoError(t, c.Add(keyed))
	require.NoError(t, c.Add(plain), "adding twice is harmless")

	loc, ok := c.Lookup(pcs[3].Hash)
	require.True(t, ok)
	assert.Equal(t, Located{Xorb: px, Index: 3}, loc)
	loc, ok = c.Lookup(kcs[4].Hash)
	require.True(t, ok, "a keyed shard is searched with the chunk hash keyed")
	assert.Equal(t, Located{Xorb: kx, Index: 4}, loc)
	_, ok = c.Lookup(ChunkHash([]byte("unknown")))
	assert.False(t, ok)

	// Reopened: the same answers.
	c2, err := OpenShardCache(dir, 0, clock)
	require.NoError(t, err)
	_, ok = c2.Lookup(pcs[0].Hash)
	assert.True(t, ok)
	_, ok = c2.Lookup(kcs[0].Hash)
	assert.True(t, ok)

	// Past the key's expiry the keyed shard is not used, and a reopen
	// removes it.
	now = now.Add(2 * time.Hour)
	_, ok = c2.Lookup(kcs[0].Hash)
	assert.False(t, ok)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "junk.shard"), []byte("not a shard"), 0o600))
	c3, err := OpenShardCache(dir, 0, clock)
	require.NoError(t, err)
	ents, _ := os.ReadDir(dir)
	assert.Len(t, ents, 1, "the expired and the unreadable shard are gone")
	assert.Equal(t, int64(len(plain)), c3.Size())
}

func TestShardCacheBudget(t *testing.T) {
	dir := t.TempDir()
	one, cs1, _ := cacheShard(t, 1, 20, Hash{}, 0)
	c, err := OpenShardCache(dir, int64(2*len(one)+10), nil)
	require.NoError(t, err)
	require.NoError(t, c.Add(one))
	two, cs2, _ := cacheShard(t, 2, 20, Hash{}, 0)
	require.NoError(t, c.Add(two))
	three, cs3, _ := cacheShard(t, 3, 20, Hash{}, 0)
	require.NoError(t, c.Add(three))
	assert.LessOrEqual(t, c.Size(), int64(2*len(one)+10))
	_, ok := c.Lookup(cs1[0].Hash)
	assert.False(t, ok, "the oldest shard went")
	for _, h := range []Hash{cs2[5].Hash, cs3[5].Hash} {
		_, ok := c.Lookup(h)
		assert.True(t, ok)
	}
	ents, _ := os.ReadDir(dir)
	assert.Len(t, ents, 2)
}

func TestShardCacheFeedsThePacker(t *testing.T) {
	base := weights("F32", 2<<20, 11)
	p1 := NewPacker(PolicyNone, nil)
	xorbs, infos := packFiles(t, p1, base)
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
	shard, err := (&Shard{Files: infos, Xorbs: xi}).Marshal(false)
	require.NoError(t, err)
	c, err := OpenShardCache(t.TempDir(), 0, nil)
	require.NoError(t, err)
	require.NoError(t, c.Add(shard))

	p2 := NewPacker(PolicyNone, nil)
	p2.Lookup = c.Lookup
	_, again := packFiles(t, p2, base)
	assert.Equal(t, uint64(0), p2.Stats().NewBytes, "everything is known")
	assert.Equal(t, infos, again, "the same reconstruction")
}

func TestDefaultShardCacheDir(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	d, err := DefaultShardCacheDir()
	require.NoError(t, err)
	assert.Equal(t, filepath.Join("modelpub", "xet-shards"), filepath.Join(filepath.Base(filepath.Dir(d)), filepath.Base(d)))
	c, err := OpenShardCache("", 0, nil)
	require.NoError(t, err)
	assert.Equal(t, int64(0), c.Size())
	assert.DirExists(t, d)
}

func TestShardCacheClear(t *testing.T) {
	dir := t.TempDir()
	c, err := OpenShardCache(dir, 0, nil)
	require.NoError(t, err)
	chunks := Chunks(weights("F16", 256<<10, 5))
	b, err := (&Shard{Xorbs: []XorbInfo{{Hash: XorbHash(chunks), Chunks: chunks, StoredSize: 1}}}).Marshal(false)
	require.NoError(t, err)
	require.NoError(t, c.Add(b))
	_, ok := c.Lookup(chunks[0].Hash)
	require.True(t, ok)
	require.NoError(t, c.Clear())
	_, ok = c.Lookup(chunks[0].Hash)
	assert.False(t, ok)
	assert.Zero(t, c.Size())
	again, err := OpenShardCache(dir, 0, nil)
	require.NoError(t, err)
	_, ok = again.Lookup(chunks[0].Hash)
	assert.False(t, ok, "nothing left on disk")
}
