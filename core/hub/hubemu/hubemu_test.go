package hubemu

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWhoami(t *testing.T) {
	h := newHub(t, Options{})
	tests := []struct {
		name, tok string
		status    int
		user      string
	}{
		{"valid token", aliceTok, 200, "alice"},
		{"other valid token", bobTok, 200, "bob"},
		{"unknown token", "hf_nope", 401, ""},
		{"no token", "", 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do("GET", "/api/whoami-v2", tt.tok, nil, nil)
			require.Equal(t, tt.status, r.status)
			m := r.obj(t)
			if tt.status == 200 {
				assert.Equal(t, tt.user, m["name"])
				assert.Equal(t, "user", m["type"])
				auth := m["auth"].(map[string]any)
				assert.NotEmpty(t, auth["accessToken"].(map[string]any)["createdAt"])
				return
			}
			assert.Equal(t, "Invalid credentials in Authorization header", m["error"])
			assert.Equal(t, "Invalid credentials in Authorization header", r.header.Get("X-Error-Message"))
			assert.True(t, strings.HasPrefix(r.header.Get("Content-Type"), "application/json"))
		})
	}
}

func TestOpenMode(t *testing.T) {
	s, err := New(Options{})
	require.NoError(t, err)
	h := &hubT{t: t, s: s, hc: http.DefaultClient}
	h.url, err = s.Start("")
	require.NoError(t, err)
	defer s.Close()
	r := h.do("GET", "/api/whoami-v2", "hf_anything", nil, nil)
	require.Equal(t, 200, r.status)
	assert.Equal(t, "user", r.obj(t)["name"])
	assert.Equal(t, 401, h.do("GET", "/api/whoami-v2", "not_hf", nil, nil).status)
	r = h.postJSON("/api/repos/create", "hf_x", map[string]any{"name": "m", "organization": "some-org"})
	require.Equal(t, 200, r.status, "%s", r.body)
}

func TestCreateRepo(t *testing.T) {
	h := newHub(t, Options{})
	r := h.postJSON("/api/repos/create", aliceTok, map[string]any{"name": "model", "organization": "alice", "type": "model"})
	require.Equal(t, 200, r.status, "%s", r.body)
	m := r.obj(t)
	assert.Equal(t, h.url+"/alice/model", m["url"])
	assert.Equal(t, "alice/model", m["name"])
	assert.Regexp(t, "^[0-9a-f]{24}$", m["id"])

	tests := []struct {
		name   string
		tok    string
		body   map[string]any
		status int
		url    string
	}{
		{"existing repo is 409 with url", aliceTok, map[string]any{"name": "model", "organization": "alice"}, 409, h.url + "/alice/model"},
		{"case-insensitive ids", aliceTok, map[string]any{"name": "MODEL", "organization": "alice"}, 409, h.url + "/alice/model"},
		{"organization null means the user", aliceTok, map[string]any{"name": "model", "organization": nil}, 409, h.url + "/alice/model"},
		{"dataset of the same name", aliceTok, map[string]any{"name": "model", "organization": "alice", "type": "dataset"}, 200, h.url + "/datasets/alice/model"},
		{"private via visibility", aliceTok, map[string]any{"name": "secret", "organization": "alice", "visibility": "private"}, 200, h.url + "/alice/secret"},
		{"other namespace", aliceTok, map[string]any{"name": "x", "organization": "bob"}, 403, ""},
		{"no token", "", map[string]any{"name": "x", "organization": "alice"}, 401, ""},
		{"bad name", aliceTok, map[string]any{"name": "a--b", "organization": "alice"}, 400, ""},
		{"name ending .git", aliceTok, map[string]any{"name": "a.git", "organization": "alice"}, 400, ""},
		{"bad type", aliceTok, map[string]any{"name": "z", "organization": "alice", "type": "models"}, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.postJSON("/api/repos/create", tt.tok, tt.body)
			require.Equal(t, tt.status, r.status, "%s", r.body)
			if tt.url != "" {
				assert.Equal(t, tt.url, r.obj(t)["url"])
			}
		})
	}

	// The initial commit holds the Hub's default .gitattributes.
	r = h.do("GET", "/alice/model/resolve/main/.gitattributes", "", nil, nil)
	require.Equal(t, 200, r.status)
	assert.Contains(t, string(r.body), "*.safetensors filter=lfs diff=lfs merge=lfs -text\n")
	assert.Contains(t, string(r.body), "*.lfs.* filter=lfs")

	// A private repo is invisible to others.
	assert.Equal(t, 401, h.do("GET", "/api/models/alice/secret", "", nil, nil).status)
	r = h.do("GET", "/api/models/alice/secret", bobTok, nil, nil)
	assert.Equal(t, 404, r.status)
	assert.Equal(t, "RepoNotFound", r.header.Get("X-Error-Code"))
	assert.Equal(t, 200, h.do("GET", "/api/models/alice/secret", aliceTok, nil, nil).status)

	// Delete, then it is gone and can be created again.
	b, _ := json.Marshal(map[string]any{"name": "model", "organization": "alice", "type": "model"})
	assert.Equal(t, 403, h.do("DELETE", "/api/repos/delete", bobTok, nil, b).status)
	require.Equal(t, 200, h.do("DELETE", "/api/repos/delete", aliceTok, nil, b).status)
	r = h.do("GET", "/api/models/alice/model", aliceTok, nil, nil)
	assert.Equal(t, 404, r.status)
	assert.Equal(t, "RepoNotFound", r.header.Get("X-Error-Code"))
	assert.Equal(t, 404, h.do("DELETE", "/api/repos/delete", aliceTok, nil, b).status)
	h.createRepo("alice", "model", false)
}

