package hub

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeHub is a small Hub written from hub-protocol.md's wire formats, in
// the test so that a mistake in the client is not mirrored here. The
// upload (storage) handlers live on a second server, so a different
// origin, unless sameOrigin is set.
type fakeHub struct {
	t       *testing.T
	hub     *httptest.Server
	storage *httptest.Server
	token   string // the valid token
	role    string // its role

	mu          sync.Mutex
	chunkSize   int64 // multipart above this size; 0 → basic only
	sameOrigin  bool  // serve upload URLs on the hub's origin
	withVerify  bool
	repos       map[string]*fakeRepo
	lfs         map[string][]byte         // stored objects by sha256
	parts       map[string]map[int][]byte // multipart in progress
	calls       map[string]int            // endpoint → count
	auth        map[string][]string       // endpoint → Authorization values seen
	partCalls   map[string]int            // "oid/n" → PUT count
	commits     []fakeCommitRecord        // applied commits
	faults      map[string]func(w http.ResponseWriter, r *http.Request, n int) bool
	treePage    int              // tree page size
	preBatches  []int            // sizes of preupload batches
	batchBodies []map[string]any // lfs batch requests
}

type fakeRepo struct {
	id    string
	files map[string]fakeFile
	head  string
	n     int // commit counter
	prs   int
}

type fakeFile struct {
	content []byte // regular files
	lfsOID  string // lfs files
	size    int64
}

type fakeCommitRecord struct {
	repo, rev, summary, parent string
	paths                      []string
}

func newFakeHub(t *testing.T) *fakeHub {
	f := &fakeHub{t: t, token: "hf_testtoken", role: "write", repos: map[string]*fakeRepo{}, lfs: map[string][]byte{},
		parts: map[string]map[int][]byte{}, calls: map[string]int{}, auth: map[string][]string{}, partCalls: map[string]int{},
		faults: map[string]func(http.ResponseWriter, *http.Request, int) bool{}, treePage: 1000}
	hubMux := http.NewServeMux()
	storeMux := http.NewServeMux()
	hubMux.HandleFunc("GET /api/whoami-v2", f.wrap("whoami", true, f.whoami))
	hubMux.HandleFunc("POST /api/repos/create", f.wrap("create", true, f.create))
	hubMux.HandleFunc("GET /api/{type}/{ns}/{name}", f.wrap("info", true, f.info))
	hubMux.HandleFunc("GET /api/{type}/{ns}/{name}/revision/{rev}", f.wrap("info", true, f.info))
	hubMux.HandleFunc("POST /api/{type}/{ns}/{name}/preupload/{rev}", f.wrap("preupload", true, f.preupload))
	hubMux.HandleFunc("POST /api/{type}/{ns}/{name}/commit/{rev}", f.wrap("commit", true, f.commit))
	hubMux.HandleFunc("POST /api/{type}/{ns}/{name}/paths-info/{rev}", f.wrap("paths-info", true, f.pathsInfo))
	hubMux.HandleFunc("GET /api/{type}/{ns}/{name}/tree/{rest...}", f.wrap("tree", true, f.tree))
	hubMux.HandleFunc("POST /api/{type}/{ns}/{name}/branch/{branch}", f.wrap("branch", true, f.branch))
	hubMux.HandleFunc("POST /{ns}/{repo}/info/lfs/objects/batch", f.wrap("batch", true, f.batch))
	hubMux.HandleFunc("POST /verify/{oid}", f.wrap("verify", true, f.verify))
	for _, mux := range []*http.ServeMux{hubMux, storeMux} {
		mux.HandleFunc("PUT /upload/{oid}", f.wrap("put", false, f.putBasic))
		mux.HandleFunc("PUT /part/{oid}/{n}", f.wrap("part", false, f.putPart))
		mux.HandleFunc("POST /complete/{oid}", f.wrap("complete", false, f.complete))
	}
	f.hub = httptest.NewServer(hubMux)
	f.storage = httptest.NewServer(storeMux)
	t.Cleanup(func() { f.hub.Close(); f.storage.Close() })
	return f
}

