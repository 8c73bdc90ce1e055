package hubemu

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/hub/xet"
)

// xetBatch asks the LFS batch for files with the given transfers.
func (h *hubT) xetBatch(repo, tok string, transfers []string, files []upFile) (string, []batchObj) {
	h.t.Helper()
	var objs []map[string]any
	for _, f := range files {
		objs = append(objs, map[string]any{"oid": sha256hex(f.data), "size": len(f.data)})
	}
	b, _ := json.Marshal(map[string]any{"operation": "upload", "transfers": transfers,
		"hash_algo": "sha_256", "ref": map[string]string{"name": "main"}, "objects": objs})
	r := h.do("POST", "/"+repo+".git/info/lfs/objects/batch", tok,
		map[string]string{"Accept": lfsContentType, "Content-Type": lfsContentType}, b)
	require.Equal(h.t, 200, r.status, "%s", r.body)
	var out struct {
		Transfer string     `json:"transfer"`
		Objects  []batchObj `json:"objects"`
	}
	r.json(h.t, &out)
	require.Len(h.t, out.Objects, len(files))
	return out.Transfer, out.Objects
}

func TestXetTokenAccess(t *testing.T) {
	const readTok = "hf_alice_read"
	h := newHub(t, Options{Tokens: map[string]string{aliceTok: "alice", bobTok: "bob", readTok: "alice"},
		ReadTokens: map[string]bool{readTok: true}})
	h.createRepo("alice", "pub", false)
	h.createRepo("alice", "priv", true)
	tests := []struct {
		name, repo, kind, rev, tok string
		want                       int
	}{
		{"owner write", "alice/pub", "write", "main", aliceTok, 200},
		{"owner read", "alice/priv", "read", "main", aliceTok, 200},
		{"other user write", "alice/pub", "write", "main", bobTok, 403},
		{"read token write", "alice/pub", "write", "main", readTok, 403},
		{"anonymous write", "alice/pub", "write", "main", "", 401},
		{"other user read public", "alice/pub", "read", "main", bobTok, 200},
		{"anonymous read public", "alice/pub", "read", "main", "", 200},
		{"other user read private", "alice/priv", "read", "main", bobTok, 404},
		{"other user write private", "alice/priv", "write", "main", bobTok, 404},
		{"anonymous read private", "alice/priv", "read", "main", "", 401},
		{"unknown revision", "alice/pub", "read", "nope", aliceTok, 404},
		{"missing repo", "alice/none", "write", "main", aliceTok, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do("GET", "/api/models/"+tt.repo+"/xet-"+tt.kind+"-token/"+tt.rev, tt.tok, nil, nil)
			require.Equal(t, tt.want, r.status, "%s", r.body)
			if tt.want != 200 {
				assert.NotContains(t, string(r.body), "accessToken")
				return
			}
			var tok struct {
				AccessToken string `json:"accessToken"`
				Exp         int64  `json:"exp"`
				CASURL      string `json:"casUrl"`
			}
			r.json(t, &tok)
			assert.NotEmpty(t, tok.AccessToken)
			assert.Equal(t, h.url, tok.CASURL)
			assert.Greater(t, tok.Exp, time.Now().Unix())
			// A read token does not upload; a write token reaches the
			// CAS's checks of the body (400 on an empty shard).
			up := h.do("POST", "/v1/shards", tok.AccessToken, nil, []byte("not a shard"))
			if tt.kind == "read" {
				assert.Equal(t, http.StatusForbidden, up.status, "%s", up.body)
			} else {
				assert.Equal(t, http.StatusBadRequest, up.status, "%s", up.body)
			}
		})
	}
	// A Hub token is not a CAS token.
	r := h.do("POST", "/v1/shards", aliceTok, nil, []byte("x"))
	assert.Equal(t, http.StatusUnauthorized, r.status, "%s", r.body)
}

