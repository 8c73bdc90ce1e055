package hubemu

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The tests speak to the server with raw requests built from
// hub-protocol.md, as a client would, over real loopback HTTP.

const (
	aliceTok = "hf_alice_token"
	bobTok   = "hf_bob_token"
)

type hubT struct {
	t   *testing.T
	s   *Server
	url string
	hc  *http.Client
}

func newHub(t *testing.T, opts Options) *hubT {
	t.Helper()
	if opts.Tokens == nil {
		opts.Tokens = map[string]string{aliceTok: "alice", bobTok: "bob"}
	}
	opts.Record = true
	s, err := New(opts)
	require.NoError(t, err)
	u, err := s.Start("127.0.0.1:0")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(u, "http://127.0.0.1:"), u)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return &hubT{t: t, s: s, url: u, hc: &http.Client{Timeout: 30 * time.Second}}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(r.body, v), "body: %s", r.body)
}

func (r resp) obj(t *testing.T) map[string]any {
	var m map[string]any
	r.json(t, &m)
	return m
}

// do sends a request; tok "" sends no Authorization; a path starting with
// "/" is on the server.
func (h *hubT) do(method, target, tok string, hdr map[string]string, body []byte) resp {
	h.t.Helper()
	r, err := h.try(method, target, tok, hdr, body)
	require.NoError(h.t, err)
	return r
}

