package hubemu

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	lfsContentType = "application/vnd.git-lfs+json"
	urlLifetime    = 24 * time.Hour
	maxParts       = 10000 // S3's limit
)

// mpSession is one multipart upload in flight; its parts live in
// uploads/<id>/.
type mpSession struct {
	mu     sync.Mutex
	id     string
	repo   string // repoKey of the repo the upload is for
	oid    string
	size   int64
	chunk  int64
	nparts int
	etags  map[int]string // part number → ETag (quoted)
	done   bool           // completed: the object is stored
	expiry time.Time      // its URLs stop working; then it is swept
}

// dataPath is the file the parts are written into, each at its offset.
func (m *mpSession) dataPath(s *Server) string {
	return filepath.Join(s.dir, "uploads", m.id, "data")
}

func (m *mpSession) partSize(n int) int64 {
	return min(m.chunk, m.size-int64(n-1)*m.chunk)
}

// sign returns the signature of an upload URL: HMAC-SHA256 over the
// method, the path and the parameters that matter.
func (s *Server) sign(method, path, params string) string {
	mac := hmac.New(sha256.New, s.key)
	fmt.Fprintf(mac, "%s\n%s\n%s", method, path, params)
	return hex.EncodeToString(mac.Sum(nil))
}

// signedURL builds an absolute presigned URL with its expiry.
func (c *call) signedURL(method, path string, params url.Values) string {
	params.Set("exp", strconv.FormatInt(time.Now().Add(urlLifetime).Unix(), 10))
	enc := params.Encode()
	return c.origin + path + "?" + enc + "&sig=" + c.s.sign(method, path, enc)
}

// checkUpload verifies that an upload URL is signed and fresh, and that
// no Authorization header came with it (S3 refuses a second auth
// mechanism on a presigned URL, and the token must never reach a storage
// URL). On failure it has answered.
func (c *call) checkUpload() bool {
	if c.r.Header.Get("Authorization") != "" {
		c.fail(http.StatusBadRequest, "InvalidArgument",
			"Only one auth mechanism allowed; an Authorization header must not be sent to a presigned URL")
		return false
	}
	q := c.r.URL.Query()
	sig := q.Get("sig")
	q.Del("sig")
	want := c.s.sign(c.r.Method, c.r.URL.Path, q.Encode())
	if sig == "" || !hmac.Equal([]byte(sig), []byte(want)) {
		c.fail(http.StatusForbidden, "SignatureDoesNotMatch", "The request signature does not match")
		return false
	}
	exp, err := strconv.ParseInt(q.Get("exp"), 10, 64)
	if err != nil || time.Now().Unix() > exp {
		c.fail(http.StatusForbidden, "AccessDenied", "Request has expired")
		return false
	}
	return true
}

type batchRequest struct {
	Operation string   `json:"operation"`
	Transfers []string `json:"transfers"`
	Objects   []struct {
		Oid  string `json:"oid"`
		Size int64  `json:"size"`
	} `json:"objects"`
	Ref *struct {
		Name string `json:"name"`
	} `json:"ref"`
}

type batchAction struct {
	Href      string            `json:"href"`
	Header    map[string]string `json:"header,omitempty"`
	ExpiresIn int               `json:"expires_in,omitempty"`
}

type batchObject struct {
	Oid           string                 `json:"oid"`
	Size          int64                  `json:"size"`
	Authenticated bool                   `json:"authenticated,omitempty"`
	Actions       map[string]batchAction `json:"actions,omitempty"`
	Error         *batchError            `json:"error,omitempty"`
}

