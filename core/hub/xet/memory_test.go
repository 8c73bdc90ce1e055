package xet

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/internal/costtest"
)

// pseudoRandom streams n bytes of cheap pseudo-random data (it chunks like
// weights do), never holding more than the caller's buffer.
type pseudoRandom struct {
	n, off int64
	x      uint64
}

func (r *pseudoRandom) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n-r.off)]
	for i := range p {
		r.x ^= r.x << 13
		r.x ^= r.x >> 7
		r.x ^= r.x << 17
		p[i] = byte(r.x)
	}
	r.off += int64(len(p))
	return len(p), nil
}

// TestUploadMemoryIsBounded uploads 1 GiB (MODELPUB_XET_MEMORY_GIB to
// change it; 4 is the target model size) in a process of its own,
// as core/hub does (Parallel 2, a shard cache, global deduplication asked),
// to a CAS that discards what it gets: peak RSS stays near the xorb
// buffers ((Parallel+1) × XorbSize) whatever the size: ≤ 200 MB with the
// default 32 MiB xorbs.
func TestUploadMemoryIsBounded(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("uploads a GiB twice; peak RSS means nothing under the race detector")
	}
	gib := 1
	if s := os.Getenv("MODELPUB_XET_MEMORY_GIB"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err)
		gib = n
	}
	if costtest.ChildInput() == "" {
		for _, c := range []struct {
			xorbMiB string
			limit   int64
		}{{"0", 200_000_000}, {"16", 120 << 20}} {
			peak := costtest.ChildPeakRSS(t, c.xorbMiB)
			t.Logf("%d GiB, xorbs of %s MiB (0: DefaultXorbSize), 2 in flight: peak RSS %d MiB", gib, c.xorbMiB, peak>>20)
			assert.Less(t, peak, c.limit, "peak RSS of a %d GiB upload with %s MiB xorbs", gib, c.xorbMiB)
		}
		return
	}
	xorbMiB, err := strconv.Atoi(costtest.ChildInput())
	require.NoError(t, err)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.Contains(r.URL.Path, "xet-write-token"):
			_ = json.NewEncoder(w).Encode(map[string]any{"accessToken": "xet_t", "casUrl": "http://" + r.Host, "exp": time.Now().Add(time.Hour).Unix()})
		case strings.HasPrefix(r.URL.Path, "/v1/chunks/"):
			http.NotFound(w, r)
		default:
			_, _ = io.Copy(io.Discard, r.Body)
			_, _ = w.Write([]byte(`{"was_inserted": true}`))
		}
	}))
	defer srv.Close()
	ts := NewTokenSource(func(ctx context.Context) (Token, error) {
		return FetchToken(ctx, srv.Client(), Retry{}, WriteTokenURL(srv.URL, "model", "a/b", "main"), "hf_x")
	}, nil)
	cache, err := OpenShardCache(t.TempDir(), 16<<20, nil)
	require.NoError(t, err)
	u := NewUploader(NewCASClient(ts, CASOptions{HTTPClient: srv.Client()}),
		UploadOptions{XorbSize: xorbMiB << 20, Parallel: 2, Cache: cache, GlobalDedup: true})
	ctx := context.Background()
	const files = 4
	per := int64(gib) << 30 / files
	for i := range files {
		_, err := u.Add(ctx, &pseudoRandom{n: per, x: uint64(i) + 88172645463325252})
		require.NoError(t, err)
	}
	_, err = u.Finish(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(per*files), u.Stats().Bytes)
	costtest.ReportPeakRSS(t)
}