// wrap records the call and its Authorization, applies faults, and checks
// the token on authenticated endpoints.
func (f *fakeHub) wrap(name string, needAuth bool, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.calls[name]++
		n := f.calls[name]
		if a := r.Header.Get("Authorization"); a != "" {
			f.auth[name] = append(f.auth[name], a)
		}
		fault := f.faults[name]
		f.mu.Unlock()
		if !strings.HasPrefix(r.Header.Get("User-Agent"), "modelpub/") {
			f.t.Errorf("%s: User-Agent %q does not name modelpub", name, r.Header.Get("User-Agent"))
		}
		if fault != nil && fault(w, r, n) {
			return
		}
		if needAuth && name != "tree" && name != "info" || r.Header.Get("Authorization") != "" && needAuth {
			if r.Header.Get("Authorization") != "Bearer "+f.token {
				hubError(w, http.StatusUnauthorized, "", invalidCredentials)
				return
			}
		}
		h(w, r)
	}
}

func hubError(w http.ResponseWriter, status int, code, msg string) {
	if code != "" {
		w.Header().Set("X-Error-Code", code)
	}
	w.Header().Set("X-Error-Message", msg)
	w.Header().Set("X-Request-Id", "req-123")
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, ct string, v any) {
	w.Header().Set("Content-Type", ct)
	json.NewEncoder(w).Encode(v)
}

// strict decodes a JSON body, refusing unknown fields.
func (f *fakeHub) strict(r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		f.t.Errorf("%s %s: body: %v", r.Method, r.URL.Path, err)
		return false
	}
	return true
}

func (f *fakeHub) wantHeader(r *http.Request, k, v string) {
	if got := r.Header.Get(k); got != v {
		f.t.Errorf("%s %s: header %s = %q, want %q", r.Method, r.URL.Path, k, got, v)
	}
}

func (f *fakeHub) repo(w http.ResponseWriter, r *http.Request) *fakeRepo {
	if t := r.PathValue("type"); t != "models" && t != "datasets" && t != "spaces" {
		hubError(w, http.StatusNotFound, "", "Not Found")
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	repo := f.repos[r.PathValue("ns")+"/"+r.PathValue("name")]
	if repo == nil {
		hubError(w, http.StatusNotFound, "RepoNotFound", "Repository Not Found")
	}
	return repo
}

func (f *fakeHub) checkRev(w http.ResponseWriter, rev string) bool {
	if rev != "main" {
		hubError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev)
		return false
	}
	return true
}

func (f *fakeHub) addRepo(id string) *fakeRepo {
	f.mu.Lock()
	defer f.mu.Unlock()
	repo := &fakeRepo{id: id, files: map[string]fakeFile{}}
	repo.head = fakeSHA(id, 0)
	f.repos[id] = repo
	return repo
}

func fakeSHA(id string, n int) string {
	s := sha1.Sum([]byte(fmt.Sprintf("%s#%d", id, n)))
	return hex.EncodeToString(s[:])
}

func (f *fakeHub) whoami(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, "application/json; charset=utf-8", map[string]any{"type": "user", "id": "1", "name": "alice", "fullname": "Alice",
		"email": "a@example.invalid", "emailVerified": true, "orgs": []any{map[string]any{"type": "org", "id": "2", "name": "acme"}},
		"auth": map[string]any{"type": "access_token", "accessToken": map[string]any{"displayName": "t", "role": f.role, "createdAt": "2024-01-01T00:00:00.000Z"}}})
}