type batchError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (c *call) lfsBatch(ref repoRef) {
	rp := c.repo(ref, true)
	if rp == nil {
		return
	}
	key := rp.key()
	rp.mu.Unlock()
	var req batchRequest
	if !c.readJSON(&req, 16<<20) {
		return
	}
	if req.Operation != "upload" {
		c.fail(http.StatusBadRequest, "", "Only the upload operation is supported, not %q", req.Operation)
		return
	}
	if len(req.Objects) > 1000 {
		c.fail(http.StatusRequestEntityTooLarge, "", "Too many objects in one batch: %d (at most 1000)", len(req.Objects))
		return
	}
	multipart, useXet := false, false
	for _, t := range req.Transfers {
		multipart = multipart || t == "multipart"
		useXet = useXet || t == "xet" && !c.s.opts.NoXet
	}
	transfer := "basic"
	var xetHref string
	if useXet {
		transfer = "xet"
		// A pull request's batch names no ref (the client may only be
		// allowed to open one): the refresh URL then names the default
		// branch with create_pr=1, as huggingface_hub asks for a token for
		// a pull request; a client that knows the branch the pull
		// request is opened against names it instead.
		if req.Ref != nil && req.Ref.Name != "" {
			xetHref = c.xetTokenURL(ref, "write", strings.TrimPrefix(req.Ref.Name, "refs/heads/"))
		} else {
			xetHref = c.xetTokenURL(ref, "write", "main") + "?create_pr=1"
		}
	}
	verifyHref := c.origin + "/" + urlPrefix(ref.typ) + ref.ns + "/" + ref.name + ".git/info/lfs/objects/verify"
	out := make([]batchObject, 0, len(req.Objects))
	for _, o := range req.Objects {
		bo := batchObject{Oid: o.Oid, Size: o.Size}
		// Only the objects of this repo count as stored: an object that
		// another repo holds must be uploaded again (its bytes prove that
		// the uploader has them), or the oid alone would open it to anyone.
		stored := int64(-1)
		if validOid(o.Oid) && rp.hasLFS(o.Oid) {
			stored = c.s.objectSize(o.Oid)
		}
		switch {
		case !validOid(o.Oid):
			bo.Error = &batchError{422, "Invalid oid: a lowercase hex sha256 is expected"}
		case o.Size < 0:
			bo.Error = &batchError{422, "Invalid size"}
		case stored == o.Size:
			// Already stored: no actions, the client skips it.
		case stored >= 0:
			bo.Error = &batchError{422, fmt.Sprintf("Object %s is stored with size %d, not %d", o.Oid, stored, o.Size)}
		case useXet:
			// The Hub's answer when the client offers xet: the upload
			// action names the CAS and a write token; the bytes go there.
			if err := rp.markLFS(lfsXetOffered, o.Oid); err != nil {
				c.fail(http.StatusInternalServerError, "", "storage: %v", err)
				return
			}
			href, header := c.s.cas.XetBatchAction(c.origin, xetHref, key)
			bo.Authenticated = true
			bo.Actions = map[string]batchAction{"upload": {Href: href, Header: header}}
		case multipart && o.Size > c.s.opts.MultipartThreshold:
			act, err := c.s.newMultipart(c, key, o.Oid, o.Size)
			if err != nil {
				c.fail(http.StatusInternalServerError, "", "storage: %v", err)
				return
			}
			bo.Authenticated = true
			bo.Actions = map[string]batchAction{"upload": act}
		default:
			bo.Authenticated = true
			bo.Actions = map[string]batchAction{
				"upload": {Href: c.signedURL("PUT", "/_emu/lfs/upload/"+o.Oid, url.Values{"size": {strconv.FormatInt(o.Size, 10)}, "repo": {key}}),
					ExpiresIn: int(urlLifetime / time.Second)},
				"verify": {Href: verifyHref},
			}
		}
		out = append(out, bo)
	}
	c.w.Header().Set("Content-Type", lfsContentType)
	json.NewEncoder(c.w).Encode(map[string]any{"transfer": transfer, "objects": out, "hash_algo": "sha256"})
}

// newMultipart opens a session and returns its upload action: the
// completion URL as href, chunk_size and one signed URL per part under
// zero-padded keys in the header.
func (s *Server) newMultipart(c *call, repo, oid string, size int64) (batchAction, error) {
	chunk := s.opts.ChunkSize
	if need := (size + maxParts - 1) / maxParts; need > chunk {
		chunk = need
	}
	m := &mpSession{id: randomHex(16), repo: repo, oid: oid, size: size, chunk: chunk, etags: map[int]string{}}
	m.nparts = int((size + chunk - 1) / chunk)
	m.expiry = time.Now().Add(urlLifetime)
	var stale []string
	s.mu.Lock()
	for id, old := range s.sessions {
		if time.Now().After(old.expiry) {
			delete(s.sessions, id)
			stale = append(stale, id)
		}
	}
	s.mu.Unlock()
	for _, id := range stale {
		os.RemoveAll(filepath.Join(s.dir, "uploads", id))
	}
	if err := os.MkdirAll(filepath.Dir(m.dataPath(s)), 0o755); err != nil {
		return batchAction{}, err
	}
	f, err := os.Create(m.dataPath(s))
	if err == nil {
		err = f.Truncate(size) // sparse until the parts arrive
		f.Close()
	}
	if err != nil {
		return batchAction{}, err
	}
	s.mu.Lock()
	s.sessions[m.id] = m
	s.mu.Unlock()
	hdr := map[string]string{"chunk_size": strconv.FormatInt(chunk, 10)}
	for n := 1; n <= m.nparts; n++ {
		hdr[fmt.Sprintf("%05d", n)] = c.signedURL("PUT", "/_emu/lfs/part/"+oid+"/"+strconv.Itoa(n), url.Values{"upload": {m.id}})
	}
	return batchAction{Href: c.signedURL("POST", "/_emu/lfs/complete/"+oid, url.Values{"upload": {m.id}, "repo": {repo}}),
		Header: hdr, ExpiresIn: int(urlLifetime / time.Second)}, nil
}

