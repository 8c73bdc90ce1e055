package hubemu

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/hub/xet"
)

// xetHub serves a write-token endpoint and the CAS on one origin, as
// localhost wiring will.
type xetHub struct {
	cas   *XetCAS
	srv   *httptest.Server
	write atomic.Bool // the token endpoint hands out write tokens
}

func newXetHub(t *testing.T, dir string) *xetHub {
	t.Helper()
	cas, err := NewXetCAS(dir, "")
	require.NoError(t, err)
	h := &xetHub{cas: cas}
	h.write.Store(true)
	mux := http.NewServeMux()
	mux.HandleFunc("/api/models/alice/repo/xet-write-token/main", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(cas.TokenJSON("http://"+r.Host, "models/alice/repo", h.write.Load(), time.Hour))
	})
	mux.Handle("/v1/", cas)
	h.srv = httptest.NewServer(mux)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *xetHub) client() *xet.CASClient {
	retry := xet.Retry{MaxRetries: 3, BaseWait: time.Millisecond, MaxWait: 2 * time.Millisecond}
	ts := xet.NewTokenSource(func(ctx context.Context) (xet.Token, error) {
		return xet.FetchToken(ctx, h.srv.Client(), retry, xet.WriteTokenURL(h.srv.URL, "model", "alice/repo", "main"), "hf_x")
	}, nil)
	return xet.NewCASClient(ts, xet.CASOptions{HTTPClient: h.srv.Client(), Retry: retry})
}

func xetData(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// uploadXet packs files, uploads the xorbs and one shard; it returns the
// file infos.
func uploadXet(t *testing.T, cc *xet.CASClient, files ...[]byte) []xet.FileInfo {
	t.Helper()
	ctx := context.Background()
	var xorbs []xet.XorbInfo
	p := xet.NewPacker(xet.PolicyAuto, func(x xet.SealedXorb) error {
		xorbs = append(xorbs, x.Info)
		_, err := cc.UploadXorb(ctx, x.Info.Hash, x.Bytes)
		return err
	})
	var packed []*xet.PackedFile
	for _, f := range files {
		pf, err := p.AddFile(bytes.NewReader(f))
		require.NoError(t, err)
		packed = append(packed, pf)
	}
	require.NoError(t, p.Flush())
	var infos []xet.FileInfo
	for _, pf := range packed {
		fi, err := pf.Info()
		require.NoError(t, err)
		infos = append(infos, fi)
	}
	shard, err := (&xet.Shard{Files: infos, Xorbs: xorbs}).Marshal(false)
	require.NoError(t, err)
	require.NoError(t, cc.UploadShard(ctx, shard))
	return infos
}

// xetDownload follows the download protocol: reconstruction, then each fetch
// URL with its signed Range.
func xetDownload(t *testing.T, h *xetHub, token string, file xet.Hash, rangeHeader string) ([]byte, int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/v1/reconstructions/"+file.String(), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if rangeHeader != "" {
		req.Header.Set("Range", rangeHeader)
	}
	resp, err := h.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode
	}
	var rec xetReconstruction
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&rec))
	var out []byte
	for i, term := range rec.Terms {
		var fi *xetFetchInfo
		for k := range rec.FetchInfo[term.Hash] {
			f := rec.FetchInfo[term.Hash][k]
			if f.Range.Start <= term.Range.Start && f.Range.End >= term.Range.End {
				fi = &f
				break
			}
		}
		require.NotNil(t, fi, "fetch info for term %d", i)
		freq, _ := http.NewRequest(http.MethodGet, fi.URL, nil)
		freq.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", fi.URLRange.Start, fi.URLRange.End))
		fresp, err := h.srv.Client().Do(freq)
		require.NoError(t, err)
		b, _ := io.ReadAll(fresp.Body)
		fresp.Body.Close()
		require.Equal(t, http.StatusPartialContent, fresp.StatusCode, "%s", b)
		cs, err := xet.ReadXorb(b, xet.Hash{})
		require.NoError(t, err)
		var data []byte
		for _, c := range cs[term.Range.Start-fi.Range.Start : term.Range.End-fi.Range.Start] {
			data = append(data, c.Data...)
		}
		require.Len(t, data, int(term.UnpackedLength))
		if i == 0 {
			data = data[rec.OffsetIntoFirstRange:]
		}
		out = append(out, data...)
	}
	return out, http.StatusOK
}

func TestXetCASUploadAndDownload(t *testing.T) {
	dir := t.TempDir()
	h := newXetHub(t, dir)
	cc := h.client()
	a := xetData(3<<20+123, 1)
	b := append(append([]byte(nil), a[:2<<20]...), xetData(1<<20, 2)...)
	infos := uploadXet(t, cc, a, b, []byte("tiny"))
	tok, _ := h.cas.IssueToken("models/alice/repo", false, time.Hour)

	for i, f := range [][]byte{a, b, []byte("tiny")} {
		got, st := xetDownload(t, h, tok, infos[i].Hash, "")
		require.Equal(t, http.StatusOK, st)
		assert.Equal(t, f, got, "file %d", i)

		fi, ok := h.cas.FileBySHA256(sha256.Sum256(f))
		require.True(t, ok)
		var w bytes.Buffer
		require.NoError(t, h.cas.WriteFile(&w, fi))
		assert.Equal(t, f, w.Bytes())
	}

	got, st := xetDownload(t, h, tok, infos[0].Hash, "bytes=1000000-2500000")
	require.Equal(t, http.StatusOK, st)
	assert.Equal(t, a[1000000:2500001], got[:1500001], "a range starts at offset_into_first_range")
	_, st = xetDownload(t, h, tok, infos[0].Hash, fmt.Sprintf("bytes=%d-", len(a)))
	assert.Equal(t, http.StatusRequestedRangeNotSatisfiable, st)

	// A restart keeps everything.
	h2 := newXetHub(t, dir)
	tok2, _ := h2.cas.IssueToken("models/alice/repo", false, time.Hour)
	got, _ = xetDownload(t, h2, tok2, infos[1].Hash, "")
	assert.Equal(t, b, got)

	// Global deduplication finds a's chunks, keyed with the shard's HMAC key.
	first := xet.Chunks(a)[0]
	s, found, err := cc.QueryChunk(context.Background(), first.Hash)
	require.NoError(t, err)
	require.True(t, found)
	require.Len(t, s.Xorbs, 1)
	assert.Equal(t, xet.HMAC(first.Hash, s.HMACKey), s.Xorbs[0].Chunks[0].Hash)
	_, found, err = cc.QueryChunk(context.Background(), xet.ChunkHash([]byte("unknown")))
	require.NoError(t, err)
	assert.False(t, found)
}