func TestXetBatchTransfer(t *testing.T) {
	files := []upFile{{"model.safetensors", pseudoRandom(5000, 3)}}
	for _, tt := range []struct {
		name      string
		noXet     bool
		transfers []string
		want      string
	}{
		{"xet not offered", false, []string{"basic", "multipart"}, "basic"},
		{"xet offered", false, []string{"basic", "multipart", "xet"}, "xet"},
		{"xet offered, NoXet", true, []string{"basic", "multipart", "xet"}, "basic"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHub(t, Options{NoXet: tt.noXet})
			h.createRepo("alice", "m", false)
			transfer, objs := h.xetBatch("alice/m", aliceTok, tt.transfers, files)
			require.Equal(t, tt.want, transfer)
			up := objs[0].Actions["upload"]
			if tt.want == "basic" {
				assert.Contains(t, up.Href, "/_emu/lfs/upload/")
				assert.Empty(t, up.Header[xet.HeaderAccessToken])
				return
			}
			assert.Equal(t, h.url+"/api/models/alice/m/xet-write-token/main", up.Href)
			tok, err := xet.TokenFromBatchAction(up.Header)
			require.NoError(t, err)
			assert.Equal(t, h.url, tok.CASURL)
			assert.NotEmpty(t, up.Header[xet.HeaderSessionID])
			_, isVerify := objs[0].Actions["verify"]
			assert.False(t, isVerify, "no verify action with xet")
		})
	}
}

// TestXetUploadCommitResolve: the Go Xet uploader sends a file to the
// emulator's CAS from a batch's xet action; the commit takes it, resolve
// serves its bytes; another repo cannot commit it by its oid alone.
func TestXetUploadCommitResolve(t *testing.T) {
	h := newHub(t, Options{})
	h.createRepo("alice", "m", false)
	h.createRepo("bob", "b", false)
	data := xetData(3<<20+77, 9)
	files := []upFile{{"model.safetensors", data}}
	transfer, objs := h.xetBatch("alice/m", aliceTok, []string{"basic", "xet"}, files)
	require.Equal(t, "xet", transfer)
	up := objs[0].Actions["upload"]
	first, err := xet.TokenFromBatchAction(up.Header)
	require.NoError(t, err)
	ctx := context.Background()
	retry := xet.Retry{MaxRetries: 2, BaseWait: time.Millisecond, MaxWait: 2 * time.Millisecond}
	ts := xet.NewTokenSource(func(ctx context.Context) (xet.Token, error) {
		return xet.FetchToken(ctx, h.hc, retry, up.Href, aliceTok)
	}, nil)
	ts.Seed(first)
	u := xet.NewUploader(xet.NewCASClient(ts, xet.CASOptions{HTTPClient: h.hc, Retry: retry}), xet.UploadOptions{})
	_, err = u.Add(ctx, strings.NewReader(string(data)))
	require.NoError(t, err)
	_, err = u.Finish(ctx)
	require.NoError(t, err)

	// Bob's repo cannot take the file by its oid: neither before its
	// batch offers the oid to Xet nor after (the shard came with a token
	// of alice/m).
	bobCommit := func() resp {
		return h.do("POST", "/api/models/bob/b/commit/main", bobTok, map[string]string{"Content-Type": "application/x-ndjson"},
			commitBody("take it", "", lfsLine("model.safetensors", data)))
	}
	r := bobCommit()
	require.Equal(t, http.StatusBadRequest, r.status, "%s", r.body)
	assert.Contains(t, string(r.body), "does not exist")
	transfer, _ = h.xetBatch("bob/b", bobTok, []string{"basic", "xet"}, files)
	require.Equal(t, "xet", transfer)
	r = bobCommit()
	require.Equal(t, http.StatusBadRequest, r.status, "%s", r.body)
	assert.Contains(t, string(r.body), "does not exist")

	r = h.commit("alice/m", "main", "", commitBody("xet upload", "", lfsLine("model.safetensors", data)))
	require.Equal(t, 200, r.status, "%s", r.body)
	got := h.do("GET", "/alice/m/resolve/main/model.safetensors", aliceTok, nil, nil)
	require.Equal(t, 200, got.status)
	assert.Equal(t, sha256hex(data), sha256hex(got.body), "resolve serves the uploaded bytes")
	assert.Equal(t, "3145805", got.header.Get("X-Linked-Size"))

	// Asked for Xet file info, resolve names the CAS file instead.
	info := h.do("GET", "/alice/m/resolve/main/model.safetensors", aliceTok,
		map[string]string{"Accept": "application/vnd.xet-fileinfo+json, */*", "Range": "bytes=0-0"}, nil)
	require.Equal(t, 200, info.status, "%s", info.body)
	assert.Equal(t, "application/vnd.xet-fileinfo+json", info.header.Get("Content-Type"))
	assert.Len(t, info.header.Get("X-Xet-Hash"), 64)
	assert.Equal(t, "3145805", info.header.Get("X-Linked-Size"))
	assert.Contains(t, info.header.Get("Link"), h.url+"/v1/reconstructions/"+info.header.Get("X-Xet-Hash"))
	assert.Contains(t, info.header.Get("Link"), `/xet-read-token/`)
	assert.Empty(t, info.body)
	// A file stored through LFS is served as bytes whatever the Accept.
	h.push("alice/m", "main", []upFile{{"lfs.bin", pseudoRandom(2000, 4)}})
	plain := h.do("GET", "/alice/m/resolve/main/lfs.bin", aliceTok,
		map[string]string{"Accept": "application/vnd.xet-fileinfo+json, */*"}, nil)
	require.Equal(t, 200, plain.status)
	assert.Equal(t, pseudoRandom(2000, 4), plain.body)

	var puts, casPosts int
	for _, rq := range h.s.Requests() {
		switch {
		case rq.Class == ClassLFSUpload:
			puts++
		case rq.Class == ClassXet && rq.Method == "POST":
			casPosts++
		}
	}
	assert.Equal(t, 1, puts, "one LFS PUT: lfs.bin's")
	assert.GreaterOrEqual(t, casPosts, 2, "a xorb and a shard")
}