// basicUpload stores the body of a basic PUT as object oid. The bytes are
// checked even when the object is stored already: they are what gives the
// repo of the URL the right to use it.
func (c *call) basicUpload(oid string) {
	if !c.checkUpload() {
		return
	}
	size, err := strconv.ParseInt(c.r.URL.Query().Get("size"), 10, 64)
	if err != nil || !validOid(oid) {
		c.fail(http.StatusBadRequest, "", "Invalid upload URL")
		return
	}
	if err := c.s.storeObject(c.r.Body, oid, size); err != nil {
		c.uploadError(err)
		return
	}
	if err := c.s.linkUpload(c.r.URL.Query().Get("repo"), oid); err != nil {
		c.fail(http.StatusInternalServerError, "", "storage: %v", err)
		return
	}
	c.w.WriteHeader(http.StatusOK)
}

// repoByKey returns the live repo of a repoKey, or nil.
func (s *Server) repoByKey(key string) *repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.repos[key]
}

// linkUpload lets the repo an upload URL was issued for use the object
// just stored. A repo deleted meanwhile gets nothing.
func (s *Server) linkUpload(key, oid string) error {
	rp := s.repoByKey(key)
	if rp == nil {
		return nil
	}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.deleted {
		return nil
	}
	return rp.markLFS(lfsUploaded, oid)
}

// uploadedFor reports whether the repo of key may use oid.
func (s *Server) uploadedFor(key, oid string) bool {
	rp := s.repoByKey(key)
	return rp != nil && rp.hasLFS(oid) && s.objectSize(oid) >= 0
}

func (c *call) uploadError(err error) {
	if errors.Is(err, errContent) {
		c.fail(http.StatusBadRequest, "BadDigest", "%v", err)
	} else {
		c.fail(http.StatusBadRequest, "IncompleteBody", "upload interrupted: %v", err)
	}
}

func (s *Server) session(id, oid string) *mpSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.sessions[id]
	if m == nil || m.oid != oid {
		return nil
	}
	return m
}

// partUpload stores one part and answers its ETag (the MD5 of the part,
// as S3 does).
func (c *call) partUpload(oid, partStr string) {
	if !c.checkUpload() {
		return
	}
	m := c.s.session(c.r.URL.Query().Get("upload"), oid)
	if m == nil {
		c.fail(http.StatusNotFound, "NoSuchUpload", "The specified multipart upload does not exist")
		return
	}
	n, err := strconv.Atoi(partStr)
	if err != nil || n < 1 || n > m.nparts {
		c.fail(http.StatusBadRequest, "InvalidPart", "Invalid part number %q", partStr)
		return
	}
	want := m.partSize(n)
	if c.r.ContentLength >= 0 && c.r.ContentLength != want {
		// Refused before a byte is written, so the part stored earlier stays.
		c.fail(http.StatusBadRequest, "IncompleteBody", "part %d has %d bytes, want %d", n, c.r.ContentLength, want)
		return
	}
	m.mu.Lock()
	delete(m.etags, n) // only a write that completes gets an ETag
	m.mu.Unlock()
	f, err := os.OpenFile(m.dataPath(c.s), os.O_WRONLY, 0)
	if err != nil {
		c.fail(http.StatusNotFound, "NoSuchUpload", "The specified multipart upload does not exist")
		return
	}
	defer f.Close()
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	w := io.NewOffsetWriter(f, int64(n-1)*m.chunk)
	got, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(c.r.Body, want))
	if err == nil {
		// One byte more than the part is an error too.
		var extra [1]byte
		if k, _ := c.r.Body.Read(extra[:]); k > 0 {
			got++
		}
	}
	if err == nil && got != want {
		err = fmt.Errorf("%w: part %d has %s bytes, want %d", errContent, n, atLeast(got, want), want)
	}
	if err != nil {
		c.uploadError(err)
		return
	}
	// An opaque ETag, as S3's: the CRC-32C of the part and a nonce (cheaper
	// than S3's MD5; clients only echo it back).
	etag := fmt.Sprintf(`"%08x%s"`, h.Sum32(), randomHex(8))
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done {
		c.fail(http.StatusNotFound, "NoSuchUpload", "The specified multipart upload is complete")
		return
	}
	m.etags[n] = etag
	c.w.Header().Set("ETag", etag)
	c.w.WriteHeader(http.StatusOK)
}