func TestPreuploadModes(t *testing.T) {
	h := newHub(t, Options{})
	h.createRepo("alice", "m", false)
	text := []byte("hello world\n")
	binary := append([]byte("abc\x00def"), make([]byte, 100)...)
	big := bytes.Repeat([]byte("a"), MaxRegularFileSize)
	tests := []struct {
		path string
		data []byte
		mode string
	}{
		{"README.md", text, "regular"},
		{"model.safetensors", text, "lfs"},
		{"sub/dir/weights.bin", text, "lfs"},
		{"empty.bin", nil, "regular"},
		{"notes.lfs.txt", text, "lfs"},
		{"saved_model/a/b.txt", text, "lfs"},
		{"events.out.tfevents.123", text, "lfs"},
		{"blob.dat", binary, "lfs"},
		{"latin1.txt", []byte("caf\xe9"), "lfs"},
		{"big.txt", big, "lfs"},
		{"utf8.txt", []byte("café ✓"), "regular"},
	}
	var files []upFile
	for _, tt := range tests {
		files = append(files, upFile{tt.path, tt.data})
	}
	modes, head := h.preupload("alice/m", "main", files)
	assert.Equal(t, h.head("alice/m", "main"), head)
	for _, tt := range tests {
		assert.Equal(t, tt.mode, modes[tt.path].UploadMode, tt.path)
		assert.False(t, *modes[tt.path].ShouldIgnore, tt.path)
		assert.Empty(t, modes[tt.path].Oid, tt.path)
	}

	// JS sends the .gitattributes being committed; PY sends gitIgnore.
	r := h.postJSON("/api/models/alice/m/preupload/main", aliceTok, map[string]any{
		"files":         []map[string]any{{"path": "x.custom", "sample": sample(text), "size": len(text)}, {"path": "logs/a.txt", "sample": "", "size": 3}, {"path": "keep.txt", "sample": "", "size": 3}},
		"gitAttributes": "*.custom filter=lfs diff=lfs merge=lfs -text\n",
		"gitIgnore":     "logs/\n*.txt\n!keep.txt\n",
	})
	require.Equal(t, 200, r.status, "%s", r.body)
	var out struct{ Files []preFile }
	r.json(t, &out)
	assert.Equal(t, "lfs", out.Files[0].UploadMode)
	assert.False(t, *out.Files[0].ShouldIgnore)
	assert.True(t, *out.Files[1].ShouldIgnore)
	assert.False(t, *out.Files[2].ShouldIgnore)

	// Errors.
	for _, c := range []struct {
		name, path, tok string
		body            any
		status          int
		code            string
	}{
		{"missing repo", "/api/models/alice/nope/preupload/main", aliceTok, map[string]any{"files": []any{}}, 404, "RepoNotFound"},
		{"missing revision", "/api/models/alice/m/preupload/nope", aliceTok, map[string]any{"files": []any{}}, 404, "RevisionNotFound"},
		{"read-only user", "/api/models/alice/m/preupload/main", bobTok, map[string]any{"files": []any{}}, 403, ""},
		{"bad path", "/api/models/alice/m/preupload/main", aliceTok, map[string]any{"files": []any{map[string]any{"path": "../x", "sample": "", "size": 1}}}, 400, ""},
	} {
		r := h.postJSON(c.path, c.tok, c.body)
		assert.Equal(t, c.status, r.status, c.name)
		assert.Equal(t, c.code, r.header.Get("X-Error-Code"), c.name)
	}
}

