package hubemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseFaults(t *testing.T) {
	tests := []struct {
		spec string
		want FaultSpec
		err  string
	}{
		{"", FaultSpec{}, ""},
		{"seed=3,rate=0.1", FaultSpec{Seed: 3, Rate: 0.1}, ""},
		{"seed=3,rate=10%,kinds=500+503+429+drop+slow,endpoints=lfs-upload+commit,slow=50ms",
			FaultSpec{Seed: 3, Rate: 0.1, Kinds: []FaultKind{Fault500, Fault503, Fault429, FaultDrop, FaultSlow},
				Endpoints: []string{ClassLFSUpload, ClassCommit}, SlowDelay: 50 * time.Millisecond}, ""},
		{"rate=1,kinds=all,endpoints=all", FaultSpec{Rate: 1, Kinds: AllFaultKinds}, ""},
		{"rate=2", FaultSpec{}, "between 0 and 1"},
		{"rate=x", FaultSpec{}, "between 0 and 1"},
		{"seed=x", FaultSpec{}, "seed"},
		{"kinds=boom", FaultSpec{}, "unknown kind"},
		{"endpoints=upload", FaultSpec{}, "unknown endpoint"},
		{"slow=forever", FaultSpec{}, "slow"},
		{"color=red", FaultSpec{}, "unknown key"},
		{"rate", FaultSpec{}, "key=value"},
		{"first=2,kinds=500+drop,endpoints=whoami", FaultSpec{First: 2, Kinds: []FaultKind{Fault500, FaultDrop}, Endpoints: []string{ClassWhoami}}, ""},
		{"first=-1", FaultSpec{}, "first"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := ParseFaults(tt.spec)
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			back, err := ParseFaults(got.String())
			require.NoError(t, err)
			assert.Equal(t, got, back)
		})
	}
}

// faultRun sends a fixed sequence of requests and returns the faults the
// server recorded and the statuses seen (-1 for a network error).
func faultRun(t *testing.T, spec FaultSpec) ([]FaultKind, []int) {
	h := newHub(t, Options{Faults: spec})
	h.hc.Transport = &http.Transport{DisableKeepAlives: true}
	var statuses []int
	for i := 0; i < 60; i++ {
		path := "/api/whoami-v2"
		if i%3 == 0 {
			path = "/api/models/alice/none"
		}
		r, err := h.try("GET", path, aliceTok, nil, nil)
		if err != nil {
			statuses = append(statuses, -1)
			continue
		}
		statuses = append(statuses, r.status)
		switch r.status {
		case 429:
			assert.Equal(t, "1", r.header.Get("Retry-After"))
			fallthrough
		case 500, 503:
			assert.True(t, strings.HasPrefix(r.header.Get("Content-Type"), "application/json"))
			assert.NotEmpty(t, r.header.Get("X-Error-Message"))
		}
	}
	var faults []FaultKind
	for _, r := range h.s.Requests() {
		faults = append(faults, r.Fault)
	}
	return faults, statuses
}

func TestFaultsDeterministic(t *testing.T) {
	spec := FaultSpec{Seed: 7, Rate: 0.4, Kinds: []FaultKind{Fault500, Fault503, Fault429, FaultDrop, FaultSlow}, SlowDelay: time.Millisecond}
	f1, s1 := faultRun(t, spec)
	f2, s2 := faultRun(t, spec)
	assert.Equal(t, f1, f2)
	assert.Equal(t, s1, s2)
	counts := map[FaultKind]int{}
	for _, f := range f1 {
		counts[f]++
	}
	for _, k := range spec.Kinds {
		assert.NotZero(t, counts[k], "kind %s drawn", k)
	}
	assert.InDelta(t, 36, counts[""], 12, "about 60%% of requests unharmed")
	for i, f := range f1 {
		switch f {
		case Fault500, Fault503, Fault429:
			assert.Equal(t, strconv.Itoa(s1[i]), string(f))
		case FaultDrop:
			assert.Equal(t, -1, s1[i])
		}
	}

	spec.Seed = 8
	f3, _ := faultRun(t, spec)
	assert.NotEqual(t, f1, f3, "another seed, other faults")

	spec.Endpoints = []string{ClassTree}
	f4, _ := faultRun(t, spec)
	for _, f := range f4 {
		assert.Empty(t, f, "whoami and info are not eligible")
	}
	none, _ := faultRun(t, FaultSpec{Seed: 7})
	for _, f := range none {
		assert.Empty(t, f)
	}
}