func atLeast(got, want int64) string {
	if got > want {
		return "more than " + strconv.FormatInt(want, 10)
	}
	return strconv.FormatInt(got, 10)
}

func unquoteETag(s string) string {
	return strings.Trim(strings.TrimPrefix(strings.TrimSpace(s), "W/"), `"`)
}

// completeUpload assembles the parts, checks every ETag and the sha256,
// and stores the object. Repeating a completion that succeeded answers
// 200, so a client whose answer was lost can retry.
func (c *call) completeUpload(oid string) {
	if !c.checkUpload() {
		return
	}
	var req struct {
		Oid   string `json:"oid"`
		Parts []struct {
			PartNumber int    `json:"partNumber"`
			Etag       string `json:"etag"`
		} `json:"parts"`
	}
	if !c.readJSON(&req, 4<<20) {
		return
	}
	if req.Oid != oid {
		c.fail(http.StatusBadRequest, "", "The body's oid %q is not the one of this upload", req.Oid)
		return
	}
	id := c.r.URL.Query().Get("upload")
	m := c.s.session(id, oid)
	if m == nil {
		// A completion repeated after its answer was lost.
		if c.s.uploadedFor(c.r.URL.Query().Get("repo"), oid) {
			c.json(http.StatusOK, map[string]any{})
			return
		}
		c.fail(http.StatusNotFound, "NoSuchUpload", "The specified multipart upload does not exist")
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done {
		c.json(http.StatusOK, map[string]any{})
		return
	}
	if len(req.Parts) != m.nparts {
		c.fail(http.StatusBadRequest, "InvalidPart", "%d parts listed, the upload has %d", len(req.Parts), m.nparts)
		return
	}
	for i, p := range req.Parts {
		if p.PartNumber != i+1 {
			c.fail(http.StatusBadRequest, "InvalidPartOrder", "Parts must be listed in order: got part %d at position %d", p.PartNumber, i+1)
			return
		}
		have, ok := m.etags[p.PartNumber]
		if !ok {
			c.fail(http.StatusBadRequest, "InvalidPart", "Part %d was not uploaded", p.PartNumber)
			return
		}
		if unquoteETag(have) != unquoteETag(p.Etag) {
			c.fail(http.StatusBadRequest, "InvalidPart", "Part %d: ETag %s does not match the uploaded part", p.PartNumber, p.Etag)
			return
		}
	}
	data := m.dataPath(c.s)
	if err := c.s.installObject(data, oid, m.size); err != nil {
		c.uploadError(err)
		return
	}
	if err := c.s.linkUpload(m.repo, oid); err != nil {
		c.fail(http.StatusInternalServerError, "", "storage: %v", err)
		return
	}
	m.done = true
	c.s.mu.Lock()
	delete(c.s.sessions, m.id)
	c.s.mu.Unlock()
	os.RemoveAll(filepath.Dir(data))
	c.json(http.StatusOK, map[string]any{})
}

// lfsVerify answers the batch's verify action: the object must be stored
// with the announced size.
func (c *call) lfsVerify(ref repoRef) {
	rp := c.repo(ref, true)
	if rp == nil {
		return
	}
	rp.mu.Unlock()
	var req struct {
		Oid  string `json:"oid"`
		Size int64  `json:"size"`
	}
	if !c.readJSON(&req, 1<<20) {
		return
	}
	if stored := c.s.objectSize(req.Oid); !rp.hasLFS(req.Oid) || stored < 0 || stored != req.Size {
		c.fail(http.StatusNotFound, "", "Object %s of size %d is not stored", req.Oid, req.Size)
		return
	}
	c.json(http.StatusOK, map[string]any{"message": "Object verified"})
}