// TestUploadFlows runs the whole client sequence — preupload, LFS batch,
// basic and multipart uploads, commit — then lists and downloads.
func TestUploadFlows(t *testing.T) {
	const chunk = 1000
	h := newHub(t, Options{ChunkSize: chunk, TreePageSize: 3})
	h.createRepo("alice", "m", false)
	small := pseudoRandom(700, 1)  // basic
	large := pseudoRandom(3500, 2) // 4 parts
	exact := pseudoRandom(2000, 3) // 2 full parts
	config := []byte(`{"a": 1}` + "\n")
	files := []upFile{
		{"unet/small.safetensors", small}, {"unet/large.safetensors", large}, {"vae/exact.bin", exact},
		{"config.json", config}, {"empty.txt", nil}, {"a/b/c/deep.txt", []byte("deep")},
	}
	res := h.push("alice/m", "main", files)
	head := h.head("alice/m", "main")
	assert.Equal(t, head, res["commitOid"])
	assert.Equal(t, h.url+"/alice/m/commit/"+head, res["commitUrl"])
	assert.Equal(t, true, res["success"])

	// The multipart batch offered 5-digit part keys and chunk_size.
	for _, f := range []upFile{files[0], files[1], files[2]} {
		p, ok := h.s.Object(sha256hex(f.data))
		require.True(t, ok, f.path)
		assert.FileExists(t, p)
	}

	// Recorded: no Authorization ever reached an upload handler; parts and
	// completion happened.
	var parts, completes, basics int
	for _, r := range h.s.Requests() {
		switch r.Class {
		case ClassLFSUpload, ClassLFSComplete:
			assert.False(t, r.Auth, "%s %s", r.Method, r.Path)
			if strings.HasPrefix(r.Path, "/_emu/lfs/part/") {
				parts++
			} else if r.Class == ClassLFSComplete {
				completes++
			} else {
				basics++
			}
		case ClassCommit, ClassLFSBatch, ClassPreupload, ClassLFSVerify:
			assert.True(t, r.Auth)
		}
	}
	assert.Equal(t, 6, parts)
	assert.Equal(t, 2, completes)
	assert.Equal(t, 1, basics)

	// Tree: recursive, paginated by 3 with Link headers as JS parses them.
	linkRE := regexp.MustCompile(`<(https?:[/][/][^>]+)>;\s+rel="([^"]+)"`)
	var all []treeEntry
	next := "/api/models/alice/m/tree/main?recursive=true&expand=false"
	pages := 0
	for next != "" {
		r := h.do("GET", next, "", map[string]string{"Accept": "application/json"}, nil)
		require.Equal(t, 200, r.status, "%s", r.body)
		var page []treeEntry
		r.json(t, &page)
		assert.LessOrEqual(t, len(page), 3)
		all = append(all, page...)
		next = ""
		if l := r.header.Get("Link"); l != "" {
			m := linkRE.FindStringSubmatch(l)
			require.NotNil(t, m, l)
			require.Equal(t, "next", m[2])
			next = m[1]
		}
		pages++
	}
	var paths []string
	byPath := map[string]treeEntry{}
	for _, e := range all {
		paths = append(paths, e.Path)
		byPath[e.Path] = e
	}
	assert.Equal(t, []string{".gitattributes", "a", "a/b", "a/b/c", "a/b/c/deep.txt", "config.json", "empty.txt",
		"unet", "unet/large.safetensors", "unet/small.safetensors", "vae", "vae/exact.bin"}, paths)
	assert.Equal(t, 4, pages)
	lg := byPath["unet/large.safetensors"]
	require.NotNil(t, lg.LFS)
	assert.Equal(t, sha256hex(large), lg.LFS.Oid)
	assert.Equal(t, int64(3500), lg.Size)
	ptr := fmt.Sprintf("version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize 3500\n", sha256hex(large))
	assert.Equal(t, len(ptr), lg.LFS.PointerSize)
	assert.Equal(t, gitBlobSHA1([]byte(ptr)), lg.Oid)
	assert.Equal(t, gitBlobSHA1(config), byPath["config.json"].Oid)
	assert.Nil(t, byPath["config.json"].LFS)
	assert.Equal(t, "directory", byPath["unet"].Type)

	// Non-recursive listing of a folder, with JS's raw and PY's encoded paths.
	for _, p := range []string{"/api/models/alice/m/tree/main/unet", "/api/models/alice/m/tree/main/a%2Fb"} {
		r := h.do("GET", p+"?recursive=false", "", nil, nil)
		require.Equal(t, 200, r.status, "%s", r.body)
		var page []treeEntry
		r.json(t, &page)
		require.NotEmpty(t, page)
	}
	r := h.do("GET", "/api/models/alice/m/tree/main/nope", "", nil, nil)
	assert.Equal(t, 404, r.status)
	assert.Equal(t, "EntryNotFound", r.header.Get("X-Error-Code"))

	// Tree ids are git's: the root's id matches one computed by hand.
	gitTree := func(entries ...string) string {
		var body []byte
		for i := 0; i < len(entries); i += 3 {
			raw, _ := hex.DecodeString(entries[i+2])
			body = append(append(body, entries[i]+" "+entries[i+1]+"\x00"...), raw...)
		}
		s := sha1.New()
		fmt.Fprintf(s, "tree %d\x00", len(body))
		s.Write(body)
		return hex.EncodeToString(s.Sum(nil))
	}
	assert.Equal(t, gitTree("100644", "deep.txt", gitBlobSHA1([]byte("deep"))), byPath["a/b/c"].Oid)

	// Resolve: GET, HEAD and Range give the same bytes and the Hub's headers.
	for _, f := range files {
		u := "/alice/m/resolve/main/" + f.path
		r := h.do("GET", u, "", nil, nil)
		require.Equal(t, 200, r.status, f.path)
		assert.Equal(t, len(f.data), len(r.body), f.path)
		assert.True(t, bytes.Equal(f.data, r.body), f.path)
		assert.Equal(t, head, r.header.Get("X-Repo-Commit"))
		want := gitBlobSHA1(f.data)
		if strings.HasSuffix(f.path, ".safetensors") || strings.HasSuffix(f.path, ".bin") {
			want = sha256hex(f.data)
		}
		assert.Equal(t, `"`+want+`"`, r.header.Get("ETag"), f.path)
		assert.Equal(t, r.header.Get("ETag"), r.header.Get("X-Linked-Etag"))
		assert.Equal(t, fmt.Sprint(len(f.data)), r.header.Get("X-Linked-Size"))

		hd := h.do("HEAD", u, "", nil, nil)
		require.Equal(t, 200, hd.status)
		assert.Empty(t, hd.body)
		assert.Equal(t, fmt.Sprint(len(f.data)), hd.header.Get("Content-Length"))
		assert.Equal(t, r.header.Get("ETag"), hd.header.Get("ETag"))

		probe := h.do("GET", u, "", map[string]string{"Range": "bytes=0-0"}, nil)
		if len(f.data) == 0 {
			assert.Equal(t, 200, probe.status)
			assert.Equal(t, "bytes */0", probe.header.Get("Content-Range"))
			continue
		}
		assert.Equal(t, 206, probe.status)
		assert.Equal(t, fmt.Sprintf("bytes 0-0/%d", len(f.data)), probe.header.Get("Content-Range"))
		// Reassemble from ranges.
		var got []byte
		for off := 0; off < len(f.data); off += 999 {
			end := min(off+999, len(f.data)) - 1
			rr := h.do("GET", u, "", map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", off, end)}, nil)
			require.Equal(t, 206, rr.status)
			got = append(got, rr.body...)
		}
		assert.True(t, bytes.Equal(f.data, got), f.path)
	}
	r = h.do("GET", "/alice/m/raw/main/unet/large.safetensors", "", nil, nil)
	assert.Equal(t, ptr, string(r.body))
	r = h.do("GET", "/alice/m/resolve/main/missing.txt", "", nil, nil)
	assert.Equal(t, 404, r.status)
	assert.Equal(t, "EntryNotFound", r.header.Get("X-Error-Code"))
	assert.Equal(t, head, r.header.Get("X-Repo-Commit"))
	r = h.do("GET", "/alice/m/resolve/nope/config.json", "", nil, nil)
	assert.Equal(t, "RevisionNotFound", r.header.Get("X-Error-Code"))
	r = h.do("GET", "/alice/m/resolve/"+head+"/config.json", "", nil, nil)
	assert.Equal(t, config, r.body)

	// paths-info, JSON (JS) and form (PY).
	r = h.postJSON("/api/models/alice/m/paths-info/main", "", map[string]any{"paths": []string{"config.json", "unet", "nope"}})
	require.Equal(t, 200, r.status)
	var info []treeEntry
	r.json(t, &info)
	require.Len(t, info, 2)
	form := url.Values{"paths": {"unet/large.safetensors"}, "expand": {"false"}}
	r = h.do("POST", "/api/models/alice/m/paths-info/main", "", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, []byte(form.Encode()))
	r.json(t, &info)
	require.Len(t, info, 1)
	assert.Equal(t, sha256hex(large), info[0].LFS.Oid)

	// Repo info lists the files.
	r = h.do("GET", "/api/models/alice/m?blobs=true", "", nil, nil)
	m := r.obj(t)
	assert.Equal(t, "alice/m", m["id"])
	assert.Equal(t, head, m["sha"])
	assert.Len(t, m["siblings"], 7)
}

// TestSkipSemantics: stored objects get no actions; preupload returns the
// oid of files already present (sha256 for LFS, git sha1 for regular).
func TestSkipSemantics(t *testing.T) {
	h := newHub(t, Options{ChunkSize: 1000})
	h.createRepo("alice", "m", false)
	lfsData := pseudoRandom(5000, 9)
	regular := []byte("config\n")
	files := []upFile{{"w.safetensors", lfsData}, {"c.txt", regular}}
	h.push("alice/m", "main", files)

	modes, _ := h.preupload("alice/m", "main", files)
	assert.Equal(t, sha256hex(lfsData), modes["w.safetensors"].Oid)
	assert.Equal(t, gitBlobSHA1(regular), modes["c.txt"].Oid)

	h.s.ResetRequests()
	objs := h.batch("alice/m", files[:1])
	assert.Nil(t, objs[0].Actions)
	assert.Nil(t, objs[0].Error)
	assert.Equal(t, sha256hex(lfsData), objs[0].Oid)
	// Another repo does not have it: the batch asks for the bytes again
	// (objects are per repo, as on the Hub).
	h.createRepo("alice", "other", false)
	assert.NotNil(t, h.batch("alice/other", files[:1])[0].Actions["upload"])

	// A size that differs from the stored object is a per-object error.
	b, _ := json.Marshal(map[string]any{"operation": "upload", "transfers": []string{"basic"},
		"objects": []map[string]any{{"oid": sha256hex(lfsData), "size": 1}, {"oid": "XYZ", "size": 1}}})
	r := h.do("POST", "/alice/m.git/info/lfs/objects/batch", aliceTok, map[string]string{"Content-Type": lfsContentType}, b)
	var out struct{ Objects []batchObj }
	r.json(t, &out)
	require.NotNil(t, out.Objects[0].Error)
	assert.Equal(t, 422, out.Objects[0].Error.Code)
	require.NotNil(t, out.Objects[1].Error)
	for _, rq := range h.s.Requests() {
		assert.NotEqual(t, ClassLFSUpload, rq.Class)
	}
	// Without "multipart" in transfers, a large object gets a basic PUT.
	other := pseudoRandom(5000, 10)
	b, _ = json.Marshal(map[string]any{"operation": "upload", "transfers": []string{"basic"},
		"objects": []map[string]any{{"oid": sha256hex(other), "size": len(other)}}})
	r = h.do("POST", "/alice/m.git/info/lfs/objects/batch", aliceTok, map[string]string{"Content-Type": lfsContentType}, b)
	r.json(t, &out)
	assert.NotContains(t, out.Objects[0].Actions["upload"].Header, "chunk_size")
}

func TestCreatePR(t *testing.T) {
	h := newHub(t, Options{})
	h.createRepo("alice", "m", false)
	h.push("alice/m", "main", []upFile{{"a.txt", []byte("a")}})
	mainHead := h.head("alice/m", "main")

	for n := 1; n <= 2; n++ {
		r := h.commit("alice/m", "main", "?create_pr=1", commitBody("PR", "", fileLine("pr.txt", []byte(fmt.Sprint("pr", n)))))
		require.Equal(t, 200, r.status, "%s", r.body)
		m := r.obj(t)
		assert.Equal(t, fmt.Sprintf("%s/alice/m/discussions/%d", h.url, n), m["pullRequestUrl"])
		assert.Equal(t, h.url+"/alice/m/commit/"+m["commitOid"].(string), m["commitUrl"])
		assert.Equal(t, m["commitOid"], h.head("alice/m", fmt.Sprintf("refs/pr/%d", n)))
	}
	assert.Equal(t, mainHead, h.head("alice/m", "main"), "main does not move")

	// refs/pr/1 as JS sends it to resolve (encoded) and tree (raw).
	r := h.do("GET", "/alice/m/resolve/refs%2Fpr%2F1/pr.txt", "", nil, nil)
	assert.Equal(t, "pr1", string(r.body))
	r = h.do("GET", "/alice/m/resolve/refs/pr/2/pr.txt", "", nil, nil)
	assert.Equal(t, "pr2", string(r.body))
	r = h.do("GET", "/api/models/alice/m/tree/refs/pr/1?recursive=true", "", nil, nil)
	require.Equal(t, 200, r.status, "%s", r.body)
	assert.Contains(t, string(r.body), `"path":"pr.txt"`)

	// Committing onto the PR ref moves it.
	r = h.commit("alice/m", "refs/pr/1", "", commitBody("more", "", fileLine("more.txt", []byte("m"))))
	require.Equal(t, 200, r.status, "%s", r.body)
	assert.Equal(t, r.obj(t)["commitOid"], h.head("alice/m", "refs/pr/1"))
	r = h.do("GET", "/api/models/alice/m/refs?include_prs=1", "", nil, nil)
	assert.Len(t, r.obj(t)["pullRequests"], 2)
}

func TestCommitRules(t *testing.T) {
	h := newHub(t, Options{})
	h.createRepo("alice", "m", false)
	head := h.head("alice/m", "main")
	limit := bytes.Repeat([]byte("x"), MaxRegularFileSize)
	tests := []struct {
		name   string
		rev    string
		body   []byte
		status int
		code   string
		msg    string
	}{
		{"exactly 10 MiB regular", "main", commitBody("ok", "", fileLine("ten.txt", limit)), 200, "", ""},
		{"over 10 MiB regular", "main", commitBody("big", "", fileLine("big.txt", append(limit, 'y'))), 400, "", "larger than 10 MiB"},
		{"stale parentCommit", "main", commitBody("x", head, fileLine("x.txt", []byte("x"))), 412, "", "The branch was updated"},
		{"unknown parentCommit", "main", commitBody("x", strings.Repeat("0", 40), fileLine("x.txt", []byte("x"))), 412, "", ""},
		{"LFS object never uploaded", "main", commitBody("x", "", lfsLine("w.bin", []byte("never"))), 400, "", "does not exist"},
		{"delete a missing file", "main", commitBody("x", "", map[string]any{"key": "deletedFile", "value": map[string]any{"path": "nope"}}), 404, "EntryNotFound", ""},
		{"unknown branch", "nope", commitBody("x", "", fileLine("x.txt", []byte("x"))), 404, "RevisionNotFound", ""},
		{"no header", "main", []byte(`{"key":"file","value":{"path":"a","content":""}}`), 400, "", "header"},
		{"path traversal", "main", commitBody("x", "", fileLine("../etc/passwd", []byte("x"))), 400, "", "Invalid path"},
		{"absolute path", "main", commitBody("x", "", fileLine("/etc/passwd", []byte("x"))), 400, "", "Invalid path"},
		{".git folder", "main", commitBody("x", "", fileLine(".git/config", []byte("x"))), 400, "", "Invalid path"},
		{"empty segment", "main", commitBody("x", "", fileLine("a//b", []byte("x"))), 400, "", "Invalid path"},
		{"file under a file", "main", commitBody("x", "", fileLine(".gitattributes/x", []byte("x"))), 400, "", "conflict"},
		{"unknown key", "main", commitBody("x", "", map[string]any{"key": "bogus", "value": map[string]any{"path": "a"}}), 400, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.head("alice/m", "main")
			r := h.commit("alice/m", tt.rev, "", tt.body)
			require.Equal(t, tt.status, r.status, "%s", r.body)
			assert.Equal(t, tt.code, r.header.Get("X-Error-Code"))
			if tt.msg != "" {
				assert.Contains(t, r.obj(t)["error"], tt.msg)
			}
			if tt.status != 200 {
				assert.Equal(t, before, h.head("alice/m", "main"), "a refused commit changes nothing")
			}
		})
	}

	// The right parentCommit succeeds; JS style (no trailing newline) too.
	cur := h.head("alice/m", "main")
	body := bytes.TrimRight(commitBody("p", cur, fileLine("p.txt", []byte("p")), map[string]any{"key": "deletedFile", "value": map[string]any{"path": "ten.txt"}}), "\n")
	r := h.commit("alice/m", "main", "", body)
	require.Equal(t, 200, r.status, "%s", r.body)
	r = h.do("GET", "/alice/m/resolve/main/ten.txt", "", nil, nil)
	assert.Equal(t, 404, r.status)
	// deletedFolder.
	h.push("alice/m", "main", []upFile{{"logs/a.txt", []byte("a")}, {"logs/b/c.txt", []byte("c")}})
	r = h.commit("alice/m", "main", "", commitBody("rm", "", map[string]any{"key": "deletedFolder", "value": map[string]any{"path": "logs/"}}))
	require.Equal(t, 200, r.status, "%s", r.body)
	assert.Equal(t, 404, h.do("GET", "/api/models/alice/m/tree/main/logs", "", nil, nil).status)

	// History.
	r = h.do("GET", "/api/models/alice/m/commits/main", "", nil, nil)
	var commits []map[string]any
	r.json(t, &commits)
	require.GreaterOrEqual(t, len(commits), 4)
	assert.Equal(t, "initial commit", commits[len(commits)-1]["title"])
}