func TestXetCASRefuses(t *testing.T) {
	h := newXetHub(t, t.TempDir())
	cc := h.client()
	ctx := context.Background()
	data := xetData(1<<20, 3)
	var sealed []xet.SealedXorb
	p := xet.NewPacker(xet.PolicyNone, func(x xet.SealedXorb) error {
		sealed = append(sealed, xet.SealedXorb{Info: x.Info, Bytes: append([]byte(nil), x.Bytes...)})
		return nil
	})
	pf, err := p.AddFile(bytes.NewReader(data))
	require.NoError(t, err)
	require.NoError(t, p.Flush())
	fi, err := pf.Info()
	require.NoError(t, err)
	x := sealed[0]

	shardOf := func(f xet.FileInfo) []byte {
		b, err := (&xet.Shard{Files: []xet.FileInfo{f}, Xorbs: []xet.XorbInfo{x.Info}}).Marshal(false)
		require.NoError(t, err)
		return b
	}
	require.ErrorIs(t, cc.UploadShard(ctx, shardOf(fi)), xet.ErrRefused, "the xorb was not uploaded")

	bad := append([]byte(nil), x.Bytes...)
	bad[100] ^= 1
	_, err = cc.UploadXorb(ctx, x.Info.Hash, bad)
	require.ErrorIs(t, err, xet.ErrRefused, "a xorb that does not hash to its name")

	_, err = cc.UploadXorb(ctx, x.Info.Hash, x.Bytes)
	require.NoError(t, err)

	wrongVerif := fi
	wrongVerif.Terms = append([]xet.Term(nil), fi.Terms...)
	wrongVerif.Terms[0].Verification[0] ^= 1
	err = cc.UploadShard(ctx, shardOf(wrongVerif))
	require.ErrorIs(t, err, xet.ErrRefused)
	assert.Contains(t, err.Error(), "verification hash mismatch")

	wrongFile := fi
	wrongFile.Hash[0] ^= 1
	require.ErrorIs(t, cc.UploadShard(ctx, shardOf(wrongFile)), xet.ErrRefused)

	require.NoError(t, cc.UploadShard(ctx, shardOf(fi)))

	h.write.Store(false)
	_, err = h.client().UploadXorb(ctx, x.Info.Hash, x.Bytes)
	require.ErrorIs(t, err, xet.ErrForbidden, "a read token cannot upload")

	resp, err := http.Post(h.srv.URL+"/v1/shards", "application/octet-stream", strings.NewReader("x"))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

func TestXetCASFaultsAreRetried(t *testing.T) {
	h := newXetHub(t, t.TempDir())
	var n atomic.Int32
	h.cas.Fault = func(r *http.Request) int {
		// Every other request fails, alternately with a 500 and a dropped
		// connection.
		switch k := n.Add(1); {
		case k%4 == 1:
			return http.StatusInternalServerError
		case k%4 == 3:
			return -1
		}
		return 0
	}
	data := xetData(2<<20, 4)
	infos := uploadXet(t, h.client(), data)
	h.cas.Fault = nil
	tok, _ := h.cas.IssueToken("models/alice/repo", false, time.Hour)
	got, _ := xetDownload(t, h, tok, infos[0].Hash, "")
	assert.Equal(t, data, got)
}

func TestXetCASHubSideHelpers(t *testing.T) {
	h := newXetHub(t, t.TempDir())
	href, hdr := h.cas.XetBatchAction(h.srv.URL, h.srv.URL+"/api/models/alice/repo/xet-write-token/main", "models/alice/repo")
	assert.Contains(t, href, "xet-write-token")
	tok, err := xet.TokenFromBatchAction(hdr)
	require.NoError(t, err, "our client reads what the emulator hands out")
	ts := xet.NewTokenSource(func(context.Context) (xet.Token, error) { return xet.Token{}, fmt.Errorf("not needed") }, nil)
	ts.Seed(tok)
	cc := xet.NewCASClient(ts, xet.CASOptions{HTTPClient: h.srv.Client()})
	infos := uploadXet(t, cc, xetData(300<<10, 9))

	rec := httptest.NewRecorder()
	h.cas.SetXetFileInfo(rec.Header(), infos[0], h.srv.URL, h.srv.URL+"/api/models/alice/repo/xet-read-token/main")
	assert.Equal(t, "307200", rec.Header().Get("X-Linked-Size"))
	assert.Equal(t, infos[0].Hash.String(), rec.Header().Get("X-Xet-Hash"))
	assert.Contains(t, rec.Header().Get("Link"), `/v1/reconstructions/`+infos[0].Hash.String()+`>; rel="xet-reconstruction-info"`)
	assert.Contains(t, rec.Header().Get("Link"), `xet-read-token/main>; rel="xet-auth"`)
}