// TestXetFaults: the emulator's fault injection strikes the CAS under its
// class "xet"; the Go uploader's retries get through.
func TestXetFaults(t *testing.T) {
	h := newHub(t, Options{})
	h.createRepo("alice", "m", false)
	data := xetData(200<<10, 5)
	_, objs := h.xetBatch("alice/m", aliceTok, []string{"basic", "xet"}, []upFile{{"w.safetensors", data}})
	up := objs[0].Actions["upload"]
	first, err := xet.TokenFromBatchAction(up.Header)
	require.NoError(t, err)
	h.s.SetFaults(FaultSpec{First: 1, Kinds: []FaultKind{Fault503}, Endpoints: []string{ClassXet}})
	ctx := context.Background()
	retry := xet.Retry{MaxRetries: 3, BaseWait: time.Millisecond, MaxWait: 2 * time.Millisecond}
	ts := xet.NewTokenSource(func(ctx context.Context) (xet.Token, error) {
		return xet.FetchToken(ctx, h.hc, retry, up.Href, aliceTok)
	}, nil)
	ts.Seed(first)
	u := xet.NewUploader(xet.NewCASClient(ts, xet.CASOptions{HTTPClient: h.hc, Retry: retry}), xet.UploadOptions{})
	_, err = u.Add(ctx, strings.NewReader(string(data)))
	require.NoError(t, err)
	_, err = u.Finish(ctx)
	require.NoError(t, err)
	var faulted, ok int
	for _, rq := range h.s.Requests() {
		if rq.Class != ClassXet || rq.Method != http.MethodPost {
			continue
		}
		if rq.Fault == Fault503 {
			faulted++
			assert.Equal(t, http.StatusServiceUnavailable, rq.Status)
		} else if rq.Status < 300 {
			ok++
		}
	}
	assert.GreaterOrEqual(t, faulted, 2, "the first xorb and shard POSTs failed")
	assert.GreaterOrEqual(t, ok, 2, "their retries succeeded")
	r := h.commit("alice/m", "main", "", commitBody("after faults", "", lfsLine("w.safetensors", data)))
	require.Equal(t, 200, r.status, "%s", r.body)
}