// TestLostCommit: the commit is applied, then the answer is lost. A client
// that checks the head before retrying sees it; a retry with parentCommit
// gets 412 instead of a duplicate commit.
func TestLostCommit(t *testing.T) {
	h := newHub(t, Options{Faults: FaultSpec{Seed: 1, Rate: 1, Kinds: []FaultKind{FaultLost}, Endpoints: []string{ClassCommit}}})
	h.createRepo("alice", "m", false)
	before := h.head("alice/m", "main")
	body := commitBody("x", before, fileLine("x.txt", []byte("x")))
	_, err := h.try("POST", "/api/models/alice/m/commit/main", aliceTok, map[string]string{"Content-Type": "application/x-ndjson"}, body)
	require.Error(t, err, "the answer is lost")
	after := h.head("alice/m", "main")
	assert.NotEqual(t, before, after, "the commit was applied")
	r := h.do("GET", "/alice/m/resolve/main/x.txt", "", nil, nil)
	assert.Equal(t, "x", string(r.body))
	// The naive retry would also be lost, but it changes nothing: 412.
	h.s.SetFaults(FaultSpec{})
	r = h.commit("alice/m", "main", "", body)
	assert.Equal(t, 412, r.status)
	assert.Equal(t, after, h.head("alice/m", "main"))
}

// retrying sends a request until it gets an answer that is not 429/5xx.
func (h *hubT) retrying(method, target, tok string, hdr map[string]string, body []byte) resp {
	h.t.Helper()
	for attempt := 0; attempt < 30; attempt++ {
		r, err := h.try(method, target, tok, hdr, body)
		if err == nil && r.status != 429 && r.status < 500 {
			return r
		}
	}
	h.t.Fatalf("%s %s: still failing after 30 attempts", method, target)
	return resp{}
}

// robustPush is a minimal reliable client: every step is retried, the
// commit carries parentCommit, and after a failed commit the head is
// checked before trying again.
func (h *hubT) robustPush(repo string, files []upFile) {
	t := h.t
	get := func(path string) resp { return h.retrying("GET", path, aliceTok, nil, nil) }
	r := get("/api/models/" + repo + "/revision/main")
	require.Equal(t, 200, r.status)
	parent := r.obj(t)["sha"].(string)

	var pre struct{ Files []map[string]any }
	var preFiles []map[string]any
	for _, f := range files {
		preFiles = append(preFiles, map[string]any{"path": f.path, "sample": sample(f.data), "size": len(f.data)})
	}
	b, _ := json.Marshal(map[string]any{"files": preFiles})
	r = h.retrying("POST", "/api/models/"+repo+"/preupload/main", aliceTok, map[string]string{"Content-Type": "application/json"}, b)
	require.Equal(t, 200, r.status, "%s", r.body)
	r.json(t, &pre)
	var lfs []upFile
	var lines []map[string]any
	for i, f := range files {
		if pre.Files[i]["uploadMode"] == "lfs" {
			lfs = append(lfs, f)
			lines = append(lines, lfsLine(f.path, f.data))
		} else {
			lines = append(lines, fileLine(f.path, f.data))
		}
	}
	var objs []map[string]any
	for _, f := range lfs {
		objs = append(objs, map[string]any{"oid": sha256hex(f.data), "size": len(f.data)})
	}
	b, _ = json.Marshal(map[string]any{"operation": "upload", "transfers": []string{"basic", "multipart"}, "objects": objs})
	r = h.retrying("POST", "/"+repo+".git/info/lfs/objects/batch", aliceTok, map[string]string{"Content-Type": lfsContentType}, b)
	require.Equal(t, 200, r.status, "%s", r.body)
	var batch struct{ Objects []batchObj }
	r.json(t, &batch)
	for i, o := range batch.Objects {
		up, ok := o.Actions["upload"]
		if !ok {
			continue
		}
		data := lfs[i].data
		if cs, ok := up.Header["chunk_size"]; ok {
			chunk, _ := strconv.Atoi(cs)
			var parts []map[string]any
			for n := 1; (n-1)*chunk < len(data); n++ {
				pr := h.retrying("PUT", up.Header[fmt.Sprintf("%05d", n)], "", nil, data[(n-1)*chunk:min(n*chunk, len(data))])
				require.Equal(t, 200, pr.status, "%s", pr.body)
				parts = append(parts, map[string]any{"partNumber": n, "etag": pr.header.Get("ETag")})
			}
			cb, _ := json.Marshal(map[string]any{"oid": o.Oid, "parts": parts})
			cr := h.retrying("POST", up.Href, "", nil, cb)
			require.Equal(t, 200, cr.status, "%s", cr.body)
		} else {
			pr := h.retrying("PUT", up.Href, "", nil, data)
			require.Equal(t, 200, pr.status, "%s", pr.body)
		}
	}
	body := commitBody("robust", parent, lines...)
	for attempt := 0; ; attempt++ {
		require.Less(t, attempt, 30)
		r, err := h.try("POST", "/api/models/"+repo+"/commit/main", aliceTok, map[string]string{"Content-Type": "application/x-ndjson"}, body)
		if err == nil && r.status == 200 {
			return
		}
		if err == nil && r.status != 429 && r.status < 500 && r.status != 412 {
			t.Fatalf("commit: %d %s", r.status, r.body)
		}
		if get("/api/models/" + repo + "/revision/main").obj(t)["sha"] != parent {
			return // it went through, the answer was lost
		}
	}
}

