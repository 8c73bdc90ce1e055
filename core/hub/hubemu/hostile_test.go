package hubemu

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Hostile peers: a user who knows the oid of someone else's LFS object must
// not get its bytes, and the batch must not tell him the object exists.

// bobBatch asks the batch of bob's repo about data.
func (h *hubT) bobBatch(repo string, data []byte) batchObj {
	h.t.Helper()
	b, _ := json.Marshal(map[string]any{"operation": "upload", "transfers": []string{"basic", "multipart"},
		"hash_algo": "sha256", "objects": []map[string]any{{"oid": sha256hex(data), "size": len(data)}}})
	r := h.do("POST", "/"+repo+".git/info/lfs/objects/batch", bobTok,
		map[string]string{"Accept": lfsContentType, "Content-Type": lfsContentType}, b)
	require.Equal(h.t, 200, r.status, "%s", r.body)
	var out struct{ Objects []batchObj }
	r.json(h.t, &out)
	require.Len(h.t, out.Objects, 1)
	return out.Objects[0]
}

func (h *hubT) bobCommit(repo string, lines ...map[string]any) resp {
	h.t.Helper()
	return h.do("POST", "/api/models/"+repo+"/commit/main", bobTok,
		map[string]string{"Content-Type": "application/x-ndjson"}, commitBody("steal", "", lines...))
}

func TestLFSObjectsBelongToTheirRepo(t *testing.T) {
	secret := pseudoRandom(3000, 42)
	public := pseudoRandom(3000, 43)
	tests := []struct {
		name      string
		private   bool // alice's repo
		committed bool // alice committed the object (else only uploaded it)
		data      []byte
		canRef    bool // bob may reference the oid without uploading it
	}{
		{"private, committed", true, true, secret, false},
		{"private, uploaded only", true, false, secret, false},
		{"public, uploaded only", false, false, public, false},
		{"public, committed", false, true, public, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHub(t, Options{ChunkSize: 1000})
			h.createRepo("alice", "vault", tt.private)
			h.createRepo("bob", "mine", false)
			if tt.committed {
				h.push("alice/vault", "main", []upFile{{"w.bin", tt.data}})
			} else {
				for _, o := range h.batch("alice/vault", []upFile{{"w.bin", tt.data}}) {
					h.uploadObject(o, tt.data)
				}
			}
			_, stored := h.s.Object(sha256hex(tt.data))
			require.True(t, stored)

			// The batch of bob's repo answers as if the object did not
			// exist: upload actions, no error naming it.
			o := h.bobBatch("bob/mine", tt.data)
			assert.Nil(t, o.Error)
			assert.NotNil(t, o.Actions["upload"], "an object bob's repo does not have is not stored for it")

			r := h.bobCommit("bob/mine", lfsLine("stolen.bin", tt.data))
			if !tt.canRef {
				assert.Equal(t, 400, r.status, "%s", r.body)
				assert.Contains(t, r.obj(t)["error"], "does not exist")
				assert.NotContains(t, h.tree("bob/mine"), "stolen.bin")
				got := h.do("GET", "/bob/mine/resolve/main/stolen.bin", bobTok, nil, nil)
				assert.Equal(t, 404, got.status)
				assert.Equal(t, "EntryNotFound", got.header.Get("X-Error-Code"))
				return
			}
			require.Equal(t, 200, r.status, "%s", r.body)
			got := h.do("GET", "/bob/mine/resolve/main/stolen.bin", bobTok, nil, nil)
			assert.Equal(t, tt.data, got.body)
		})
	}
}