// try is do that returns network errors.
func (h *hubT) try(method, target, tok string, hdr map[string]string, body []byte) (resp, error) {
	if strings.HasPrefix(target, "/") {
		target = h.url + target
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		return resp{}, err
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := h.hc.Do(req)
	if err != nil {
		return resp{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return resp{}, err
	}
	return resp{res.StatusCode, res.Header, b}, nil
}

func (h *hubT) postJSON(path, tok string, v any) resp {
	h.t.Helper()
	b, err := json.Marshal(v)
	require.NoError(h.t, err)
	return h.do("POST", path, tok, map[string]string{"Content-Type": "application/json"}, b)
}

func (h *hubT) createRepo(ns, name string, private bool) {
	h.t.Helper()
	r := h.postJSON("/api/repos/create", aliceTokFor(ns), map[string]any{"name": name, "organization": ns, "private": private})
	require.Equal(h.t, 200, r.status, "%s", r.body)
}

func aliceTokFor(ns string) string {
	if ns == "bob" {
		return bobTok
	}
	return aliceTok
}

type upFile struct {
	path string
	data []byte
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func sample(b []byte) string {
	return base64.StdEncoding.EncodeToString(b[:min(512, len(b))])
}

type preFile struct {
	Path         string `json:"path"`
	UploadMode   string `json:"uploadMode"`
	ShouldIgnore *bool  `json:"shouldIgnore"`
	Oid          string `json:"oid"`
}

func (h *hubT) preupload(repo, rev string, files []upFile) (map[string]preFile, string) {
	h.t.Helper()
	var req struct {
		Files []map[string]any `json:"files"`
	}
	for _, f := range files {
		req.Files = append(req.Files, map[string]any{"path": f.path, "sample": sample(f.data), "size": len(f.data)})
	}
	r := h.postJSON("/api/models/"+repo+"/preupload/"+escRev(rev), aliceTok, req)
	require.Equal(h.t, 200, r.status, "%s", r.body)
	var out struct {
		Files     []preFile `json:"files"`
		CommitOid string    `json:"commitOid"`
	}
	r.json(h.t, &out)
	m := map[string]preFile{}
	for _, f := range out.Files {
		require.NotNil(h.t, f.ShouldIgnore, "shouldIgnore is required")
		m[f.Path] = f
	}
	return m, out.CommitOid
}

func escRev(rev string) string { return strings.ReplaceAll(rev, "/", "%2F") }

type batchObj struct {
	Oid     string `json:"oid"`
	Size    int64  `json:"size"`
	Actions map[string]struct {
		Href   string            `json:"href"`
		Header map[string]string `json:"header"`
	} `json:"actions"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (h *hubT) batch(repo string, files []upFile) []batchObj {
	h.t.Helper()
	var objs []map[string]any
	for _, f := range files {
		objs = append(objs, map[string]any{"oid": sha256hex(f.data), "size": len(f.data)})
	}
	b, _ := json.Marshal(map[string]any{"operation": "upload", "transfers": []string{"basic", "multipart"},
		"hash_algo": "sha256", "ref": map[string]string{"name": "main"}, "objects": objs})
	r := h.do("POST", "/"+repo+".git/info/lfs/objects/batch", aliceTok,
		map[string]string{"Accept": lfsContentType, "Content-Type": lfsContentType}, b)
	require.Equal(h.t, 200, r.status, "%s", r.body)
	require.Equal(h.t, lfsContentType, r.header.Get("Content-Type"))
	var out struct {
		Transfer string     `json:"transfer"`
		Objects  []batchObj `json:"objects"`
	}
	r.json(h.t, &out)
	require.Equal(h.t, "basic", out.Transfer)
	require.Len(h.t, out.Objects, len(files))
	return out.Objects
}

// uploadObject performs the actions of one batch object as the clients
// do: no Authorization on the presigned URLs, verify with it.
func (h *hubT) uploadObject(o batchObj, data []byte) {
	h.t.Helper()
	up, ok := o.Actions["upload"]
	if !ok {
		return
	}
	require.True(h.t, strings.HasPrefix(up.Href, h.url+"/"), "absolute URL on the server's origin: %s", up.Href)
	if cs, ok := up.Header["chunk_size"]; ok {
		chunk, err := strconv.Atoi(cs)
		require.NoError(h.t, err)
		var keys []string
		for k := range up.Header {
			if _, err := strconv.Atoi(k); err == nil {
				keys = append(keys, k)
			}
		}
		sort.Slice(keys, func(i, j int) bool { a, _ := strconv.Atoi(keys[i]); b, _ := strconv.Atoi(keys[j]); return a < b })
		require.Equal(h.t, int(math.Ceil(float64(len(data))/float64(chunk))), len(keys))
		var parts []map[string]any
		for i, k := range keys {
			require.Len(h.t, k, 5)
			part := data[i*chunk : min((i+1)*chunk, len(data))]
			r := h.do("PUT", up.Header[k], "", nil, part)
			require.Equal(h.t, 200, r.status, "%s", r.body)
			require.NotEmpty(h.t, r.header.Get("ETag"))
			parts = append(parts, map[string]any{"partNumber": i + 1, "etag": r.header.Get("ETag")})
		}
		b, _ := json.Marshal(map[string]any{"oid": o.Oid, "parts": parts})
		r := h.do("POST", up.Href, "", map[string]string{"Content-Type": lfsContentType, "Accept": lfsContentType}, b)
		require.Equal(h.t, 200, r.status, "%s", r.body)
		return
	}
	r := h.do("PUT", up.Href, "", nil, data)
	require.Equal(h.t, 200, r.status, "%s", r.body)
	if v, ok := o.Actions["verify"]; ok {
		r := h.postJSON(v.Href, aliceTok, map[string]any{"oid": o.Oid, "size": o.Size})
		require.Equal(h.t, 200, r.status, "%s", r.body)
	}
}

// commitBody builds an NDJSON commit.
func commitBody(summary, parent string, lines ...map[string]any) []byte {
	hdr := map[string]any{"summary": summary, "description": ""}
	if parent != "" {
		hdr["parentCommit"] = parent
	}
	var b bytes.Buffer
	json.NewEncoder(&b).Encode(map[string]any{"key": "header", "value": hdr})
	for _, l := range lines {
		json.NewEncoder(&b).Encode(l)
	}
	return b.Bytes()
}

func fileLine(p string, data []byte) map[string]any {
	return map[string]any{"key": "file", "value": map[string]any{"path": p, "encoding": "base64", "content": base64.StdEncoding.EncodeToString(data)}}
}

func lfsLine(p string, data []byte) map[string]any {
	return map[string]any{"key": "lfsFile", "value": map[string]any{"path": p, "algo": "sha256", "oid": sha256hex(data), "size": len(data)}}
}

func (h *hubT) commit(repo, rev, query string, body []byte) resp {
	h.t.Helper()
	return h.do("POST", "/api/models/"+repo+"/commit/"+escRev(rev)+query, aliceTok,
		map[string]string{"Content-Type": "application/x-ndjson"}, body)
}

// push runs the whole client sequence and returns the commit answer.
func (h *hubT) push(repo, rev string, files []upFile) map[string]any {
	h.t.Helper()
	modes, _ := h.preupload(repo, rev, files)
	var lfs []upFile
	var lines []map[string]any
	for _, f := range files {
		if modes[f.path].UploadMode == "lfs" {
			lfs = append(lfs, f)
			lines = append(lines, lfsLine(f.path, f.data))
		} else {
			lines = append(lines, fileLine(f.path, f.data))
		}
	}
	if len(lfs) > 0 {
		for i, o := range h.batch(repo, lfs) {
			require.Nil(h.t, o.Error)
			h.uploadObject(o, lfs[i].data)
		}
	}
	r := h.commit(repo, rev, "", commitBody(fmt.Sprintf("Add %d files", len(files)), "", lines...))
	require.Equal(h.t, 200, r.status, "%s", r.body)
	return r.obj(h.t)
}

// head returns the commit of rev from repo info.
func (h *hubT) head(repo, rev string) string {
	h.t.Helper()
	r := h.do("GET", "/api/models/"+repo+"/revision/"+escRev(rev), aliceTok, nil, nil)
	require.Equal(h.t, 200, r.status, "%s", r.body)
	return r.obj(h.t)["sha"].(string)
}

func pseudoRandom(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}