// TestReliabilityUnderFaults: with every fault kind on every upload
// related endpoint, a retrying client completes and the remote bytes are
// the local ones, for several seeds.
func TestReliabilityUnderFaults(t *testing.T) {
	for seed := int64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			spec := FaultSpec{Seed: seed, Rate: 0.25, SlowDelay: 5 * time.Millisecond,
				Endpoints: []string{ClassPreupload, ClassLFSBatch, ClassLFSUpload, ClassLFSComplete, ClassCommit}}
			h := newHub(t, Options{ChunkSize: 700, Faults: spec})
			h.createRepo("alice", "m", false)
			files := []upFile{
				{"a.safetensors", pseudoRandom(3000, byte(seed))}, {"b.bin", pseudoRandom(500, byte(seed+1))},
				{"c/d.safetensors", pseudoRandom(1400, byte(seed+2))}, {"config.json", []byte(`{"x":1}`)}, {"README.md", []byte("# hi\n")},
			}
			h.robustPush("alice/m", files)
			for _, f := range files {
				r := h.retrying("GET", "/alice/m/resolve/main/"+f.path, "", nil, nil)
				assert.True(t, bytes.Equal(f.data, r.body), f.path)
			}
			faults := 0
			for _, r := range h.s.Requests() {
				if r.Fault != "" {
					faults++
				}
			}
			assert.NotZero(t, faults)
			r := h.do("GET", "/api/models/alice/m/commits/main", "", nil, nil)
			var commits []any
			r.json(t, &commits)
			assert.Len(t, commits, 2, "exactly one commit despite lost answers")
		})
	}
}

// TestFirstFaults: First fails the first requests of each method and path,
// kinds in turn, then lets them through.
func TestFirstFaults(t *testing.T) {
	h := newHub(t, Options{Faults: FaultSpec{First: 2, Kinds: []FaultKind{Fault503, Fault500}, Endpoints: []string{ClassWhoami}}})
	var got []int
	for i := 0; i < 4; i++ {
		got = append(got, h.do("GET", "/api/whoami-v2", aliceTok, nil, nil).status)
	}
	assert.Equal(t, []int{503, 500, 200, 200}, got)
	h.createRepo("alice", "m", false) // another class: untouched
}