// TestLFSObjectUploadedAgain: bob, who has the bytes, may upload them to his
// repo although the server stores them already; a wrong body is refused.
func TestLFSObjectUploadedAgain(t *testing.T) {
	h := newHub(t, Options{ChunkSize: 1000})
	h.createRepo("alice", "vault", true)
	h.createRepo("bob", "mine", false)
	data := pseudoRandom(1500, 7)
	h.push("alice/vault", "main", []upFile{{"w.bin", data}})

	// A basic PUT with other bytes under the oid: BadDigest, not linked.
	o := h.bobBatch("bob/mine", data[:900]) // below the multipart threshold: basic
	require.NotContains(t, o.Actions["upload"].Header, "chunk_size")
	fake := append([]byte(nil), data[:900]...)
	fake[0] ^= 1
	r := h.do("PUT", o.Actions["upload"].Href, "", nil, fake)
	assert.Equal(t, 400, r.status)
	assert.Equal(t, 400, h.bobCommit("bob/mine", lfsLine("x.bin", data[:900])).status)

	// Multipart with the real bytes, then the commit.
	o = h.bobBatch("bob/mine", data)
	require.Contains(t, o.Actions["upload"].Header, "chunk_size")
	h.uploadObject(o, data)
	r = h.bobCommit("bob/mine", lfsLine("w.bin", data))
	require.Equal(t, 200, r.status, "%s", r.body)
	assert.Nil(t, h.bobBatch("bob/mine", data).Actions, "now stored for bob's repo")
	assert.Equal(t, data, h.do("GET", "/bob/mine/resolve/main/w.bin", "", nil, nil).body)
}

// TestLFSMarkersSurviveRestart: what a repo may use is on disk.
func TestLFSMarkersSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	data := pseudoRandom(800, 3)
	h := newHub(t, Options{Dir: dir})
	h.createRepo("alice", "m", false)
	h.push("alice/m", "main", []upFile{{"w.bin", data}})
	require.NoError(t, h.s.Close())

	h2 := newHub(t, Options{Dir: dir})
	assert.Nil(t, h2.batch("alice/m", []upFile{{"w.bin", data}})[0].Actions)
	h2.createRepo("alice", "n", false)
	assert.NotNil(t, h2.batch("alice/n", []upFile{{"w.bin", data}})[0].Actions)
}

func (h *hubT) tree(repo string) string {
	h.t.Helper()
	r := h.do("GET", "/api/models/"+repo+"/tree/main?recursive=true", aliceTok, nil, nil)
	require.Equal(h.t, 200, r.status, "%s", r.body)
	return string(r.body)
}

func TestControlCharacterPathsRefused(t *testing.T) {
	h := newHub(t, Options{})
	h.createRepo("alice", "m", false)
	bad := []string{"a\nb.txt", "evil\r.txt", "bell\a", "esc\x1b[31m.txt", "del\x7f", "c1\u0085x",
		"", "a//b", "../x", "a/../b", "/abs", ".git/config", "x/.git/y", "a/./b", "trailing/"}
	for _, p := range bad {
		t.Run(strings.ToValidUTF8(p, "?"), func(t *testing.T) {
			r := h.commit("alice/m", "main", "", commitBody("bad", "", fileLine(p, []byte("x"))))
			assert.Equal(t, 400, r.status, "%s", r.body)
			assert.Equal(t, "application/json; charset=utf-8", r.header.Get("Content-Type"))
			assert.NotEmpty(t, r.obj(t)["error"])
			assert.NotEmpty(t, r.header.Get("X-Error-Message"))
			assert.NotContains(t, r.header.Get("X-Error-Message"), "\n")

			b, _ := json.Marshal(map[string]any{"files": []map[string]any{{"path": p, "sample": "", "size": 1}}})
			r = h.do("POST", "/api/models/alice/m/preupload/main", aliceTok, map[string]string{"Content-Type": "application/json"}, b)
			assert.Equal(t, 400, r.status, "%s", r.body)
		})
	}
	var entries []treeEntry
	require.NoError(t, json.Unmarshal([]byte(h.tree("alice/m")), &entries))
	require.Len(t, entries, 1, "nothing was committed")
	assert.Equal(t, ".gitattributes", entries[0].Path)
	// JSON turns invalid UTF-8 into U+FFFD on the way, so check it directly.
	assert.Error(t, validatePath("bad\xffutf8"))
	for _, p := range []string{"ok.txt", "dir/é.txt", "a b/c"} {
		assert.NoError(t, validatePath(p), p)
	}
}