func TestBranches(t *testing.T) {
	h := newHub(t, Options{})
	h.createRepo("alice", "m", false)
	h.push("alice/m", "main", []upFile{{"a.txt", []byte("a")}})
	main := h.head("alice/m", "main")
	r := h.do("POST", "/api/models/alice/m/branch/dev/x", aliceTok, nil, nil)
	require.Equal(t, 200, r.status, "%s", r.body)
	assert.Equal(t, main, h.head("alice/m", "dev/x"))
	assert.Equal(t, 409, h.do("POST", "/api/models/alice/m/branch/dev%2Fx", aliceTok, nil, nil).status)
	h.push("alice/m", "dev/x", []upFile{{"b.txt", []byte("b")}})
	assert.Equal(t, main, h.head("alice/m", "main"))
	// A branch name with '/' in a raw resolve URL.
	r = h.do("GET", "/alice/m/resolve/dev/x/b.txt", "", nil, nil)
	assert.Equal(t, "b", string(r.body))
	b, _ := json.Marshal(map[string]string{"startingPoint": main})
	require.Equal(t, 200, h.do("POST", "/api/models/alice/m/branch/old", aliceTok, nil, b).status)
	assert.Equal(t, 400, h.do("POST", "/api/models/alice/m/branch/a..b", aliceTok, nil, nil).status)
	assert.Equal(t, 403, h.do("POST", "/api/models/alice/m/branch/z", bobTok, nil, nil).status)
	assert.Equal(t, 403, h.do("DELETE", "/api/models/alice/m/branch/main", aliceTok, nil, nil).status)
	require.Equal(t, 200, h.do("DELETE", "/api/models/alice/m/branch/dev%2Fx", aliceTok, nil, nil).status)
	r = h.do("GET", "/api/models/alice/m/revision/dev%2Fx", "", nil, nil)
	assert.Equal(t, "RevisionNotFound", r.header.Get("X-Error-Code"))
}