func (f *fakeHub) create(w http.ResponseWriter, r *http.Request) {
	f.wantHeader(r, "Content-Type", "application/json")
	var body struct {
		Name         string  `json:"name"`
		Organization *string `json:"organization"`
		Visibility   string  `json:"visibility"`
		Private      *bool   `json:"private"`
		Type         string  `json:"type"`
		SDK          string  `json:"sdk"`
	}
	if !f.strict(r, &body) {
		return
	}
	ns := "alice"
	if body.Organization != nil {
		ns = *body.Organization
	}
	id := ns + "/" + body.Name
	prefix := ""
	if body.Type == "dataset" || body.Type == "space" {
		prefix = body.Type + "s/"
	}
	url := f.hub.URL + "/" + prefix + id
	f.mu.Lock()
	_, exists := f.repos[id]
	f.mu.Unlock()
	if exists {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusConflict)
		json.NewEncoder(w).Encode(map[string]string{"error": "You already created this model repo", "url": url})
		return
	}
	f.addRepo(id)
	writeJSON(w, "application/json; charset=utf-8", map[string]string{"url": url, "name": id, "id": "67cae57522fde9195aaf95c5"})
}

func (f *fakeHub) info(w http.ResponseWriter, r *http.Request) {
	repo := f.repo(w, r)
	if repo == nil {
		return
	}
	if rev := r.PathValue("rev"); rev != "" && !f.checkRev(w, rev) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	sib := []map[string]any{}
	for p := range repo.files {
		sib = append(sib, map[string]any{"rfilename": p})
	}
	writeJSON(w, "application/json; charset=utf-8", map[string]any{"id": repo.id, "sha": repo.head, "private": false, "siblings": sib})
}

func (f *fakeHub) isLFS(path string, size int64, sample []byte) bool {
	return size > 0 && (strings.HasSuffix(path, ".bin") || strings.HasSuffix(path, ".safetensors") || size >= 10<<20 || bytes.IndexByte(sample, 0) >= 0)
}

