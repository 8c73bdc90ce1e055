package xet

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
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

// TestUploadMemoryIsBounded uploads 768 MiB in a process of its own, to a
// CAS that discards what it gets: peak RSS stays near the xorb buffers
// ((Parallel+1) × XorbSize) whatever the size.
func TestUploadMemoryIsBounded(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("uploads 768 MiB twice; peak RSS means nothing under the race detector")
	}
	if costtest.ChildInput() == "" {
		for _, c := range []struct {
			xorbMiB string
			limit   int64
		}{{"64", 300 << 20}, {"16", 120 << 20}} {
			peak := costtest.ChildPeakRSS(t, c.xorbMiB)
			t.Logf("xorbs of %s MiB, 2 in flight: peak RSS %d MiB", c.xorbMiB, peak>>20)
			assert.Less(t, peak, c.limit, "peak RSS of a 768 MiB upload with %s MiB xorbs", c.xorbMiB)
		}
		return
	}
	xorbMiB, err := strconv.Atoi(costtest.ChildInput())
	require.NoError(t, err)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "xet-write-token") {
			_ = json.NewEncoder(w).Encode(map[string]any{"accessToken": "xet_t", "casUrl": "http://" + r.Host, "exp": time.Now().Add(time.Hour).Unix()})
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write([]byte(`{"was_inserted": true}`))
	}))
	defer srv.Close()
	ts := NewTokenSource(func(ctx context.Context) (Token, error) {
		return FetchToken(ctx, srv.Client(), Retry{}, WriteTokenURL(srv.URL, "model", "a/b", "main"), "hf_x")
	}, nil)
	u := NewUploader(NewCASClient(ts, CASOptions{HTTPClient: srv.Client()}), UploadOptions{XorbSize: xorbMiB << 20})
	ctx := context.Background()
	for i := range 3 {
		_, err := u.Add(ctx, &pseudoRandom{n: 256 << 20, x: uint64(i) + 88172645463325252})
		require.NoError(t, err)
	}
	_, err = u.Finish(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(768<<20), u.Stats().Bytes)
	costtest.ReportPeakRSS(t)
}