func TestGatedRepo(t *testing.T) {
	h := newHub(t, Options{})
	h.createRepo("alice", "g", false)
	b, _ := json.Marshal(map[string]any{"gated": "auto"})
	require.Equal(t, 200, h.do("PUT", "/api/models/alice/g/settings", aliceTok, nil, b).status)
	r := h.do("GET", "/alice/g/resolve/main/.gitattributes", "", nil, nil)
	assert.Equal(t, 401, r.status)
	assert.Equal(t, "GatedRepo", r.header.Get("X-Error-Code"))
	r = h.do("GET", "/alice/g/resolve/main/.gitattributes", bobTok, nil, nil)
	assert.Equal(t, 403, r.status)
	assert.Equal(t, "GatedRepo", r.header.Get("X-Error-Code"))
	assert.Equal(t, 200, h.do("GET", "/alice/g/resolve/main/.gitattributes", aliceTok, nil, nil).status)
}

func TestRefusedIDsAndPaths(t *testing.T) {
	h := newHub(t, Options{})
	h.createRepo("alice", "m", false)
	tests := []struct {
		name, method, path string
		status             int
	}{
		{"double dash id", "GET", "/api/models/alice/a--b", 400},
		{"dotdot id", "GET", "/api/models/alice/a..b", 400},
		{".git suffix id", "GET", "/api/models/alice/x.git", 400},
		{"encoded traversal in id", "GET", "/api/models/%2e%2e/m", 400},
		{"traversal in resolve", "GET", "/alice/m/resolve/main/..%2f..%2fetc%2fpasswd", 400},
		{"dot segment in resolve", "GET", "/alice/m/resolve/main/a/./b", 400},
		{".git in tree", "GET", "/api/models/alice/m/tree/main/.git", 400},
		{"unknown route", "GET", "/api/nothing", 404},
		{"wrong method", "DELETE", "/api/whoami-v2", 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do(tt.method, tt.path, aliceTok, nil, nil)
			assert.Equal(t, tt.status, r.status, "%s", r.body)
		})
	}
	for _, p := range []string{"a", "a/b.c", "dir/.hidden", "x..y"} {
		assert.NoError(t, validatePath(p), p)
	}
	for _, p := range []string{"", ".", "..", "a/../b", "/a", "a/", ".cache/x", "a\\b", "a\x00"} {
		assert.Error(t, validatePath(p), p)
	}
}

