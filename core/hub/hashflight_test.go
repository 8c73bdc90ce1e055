package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Two HashFile calls of the same file through one cache, the second made
// while the first reads: the file is read once and both get its sha256.
// When the first is cancelled, the one waiting for it hashes the file
// itself.
func TestHashFileSharesAHashInProgress(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	data := make([]byte, 11<<20) // above the small-file limit: sha256 only
	for i := range data {
		data[i] = byte(i * 7)
	}
	require.NoError(t, os.WriteFile(path, data, 0o644))
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])

	cases := []struct {
		name         string
		cancelLeader bool
		wantReads    int32
	}{
		{"shared", false, 1},
		{"the first gives up", true, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hc, err := OpenHashCache(filepath.Join(t.TempDir(), "hashes.json"))
			require.NoError(t, err)
			var reads atomic.Int32
			reading := make(chan struct{}, 2)
			release := make(chan struct{})
			hashReadHook = func(string) {
				if reads.Add(1) == 1 {
					reading <- struct{}{}
					<-release
				}
			}
			t.Cleanup(func() { hashReadHook = nil })

			leaderCtx, cancelLeader := context.WithCancel(context.Background())
			defer cancelLeader()
			if tc.cancelLeader {
				cancelLeader() // the leader stops at its first buffer
			}
			var wg sync.WaitGroup
			var leaderErr error
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, leaderErr = HashFile(leaderCtx, hc, path, true, nil)
			}()
			<-reading
			var got Hashes
			var followerErr error
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, followerErr = HashFile(context.Background(), hc, path, true, nil)
			}()
			time.Sleep(100 * time.Millisecond) // the second call reaches the cache and waits
			close(release)
			wg.Wait()

			require.NoError(t, followerErr)
			assert.Equal(t, want, got.SHA256)
			assert.Equal(t, tc.wantReads, reads.Load())
			if tc.cancelLeader {
				assert.ErrorIs(t, leaderErr, context.Canceled)
			} else {
				assert.NoError(t, leaderErr)
			}
			h, err := HashFile(context.Background(), hc, path, true, nil)
			require.NoError(t, err)
			assert.Equal(t, want, h.SHA256)
			assert.Equal(t, tc.wantReads, reads.Load(), "then the cache answers")
		})
	}
}
