package xet_test

// The official client reads what we write: files packed and uploaded by
// this package (Packer, CASClient) into the emulator's CAS (hubemu.XetCAS)
// are downloaded by @huggingface/hub's own Xet downloader (XetBlob, pinned
// in testdata/xetchunk), whole and as a slice, and must come back
// byte-identical. This checks our xorb format (chunk headers, LZ4 frames,
// byte grouping) against the official decoder, and the emulator's v2
// reconstruction answers and signed ranges against the official reader.
// Skipped without node and npm, except under CI=true.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/hub/hubemu"
	"modelpub/core/hub/xet"
)

func TestOfficialClientDownloadsWhatWeUpload(t *testing.T) {
	node := xet.RequireTool(t, "node")
	npm := xet.RequireTool(t, "npm")
	js := xet.InstallReference(t, npm)

	cas, err := hubemu.NewXetCAS(t.TempDir(), "")
	require.NoError(t, err)
	mux := http.NewServeMux()
	const hubToken = "hf_officialClientTest0123456789"
	token := func(write bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+hubToken {
				http.Error(w, "bad token", http.StatusUnauthorized)
				return
			}
			_, _ = w.Write(cas.TokenJSON("http://"+r.Host, "models/alice/repo", write, time.Hour))
		}
	}
	mux.HandleFunc("/api/models/alice/repo/xet-write-token/main", token(true))
	mux.HandleFunc("/api/models/alice/repo/xet-read-token/main", token(false))
	mux.Handle("/v1/", cas)
	mux.Handle("/v2/", cas)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	rng := rand.New(rand.NewPCG(20, 26))
	f32 := make([]byte, 0, 3<<20)
	bf16 := make([]byte, 0, 5<<20)
	for len(f32) < 3<<20 {
		f32 = binary.LittleEndian.AppendUint32(f32, math.Float32bits(float32(rng.NormFloat64()*0.02)))
	}
	for len(bf16) < 5<<20 {
		bf16 = binary.LittleEndian.AppendUint16(bf16, uint16(math.Float32bits(float32(rng.NormFloat64()*0.02))>>16))
	}
	random := make([]byte, 2<<20+4321)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	text := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog\n"), 30000)
	// Shares bf16's middle and random's head: terms in several xorbs.
	mixed := append(append(append([]byte(nil), random[:1<<20]...), bf16[1<<20:3<<20]...), text[:100000]...)
	files := [][]byte{f32, bf16, random, text, mixed, []byte("tiny file\n")}

	retry := xet.Retry{MaxRetries: 2, BaseWait: time.Millisecond}
	ts := xet.NewTokenSource(func(ctx context.Context) (xet.Token, error) {
		return xet.FetchToken(ctx, srv.Client(), retry, xet.WriteTokenURL(srv.URL, "model", "alice/repo", "main"), hubToken)
	}, nil)
	cc := xet.NewCASClient(ts, xet.CASOptions{HTTPClient: srv.Client(), Retry: retry})
	ctx := context.Background()
	var xorbs []xet.XorbInfo
	schemes := map[xet.Compression]int{}
	p := xet.NewPacker(xet.PolicyBest, func(x xet.SealedXorb) error {
		xorbs = append(xorbs, x.Info)
		cs, err := xet.ReadXorb(x.Bytes, x.Info.Hash)
		if err != nil {
			return err
		}
		for _, c := range cs {
			schemes[c.Compression]++
		}
		_, err = cc.UploadXorb(ctx, x.Info.Hash, x.Bytes)
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
	for _, s := range []xet.Compression{xet.CompressionNone, xet.CompressionLZ4, xet.CompressionBG4LZ4} {
		require.Positive(t, schemes[s], "the upload uses %s, so the official decoder reads it", s)
	}

	type request struct {
		Hash       string `json:"hash"`
		Size       int    `json:"size"`
		SliceStart int    `json:"sliceStart"`
		SliceEnd   int    `json:"sliceEnd"`
	}
	var reqs []request
	for i, f := range files {
		reqs = append(reqs, request{Hash: infos[i].Hash.String(), Size: len(f), SliceStart: len(f) / 3, SliceEnd: len(f) / 3 * 2})
	}
	reqPath := filepath.Join(t.TempDir(), "requests.json")
	b, err := json.Marshal(reqs)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(reqPath, b, 0o644))

	nctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(nctx, node, filepath.Join(js, "download.mjs"),
		srv.URL+"/api/models/alice/repo/xet-read-token/main", hubToken, reqPath)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "node download.mjs: %s", stderr.String())
	var rep struct {
		Library string `json:"library"`
		Version string `json:"version"`
		Files   map[string]struct {
			Whole, Slice struct {
				Size   int    `json:"size"`
				SHA256 string `json:"sha256"`
			}
		} `json:"files"`
	}
	require.NoError(t, json.Unmarshal(out, &rep))
	t.Logf("downloader: %s %s; schemes %v", rep.Library, rep.Version, schemes)
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	for i, f := range files {
		got, ok := rep.Files[reqs[i].Hash]
		require.True(t, ok, "file %d", i)
		assert.Equal(t, len(f), got.Whole.Size, "file %d", i)
		assert.Equal(t, sum(f), got.Whole.SHA256, "file %d: byte-identical", i)
		slice := f[reqs[i].SliceStart:reqs[i].SliceEnd]
		assert.Equal(t, len(slice), got.Slice.Size, "file %d slice", i)
		assert.Equal(t, sum(slice), got.Slice.SHA256, "file %d slice", i)
	}
}