func TestUploadHandlersRefuseAuthorization(t *testing.T) {
	h := newHub(t, Options{ChunkSize: 100})
	h.createRepo("alice", "m", false)
	data := pseudoRandom(50, 1)
	o := h.batch("alice/m", []upFile{{"w.bin", data}})[0]
	href := o.Actions["upload"].Href
	r := h.do("PUT", href, aliceTok, nil, data)
	assert.Equal(t, 400, r.status)
	_, stored := h.s.Object(o.Oid)
	assert.False(t, stored)
	var seen bool
	for _, rq := range h.s.Requests() {
		if rq.Class == ClassLFSUpload {
			seen = true
			assert.True(t, rq.Auth)
			assert.Empty(t, rq.Header.Get("Authorization"), "the token is not recorded")
		}
	}
	assert.True(t, seen)
	// A tampered or unsigned URL is refused; wrong bytes are refused.
	assert.Equal(t, 403, h.do("PUT", strings.Replace(href, "size=50", "size=51", 1), "", nil, data).status)
	assert.Equal(t, 403, h.do("PUT", h.url+"/_emu/lfs/upload/"+o.Oid+"?size=50", "", nil, data).status)
	assert.Equal(t, 400, h.do("PUT", href, "", nil, pseudoRandom(50, 2)).status)
	assert.Equal(t, 400, h.do("PUT", href, "", nil, data[:49]).status)
	assert.Equal(t, 200, h.do("PUT", href, "", nil, data).status)
	_, stored = h.s.Object(o.Oid)
	assert.True(t, stored)
}