func gitSHA1(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func (f *fakeHub) preupload(w http.ResponseWriter, r *http.Request) {
	repo := f.repo(w, r)
	if repo == nil || !f.checkRev(w, r.PathValue("rev")) {
		return
	}
	f.wantHeader(r, "Content-Type", "application/json")
	var body struct {
		Files []struct {
			Path   string `json:"path"`
			Sample string `json:"sample"`
			Size   *int64 `json:"size"`
		} `json:"files"`
		GitAttributes string `json:"gitAttributes"`
	}
	if !f.strict(r, &body) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.preBatches = append(f.preBatches, len(body.Files))
	out := []map[string]any{}
	for _, file := range body.Files {
		sample, err := base64.StdEncoding.DecodeString(file.Sample)
		if err != nil || len(sample) > 512 || file.Size == nil {
			f.t.Errorf("preupload %s: bad sample or size", file.Path)
		}
		mode := "regular"
		if f.isLFS(file.Path, *file.Size, sample) {
			mode = "lfs"
		}
		res := map[string]any{"path": file.Path, "uploadMode": mode, "shouldIgnore": file.Path == "ignored.txt"}
		if have, ok := repo.files[file.Path]; ok {
			if have.lfsOID != "" {
				res["oid"] = have.lfsOID
			} else {
				res["oid"] = gitSHA1(have.content)
			}
		}
		out = append(out, res)
	}
	writeJSON(w, "application/json; charset=utf-8", map[string]any{"files": out, "commitOid": repo.head})
}

func (f *fakeHub) batch(w http.ResponseWriter, r *http.Request) {
	f.wantHeader(r, "Accept", "application/vnd.git-lfs+json")
	f.wantHeader(r, "Content-Type", "application/vnd.git-lfs+json")
	if !strings.HasSuffix(r.PathValue("repo"), ".git") {
		hubError(w, http.StatusNotFound, "", "Not Found")
		return
	}
	var body struct {
		Operation string   `json:"operation"`
		Transfers []string `json:"transfers"`
		Objects   []struct {
			OID  string `json:"oid"`
			Size int64  `json:"size"`
		} `json:"objects"`
		HashAlgo string          `json:"hash_algo"`
		Ref      json.RawMessage `json:"ref"`
	}
	if !f.strict(r, &body) {
		return
	}
	if body.Operation != "upload" || (strings.Join(body.Transfers, ",") != "basic,multipart" && strings.Join(body.Transfers, ",") != "basic,multipart,xet") || body.HashAlgo != "sha256" {
		f.t.Errorf("batch: operation %q transfers %v hash_algo %q", body.Operation, body.Transfers, body.HashAlgo)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	rec := map[string]any{"ref": string(body.Ref), "n": len(body.Objects)}
	f.batchBodies = append(f.batchBodies, rec)
	base := f.storage.URL
	if f.sameOrigin {
		base = f.hub.URL
	}
	var objs []any
	for _, o := range body.Objects {
		if _, ok := f.lfs[o.OID]; ok {
			objs = append(objs, map[string]any{"oid": o.OID, "size": o.Size})
			continue
		}
		actions := map[string]any{}
		if f.chunkSize > 0 && o.Size > f.chunkSize {
			h := map[string]string{"chunk_size": strconv.FormatInt(f.chunkSize, 10)}
			n := (o.Size + f.chunkSize - 1) / f.chunkSize
			for i := int64(1); i <= n; i++ {
				h[fmt.Sprintf("%05d", i)] = fmt.Sprintf("%s/part/%s/%d?sig=s3cr3t", base, o.OID, i)
			}
			actions["upload"] = map[string]any{"href": base + "/complete/" + o.OID + "?sig=s3cr3t", "header": h}
		} else {
			actions["upload"] = map[string]any{"href": base + "/upload/" + o.OID + "?sig=s3cr3t", "expires_in": 86400}
		}
		if f.withVerify {
			actions["verify"] = map[string]any{"href": f.hub.URL + "/verify/" + o.OID, "header": map[string]string{}}
		}
		objs = append(objs, map[string]any{"oid": o.OID, "size": o.Size, "authenticated": true, "actions": actions})
	}
	writeJSON(w, "application/vnd.git-lfs+json", map[string]any{"transfer": "basic", "objects": objs})
}

func (f *fakeHub) putBasic(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	oid := r.PathValue("oid")
	if sha256hex(b) != oid {
		hubError(w, http.StatusBadRequest, "", "sha256 mismatch")
		return
	}
	f.mu.Lock()
	f.lfs[oid] = b
	f.mu.Unlock()
	w.Header().Set("ETag", `"`+oid[:8]+`"`)
}

func (f *fakeHub) putPart(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	oid := r.PathValue("oid")
	n, _ := strconv.Atoi(r.PathValue("n"))
	f.mu.Lock()
	defer f.mu.Unlock()
	f.partCalls[fmt.Sprintf("%s/%d", oid, n)]++
	if f.parts[oid] == nil {
		f.parts[oid] = map[int][]byte{}
	}
	f.parts[oid][n] = b
	w.Header().Set("ETag", fmt.Sprintf(`"etag-%d-%s"`, n, sha256hex(b)[:8]))
}

func (f *fakeHub) complete(w http.ResponseWriter, r *http.Request) {
	f.wantHeader(r, "Content-Type", "application/vnd.git-lfs+json")
	f.wantHeader(r, "Accept", "application/vnd.git-lfs+json")
	var body struct {
		OID   string `json:"oid"`
		Parts []struct {
			PartNumber int    `json:"partNumber"`
			ETag       string `json:"etag"`
		} `json:"parts"`
	}
	if !f.strict(r, &body) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var all []byte
	for i, p := range body.Parts {
		data := f.parts[body.OID][p.PartNumber]
		if p.PartNumber != i+1 || p.ETag != fmt.Sprintf(`"etag-%d-%s"`, p.PartNumber, sha256hex(data)[:8]) {
			hubError(w, http.StatusBadRequest, "", "bad part list")
			return
		}
		all = append(all, data...)
	}
	if sha256hex(all) != body.OID || body.OID != r.PathValue("oid") {
		hubError(w, http.StatusBadRequest, "", "assembled object does not match its oid")
		return
	}
	f.lfs[body.OID] = all
	delete(f.parts, body.OID)
	writeJSON(w, "application/json", map[string]any{})
}

func (f *fakeHub) verify(w http.ResponseWriter, r *http.Request) {
	var body struct {
		OID  string `json:"oid"`
		Size int64  `json:"size"`
	}
	if !f.strict(r, &body) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if b, ok := f.lfs[body.OID]; !ok || int64(len(b)) != body.Size {
		hubError(w, http.StatusNotFound, "", "object not found")
		return
	}
	writeJSON(w, "application/json", map[string]any{})
}

func (f *fakeHub) commit(w http.ResponseWriter, r *http.Request) {
	repo := f.repo(w, r)
	if repo == nil || !f.checkRev(w, r.PathValue("rev")) {
		return
	}
	f.wantHeader(r, "Content-Type", "application/x-ndjson")
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if r.ContentLength != int64(len(data)) {
		f.t.Errorf("commit: Content-Length %d, body %d bytes", r.ContentLength, len(data))
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 64<<20)
	type line struct {
		Key   string          `json:"key"`
		Value json.RawMessage `json:"value"`
	}
	var rec fakeCommitRecord
	changes := map[string]*fakeFile{}
	first := true
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var l line
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			f.t.Errorf("commit line %q: %v", sc.Text(), err)
			return
		}
		vd := json.NewDecoder(bytes.NewReader(l.Value))
		vd.DisallowUnknownFields()
		if first != (l.Key == "header") {
			f.t.Errorf("commit: header must come first, got %q", l.Key)
		}
		first = false
		switch l.Key {
		case "header":
			var h struct {
				Summary      string `json:"summary"`
				Description  string `json:"description"`
				ParentCommit string `json:"parentCommit"`
			}
			if err := vd.Decode(&h); err != nil {
				f.t.Errorf("commit header: %v", err)
			}
			rec.summary, rec.parent = h.Summary, h.ParentCommit
		case "file":
			var v struct {
				Content  string `json:"content"`
				Path     string `json:"path"`
				Encoding string `json:"encoding"`
			}
			if err := vd.Decode(&v); err != nil || v.Encoding != "base64" {
				f.t.Errorf("commit file: %v %q", err, v.Encoding)
			}
			b, err := base64.StdEncoding.DecodeString(v.Content)
			if err != nil {
				f.t.Errorf("commit file content: %v", err)
			}
			changes[v.Path] = &fakeFile{content: b, size: int64(len(b))}
			rec.paths = append(rec.paths, v.Path)
		case "lfsFile":
			var v struct {
				Path string `json:"path"`
				Algo string `json:"algo"`
				OID  string `json:"oid"`
				Size int64  `json:"size"`
			}
			if err := vd.Decode(&v); err != nil || v.Algo != "sha256" {
				f.t.Errorf("commit lfsFile: %v %q", err, v.Algo)
			}
			f.mu.Lock()
			_, ok := f.lfs[v.OID]
			f.mu.Unlock()
			if !ok {
				hubError(w, http.StatusBadRequest, "", "LFS object "+v.OID+" not found")
				return
			}
			changes[v.Path] = &fakeFile{lfsOID: v.OID, size: v.Size}
			rec.paths = append(rec.paths, v.Path)
		case "deletedFile":
			var v struct {
				Path string `json:"path"`
			}
			vd.Decode(&v)
			changes[v.Path] = nil
			rec.paths = append(rec.paths, v.Path)
		default:
			f.t.Errorf("commit: unknown key %q", l.Key)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if rec.parent != "" && rec.parent != repo.head {
		hubError(w, http.StatusPreconditionFailed, "", "The branch was updated since you opened this page. Please refresh and try again.")
		return
	}
	prefix := ""
	if r.PathValue("type") != "models" {
		prefix = r.PathValue("type") + "/"
	}
	repo.n++
	oid := fakeSHA(repo.id, repo.n)
	rec.repo, rec.rev = repo.id, r.PathValue("rev")
	f.commits = append(f.commits, rec)
	resp := map[string]any{"success": true, "commitOid": oid, "commitUrl": f.hub.URL + "/" + prefix + repo.id + "/commit/" + oid, "hookOutput": ""}
	if r.URL.Query().Get("create_pr") == "1" {
		repo.prs++
		resp["pullRequestUrl"] = fmt.Sprintf("%s/%s%s/discussions/%d", f.hub.URL, prefix, repo.id, repo.prs)
	} else {
		for p, c := range changes {
			if c == nil {
				delete(repo.files, p)
			} else {
				repo.files[p] = *c
			}
		}
		repo.head = oid
	}
	writeJSON(w, "application/json; charset=utf-8", resp)
}

func (f *fakeHub) entry(p string, file fakeFile) map[string]any {
	e := map[string]any{"type": "file", "path": p, "size": file.size}
	if file.lfsOID != "" {
		ptr := fmt.Sprintf("version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n", file.lfsOID, file.size)
		e["oid"] = gitSHA1([]byte(ptr))
		e["lfs"] = map[string]any{"oid": file.lfsOID, "size": file.size, "pointerSize": len(ptr)}
	} else {
		e["oid"] = gitSHA1(file.content)
	}
	return e
}

func (f *fakeHub) pathsInfo(w http.ResponseWriter, r *http.Request) {
	repo := f.repo(w, r)
	if repo == nil {
		return
	}
	var body struct {
		Paths  []string `json:"paths"`
		Expand bool     `json:"expand"`
	}
	if !f.strict(r, &body) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if rev := r.PathValue("rev"); rev != "main" && rev != repo.head {
		hubError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id")
		return
	}
	out := []any{}
	for _, p := range body.Paths {
		if file, ok := repo.files[p]; ok {
			out = append(out, f.entry(p, file))
		}
	}
	writeJSON(w, "application/json; charset=utf-8", out)
}

func (f *fakeHub) tree(w http.ResponseWriter, r *http.Request) {
	repo := f.repo(w, r)
	if repo == nil {
		return
	}
	// The revision is the first escaped segment (§0); the rest is the path.
	esc := r.URL.EscapedPath()
	i := strings.Index(esc, "/tree/")
	segs := strings.SplitN(esc[i+len("/tree/"):], "/", 2)
	if segs[0] != "main" {
		hubError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id")
		return
	}
	prefix := ""
	if len(segs) == 2 {
		prefix = strings.ReplaceAll(segs[1], "%2F", "/") + "/"
	}
	f.mu.Lock()
	var paths []string
	for p := range repo.files {
		if strings.HasPrefix(p, prefix) {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	cursor, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
	end := min(cursor+f.treePage, len(paths))
	out := []any{}
	for _, p := range paths[cursor:end] {
		out = append(out, f.entry(p, repo.files[p]))
	}
	f.mu.Unlock()
	if end < len(paths) {
		q := r.URL.Query()
		q.Set("cursor", strconv.Itoa(end))
		w.Header().Set("Link", fmt.Sprintf(`<%s%s?%s>; rel="next"`, f.hub.URL, r.URL.EscapedPath(), q.Encode()))
	}
	writeJSON(w, "application/json; charset=utf-8", out)
}

func (f *fakeHub) branch(w http.ResponseWriter, r *http.Request) {
	repo := f.repo(w, r)
	if repo == nil {
		return
	}
	var body struct {
		StartingPoint string `json:"startingPoint"`
	}
	if !f.strict(r, &body) {
		return
	}
	if r.PathValue("branch") == "main" {
		hubError(w, http.StatusConflict, "", "Reference already exists")
		return
	}
	writeJSON(w, "application/json", map[string]any{})
}

// client returns a client of f with fast retries.
func (f *fakeHub) client(t *testing.T, mod ...func(*Options)) *Client {
	opts := Options{Endpoint: f.hub.URL, Token: f.token, Version: "test",
		Retry: RetryPolicy{BaseWait: time.Millisecond, MaxWait: 5 * time.Millisecond}, Logf: t.Logf}
	for _, m := range mod {
		m(&opts)
	}
	c, err := NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.http.CloseIdleConnections)
	return c
}

func (f *fakeHub) count(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[name]
}

func (f *fakeHub) setFault(name string, fn func(w http.ResponseWriter, r *http.Request, n int) bool) {
	f.mu.Lock()
	f.faults[name] = fn
	f.mu.Unlock()
}
