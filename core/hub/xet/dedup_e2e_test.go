package xet_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/hub/hubemu"
	"modelpub/core/hub/xet"
)

// A second client, with an empty cache, uploading a file the CAS already
// holds (uploaded by someone else, to another repo) sends almost nothing:
// the global deduplication query finds the chunks.
func TestGlobalDedupAcrossClients(t *testing.T) {
	cas, err := hubemu.NewXetCAS(t.TempDir(), "")
	require.NoError(t, err)
	mux := http.NewServeMux()
	for _, repo := range []string{"alice/base", "bob/finetune"} {
		mux.HandleFunc("/api/models/"+repo+"/xet-write-token/main", func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write(cas.TokenJSON("http://"+r.Host, "models/"+repo, true, time.Hour))
		})
	}
	mux.Handle("/v1/", cas)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := func(repo string) *xet.CASClient {
		ts := xet.NewTokenSource(func(ctx context.Context) (xet.Token, error) {
			return xet.FetchToken(ctx, srv.Client(), xet.Retry{}, xet.WriteTokenURL(srv.URL, "model", repo, "main"), "hf_x")
		}, nil)
		return xet.NewCASClient(ts, xet.CASOptions{HTTPClient: srv.Client()})
	}
	ctx := context.Background()
	base := make([]byte, 12<<20)
	for i := range base {
		base[i] = byte(i*7 + i/5000)
	}
	// Pseudo-random enough to chunk normally.
	for i := 0; i+8 <= len(base); i += 8 {
		x := uint64(i)*0x9E3779B97F4A7C15 + 1
		x ^= x >> 29
		for k := 0; k < 8; k++ {
			base[i+k] = byte(x >> (8 * k))
		}
	}

	cacheA, err := xet.OpenShardCache(t.TempDir(), 0, nil)
	require.NoError(t, err)
	ua := xet.NewUploader(client("alice/base"), xet.UploadOptions{Cache: cacheA})
	_, err = ua.Add(ctx, bytes.NewReader(base))
	require.NoError(t, err)
	_, err = ua.Finish(ctx)
	require.NoError(t, err)

	// Bob's fine-tune: the base with 100 KB changed in the middle.
	tuned := append([]byte(nil), base...)
	for i := 6 << 20; i < 6<<20+100_000; i++ {
		tuned[i] ^= 0x5a
	}
	cacheB, err := xet.OpenShardCache(t.TempDir(), 0, nil)
	require.NoError(t, err)
	ub := xet.NewUploader(client("bob/finetune"), xet.UploadOptions{Cache: cacheB, GlobalDedup: true})
	_, err = ub.Add(ctx, bytes.NewReader(tuned))
	require.NoError(t, err)
	infos, err := ub.Finish(ctx)
	require.NoError(t, err)
	st := ub.Stats()
	t.Logf("bob: %d queries, sent %d of %d bytes", st.Queries, st.SentBytes, st.Bytes)
	assert.Positive(t, st.Queries)
	assert.Less(t, st.NewBytes, uint64(1<<20), "only the changed region (and its neighbour chunks) is new")

	var w bytes.Buffer
	fi, ok := cas.FileBySHA256(infos[0].SHA256)
	require.True(t, ok)
	require.NoError(t, cas.WriteFile(&w, fi))
	assert.Equal(t, tuned, w.Bytes())
}