func TestMultipartCompletionChecks(t *testing.T) {
	h := newHub(t, Options{ChunkSize: 100})
	h.createRepo("alice", "m", false)
	data := pseudoRandom(250, 4)
	o := h.batch("alice/m", []upFile{{"w.bin", data}})[0]
	up := o.Actions["upload"]
	require.Equal(t, "100", up.Header["chunk_size"])
	keys := []string{"00001", "00002", "00003"}
	for _, k := range keys {
		require.Contains(t, up.Header, k)
	}
	require.Len(t, up.Header, 4)
	complete := func(parts []map[string]any) resp {
		b, _ := json.Marshal(map[string]any{"oid": o.Oid, "parts": parts})
		return h.do("POST", up.Href, "", map[string]string{"Content-Type": lfsContentType}, b)
	}
	var etags []string
	for i, k := range keys {
		r := h.do("PUT", up.Header[k], "", nil, data[i*100:min((i+1)*100, len(data))])
		require.Equal(t, 200, r.status, "%s", r.body)
		etags = append(etags, r.header.Get("ETag"))
	}
	assert.Equal(t, 400, h.do("PUT", up.Header["00003"], "", nil, data[:100]).status, "last part is 50 bytes")
	bad := []map[string]any{{"partNumber": 1, "etag": etags[0]}, {"partNumber": 2, "etag": `"00"`}, {"partNumber": 3, "etag": etags[2]}}
	assert.Equal(t, 400, complete(bad).status)
	assert.Equal(t, 400, complete(bad[:2]).status)
	good := []map[string]any{{"partNumber": 1, "etag": etags[0]}, {"partNumber": 2, "etag": etags[1]}, {"partNumber": 3, "etag": etags[2]}}
	require.Equal(t, 200, complete(good).status)
	p, ok := h.s.Object(o.Oid)
	require.True(t, ok)
	assert.FileExists(t, p)
	assert.Equal(t, 200, complete(good).status, "a repeated completion is fine")

	// Parts whose bytes do not hash to the oid fail the completion.
	data2 := pseudoRandom(150, 5)
	o2 := h.batch("alice/m", []upFile{{"v.bin", data2}})[0]
	up2 := o2.Actions["upload"]
	r1 := h.do("PUT", up2.Header["00001"], "", nil, pseudoRandom(100, 6))
	r2 := h.do("PUT", up2.Header["00002"], "", nil, data2[100:])
	b, _ := json.Marshal(map[string]any{"oid": o2.Oid, "parts": []map[string]any{{"partNumber": 1, "etag": r1.header.Get("ETag")}, {"partNumber": 2, "etag": r2.header.Get("ETag")}}})
	r := h.do("POST", up2.Href, "", nil, b)
	assert.Equal(t, 400, r.status)
	assert.Contains(t, string(r.body), "sha256")
	_, ok = h.s.Object(o2.Oid)
	assert.False(t, ok)
}

func TestPersistence(t *testing.T) {
	dir := t.TempDir()
	s, err := New(Options{Dir: dir, Tokens: map[string]string{aliceTok: "alice"}})
	require.NoError(t, err)
	u, err := s.Start("127.0.0.1:0")
	require.NoError(t, err)
	h := &hubT{t: t, s: s, url: u, hc: http.DefaultClient}
	h.createRepo("alice", "m", false)
	h.push("alice/m", "main", []upFile{{"w.safetensors", pseudoRandom(3000, 1)}, {"c.txt", []byte("c")}})
	head := h.head("alice/m", "main")
	require.NoError(t, s.Close())
	assert.DirExists(t, dir)

	s2, err := New(Options{Dir: dir, Tokens: map[string]string{aliceTok: "alice"}})
	require.NoError(t, err)
	u, err = s2.Start("127.0.0.1:0")
	require.NoError(t, err)
	defer s2.Close()
	h = &hubT{t: t, s: s2, url: u, hc: http.DefaultClient}
	assert.Equal(t, head, h.head("alice/m", "main"))
	r := h.do("GET", "/alice/m/resolve/main/w.safetensors", "", nil, nil)
	assert.Equal(t, pseudoRandom(3000, 1), r.body)
	assert.Equal(t, 409, h.postJSON("/api/repos/create", aliceTok, map[string]any{"name": "m", "organization": "alice"}).status)
}