// The xet action's href (the URL a client refreshes its CAS token from)
// names the batch's branch; a batch without ref (a pull request) names the
// default branch with create_pr=1, as huggingface_hub asks for it.
func TestXetBatchTokenURLFollowsTheRef(t *testing.T) {
	h := newHub(t, Options{})
	h.createRepo("alice", "m", false)
	data := []byte("weights of the pull request")
	for _, tt := range []struct {
		ref  any
		want string
	}{
		{map[string]string{"name": "dev"}, "/api/models/alice/m/xet-write-token/dev"},
		{map[string]string{"name": "refs/heads/dev"}, "/api/models/alice/m/xet-write-token/dev"},
		{nil, "/api/models/alice/m/xet-write-token/main?create_pr=1"},
	} {
		body := map[string]any{"operation": "upload", "transfers": []string{"basic", "multipart", "xet"}, "hash_algo": "sha256",
			"objects": []map[string]any{{"oid": sha256hex(data), "size": len(data)}}}
		if tt.ref != nil {
			body["ref"] = tt.ref
		}
		b, _ := json.Marshal(body)
		r := h.do("POST", "/alice/m.git/info/lfs/objects/batch", aliceTok,
			map[string]string{"Accept": lfsContentType, "Content-Type": lfsContentType}, b)
		require.Equal(t, 200, r.status, "%s", r.body)
		var out struct {
			Transfer string     `json:"transfer"`
			Objects  []batchObj `json:"objects"`
		}
		r.json(t, &out)
		require.Equal(t, "xet", out.Transfer)
		assert.Equal(t, h.url+tt.want, out.Objects[0].Actions["upload"].Href, "ref %v", tt.ref)
	}
	// The token endpoint takes create_pr=1.
	r := h.do("GET", "/api/models/alice/m/xet-write-token/main?create_pr=1", aliceTok, nil, nil)
	assert.Equal(t, 200, r.status, "%s", r.body)
}

// Every Xet URL the emulator hands out follows the address the client
// reached it by (the request's Host): the batch's CAS URL and token
// refresh URL, the xet-write-token answer's casUrl.
func TestXetURLsFollowTheHost(t *testing.T) {
	h := newHub(t, Options{})
	h.createRepo("alice", "m", false)
	const host = "hub.example:8443"
	send := func(method, path string, body []byte, hdr map[string]string) *http.Response {
		req, err := http.NewRequest(method, h.url+path, bytes.NewReader(body))
		require.NoError(t, err)
		req.Host = host
		req.Header.Set("Authorization", "Bearer "+aliceTok)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { resp.Body.Close() })
		require.Equal(t, 200, resp.StatusCode)
		return resp
	}
	data := []byte("weights behind a proxy")
	b, _ := json.Marshal(map[string]any{"operation": "upload", "transfers": []string{"basic", "multipart", "xet"}, "hash_algo": "sha256",
		"ref": map[string]string{"name": "main"}, "objects": []map[string]any{{"oid": sha256hex(data), "size": len(data)}}})
	var out struct {
		Objects []batchObj `json:"objects"`
	}
	require.NoError(t, json.NewDecoder(send("POST", "/alice/m.git/info/lfs/objects/batch", b,
		map[string]string{"Accept": lfsContentType, "Content-Type": lfsContentType}).Body).Decode(&out))
	up := out.Objects[0].Actions["upload"]
	assert.Equal(t, "http://"+host+"/api/models/alice/m/xet-write-token/main", up.Href)
	tok, err := xet.TokenFromBatchAction(up.Header)
	require.NoError(t, err)
	assert.Equal(t, "http://"+host, tok.CASURL)
	var j struct {
		CASURL string `json:"casUrl"`
	}
	require.NoError(t, json.NewDecoder(send("GET", "/api/models/alice/m/xet-write-token/main", nil, nil).Body).Decode(&j))
	assert.Equal(t, "http://"+host, j.CASURL)
}
