package xet

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func uploadAll(t *testing.T, u *Uploader, files ...[]byte) ([]FileInfo, error) {
	t.Helper()
	ctx := context.Background()
	for _, f := range files {
		if _, err := u.Add(ctx, bytes.NewReader(f)); err != nil {
			return nil, err
		}
	}
	return u.Finish(ctx)
}

func TestUploaderResumesFromItsCache(t *testing.T) {
	f := newFakeCAS(t)
	cc, _ := newTestClient(f, nil)
	cache, err := OpenShardCache(t.TempDir(), 0, nil)
	require.NoError(t, err)
	a, b := weights("BF16", 3<<20, 1), weights("F32", 2<<20, 2)

	var mu sync.Mutex
	var progress []UploadStats
	u := NewUploader(cc, UploadOptions{Cache: cache, Parallel: 3, XorbSize: 512 << 10, Progress: func(s UploadStats) {
		mu.Lock()
		progress = append(progress, s)
		mu.Unlock()
	}})
	f.fail("/v1/shards", 400) // the first run dies before registering the files
	_, err = uploadAll(t, u, a, b)
	require.ErrorIs(t, err, ErrRefused)
	first := u.Stats()
	assert.Greater(t, first.XorbsSent, 5)
	assert.Equal(t, first.NewBytes, uint64(len(a)+len(b)))
	assert.NotEmpty(t, progress)

	// The rerun finds every chunk in the cache: no xorb goes again.
	u2 := NewUploader(cc, UploadOptions{Cache: cache})
	infos, err := uploadAll(t, u2, a, b)
	require.NoError(t, err)
	st := u2.Stats()
	assert.Equal(t, 0, st.XorbsSent)
	assert.Equal(t, uint64(0), st.NewBytes)
	assert.Equal(t, uint64(len(a)+len(b)), st.DedupedBytes)
	assert.Equal(t, FileHash(Chunks(a)), infos[0].Hash)
	assert.Equal(t, 2, f.count("POST /v1/shards"), "one refused, one accepted")
}

func TestUploaderFailsOnARefusedXorb(t *testing.T) {
	f := newFakeCAS(t)
	cc, _ := newTestClient(f, nil)
	u := NewUploader(cc, UploadOptions{XorbSize: 256 << 10})
	f.fail("/v1/xorbs/", 403)
	_, err := uploadAll(t, u, weights("F16", 2<<20, 3))
	require.ErrorIs(t, err, ErrForbidden)
	assert.Zero(t, f.count("POST /v1/shards"), "no shard after a failed xorb")
}

func TestSplitShards(t *testing.T) {
	const maxSize = 64 << 10
	var xorbs []XorbInfo
	for i := 0; i < 6; i++ {
		xorbs = append(xorbs, XorbInfo{Chunks: make([]Chunk, 300)}) // ~14 KiB of CAS info each
	}
	files := []FileInfo{{Terms: make([]Term, 200)}, {Terms: make([]Term, 300)}} // ~19 and ~28 KiB
	for _, f := range files {
		for i := range f.Terms {
			f.Terms[i].End = 1
		}
	}
	shards := splitShards(files, xorbs, maxSize)
	require.Greater(t, len(shards), 1)
	nf, nx := 0, 0
	for _, s := range shards {
		b, err := (&Shard{Files: s.Files, Xorbs: s.Xorbs}).Marshal(false)
		require.NoError(t, err)
		assert.LessOrEqual(t, len(b), maxSize)
		nf += len(s.Files)
		nx += len(s.Xorbs)
	}
	assert.Equal(t, 2, nf)
	assert.Equal(t, 6, nx)
	assert.Empty(t, splitShards(nil, nil, maxSize))
}