// TestConcurrentUploads pushes from many goroutines at once into one
// repo; run with -race.
func TestConcurrentUploads(t *testing.T) {
	h := newHub(t, Options{ChunkSize: 512})
	h.createRepo("alice", "m", false)
	shared := pseudoRandom(2000, 99) // every worker uploads this one too
	const workers = 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.push("alice/m", "main", []upFile{
				{fmt.Sprintf("w%d/model.safetensors", w), pseudoRandom(1500+w*300, byte(w))},
				{fmt.Sprintf("w%d/shared.bin", w), shared},
				{fmt.Sprintf("w%d/config.json", w), []byte(fmt.Sprintf(`{"w":%d}`, w))},
			})
		}()
	}
	wg.Wait()
	r := h.do("GET", "/api/models/alice/m/tree/main?recursive=true", "", nil, nil)
	var all []treeEntry
	r.json(t, &all)
	var files []string
	for _, e := range all {
		if e.Type == "file" {
			files = append(files, e.Path)
		}
	}
	sort.Strings(files)
	assert.Len(t, files, 1+3*workers)
	for w := range workers {
		r := h.do("GET", fmt.Sprintf("/alice/m/resolve/main/w%d/model.safetensors", w), "", nil, nil)
		assert.Equal(t, pseudoRandom(1500+w*300, byte(w)), r.body)
	}
	r = h.do("GET", "/api/models/alice/m/commits/main", "", nil, nil)
	var commits []any
	r.json(t, &commits)
	assert.Len(t, commits, 1+workers)
}

func TestRepoPage(t *testing.T) {
	h := newHub(t, Options{})
	h.createRepo("alice", "m", false)
	res := h.push("alice/m", "main", []upFile{{"w.safetensors", pseudoRandom(100, 1)}, {"c.txt", []byte("c")}})
	r := h.do("GET", "/alice/m", "", nil, nil)
	require.Equal(t, 200, r.status, "%s", r.body)
	assert.Contains(t, string(r.body), "model alice/m (public)")
	assert.Regexp(t, `LFS +100  w\.safetensors`, string(r.body))
	r = h.commit("alice/m", "main", "?create_pr=1", commitBody("pr", "", fileLine("pr.txt", []byte("p"))))
	pr := r.obj(t)["pullRequestUrl"].(string)
	r = h.do("GET", pr, "", nil, nil)
	require.Equal(t, 200, r.status, "%s", r.body)
	assert.Contains(t, string(r.body), "pr.txt")
	r = h.do("GET", res["commitUrl"].(string), "", nil, nil)
	require.Equal(t, 200, r.status, "%s", r.body)
	assert.NotContains(t, string(r.body), "pr.txt")
	r = h.do("GET", "/alice/nope", aliceTok, nil, nil)
	assert.Equal(t, 404, r.status)
	assert.Equal(t, "RepoNotFound", r.header.Get("X-Error-Code"))
}

func TestOrgsAndReadTokens(t *testing.T) {
	const readTok = "hf_alice_read"
	h := newHub(t, Options{
		Tokens:     map[string]string{aliceTok: "alice", bobTok: "bob", readTok: "alice"},
		ReadTokens: map[string]bool{readTok: true},
		Orgs:       map[string]map[string]string{"studio": {"alice": "write", "bob": "read"}, "other": {"carol": "admin"}},
	})

	r := h.do("GET", "/api/whoami-v2", aliceTok, nil, nil)
	require.Equal(t, 200, r.status)
	var who struct {
		Orgs []struct{ Name, RoleInOrg string }
		Auth struct{ AccessToken struct{ Role string } }
	}
	r.json(t, &who)
	require.Len(t, who.Orgs, 1)
	assert.Equal(t, "studio", who.Orgs[0].Name)
	assert.Equal(t, "write", who.Orgs[0].RoleInOrg)
	assert.Equal(t, "write", who.Auth.AccessToken.Role)
	r = h.do("GET", "/api/whoami-v2", readTok, nil, nil)
	r.json(t, &who)
	assert.Equal(t, "read", who.Auth.AccessToken.Role)

	tests := []struct {
		name, tok, ns string
		status        int
	}{
		{"own namespace", aliceTok, "alice", 200},
		{"org with write role", aliceTok, "studio", 200},
		{"org with read role", bobTok, "studio", 403},
		{"org not a member of", aliceTok, "other", 403},
		{"read token, own namespace", readTok, "alice", 403},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.postJSON("/api/repos/create", tt.tok, map[string]any{"name": fmt.Sprintf("m%d", i), "organization": tt.ns})
			assert.Equal(t, tt.status, r.status, "%s", r.body)
		})
	}
}
