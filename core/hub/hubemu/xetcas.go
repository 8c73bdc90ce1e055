package hubemu

// The emulator's Xet CAS (docs/xet/api.md in huggingface/hub-docs): xorb
// and shard uploads, the global deduplication query, file reconstructions
// and the xorb byte ranges they point to, with tokens it issues itself.
// Everything it receives is verified: a xorb against its hash, a shard's
// xorbs against what was uploaded, every term against its verification
// hash, every file against its hash. It keeps its state on disk (xorbs/,
// shards/ under its directory) and rebuilds its indexes from there.
//
// It is a standalone http.Handler; the Hub side (the xet-write-token and
// xet-read-token endpoints, "xet" in the LFS batch answer, resolve of
// Xet-stored files) calls IssueToken, FileBySHA256 and WriteFile.

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"modelpub/core/atomicfile"
	"modelpub/core/hub/xet"
)

// xetGrant is what a CAS token allows.
type xetGrant struct {
	repo  string // the repository key it was issued for
	write bool
	exp   time.Time
}

// xetXorb is a stored xorb's index: its chunks and where each chunk's
// header starts in the serialized bytes (plus the end, at len(chunks)).
type xetXorb struct {
	chunks  []xet.Chunk
	offsets []int
}

// xetLoc is a chunk's first known place.
type xetLoc struct {
	xorb  xet.Hash
	index int
}

// XetCAS is the emulator's Xet content-addressed store.
type XetCAS struct {
	dir     string
	baseURL string // origin for transfer URLs; "" = from each request
	key     []byte // signs transfer URLs
	hmacKey xet.Hash
	now     func() time.Time

	// Fault, when set, is asked before each request is served: a status
	// to answer instead (0: none; -1: drop the connection).
	Fault func(r *http.Request) int

	mu     sync.Mutex
	ttl    time.Duration // SetTokenTTL's; 0: the caller's
	tokens map[string]xetGrant
	xorbs  map[xet.Hash]*xetXorb
	chunks map[xet.Hash]xetLoc
	files  map[xet.Hash]xet.FileInfo
	bySHA  map[[32]byte]xet.Hash
}

// NewXetCAS opens (creating it) a CAS stored under dir. baseURL, when not
// empty, is the origin put in transfer URLs instead of the request's.
func NewXetCAS(dir, baseURL string) (*XetCAS, error) {
	x := &XetCAS{dir: dir, baseURL: strings.TrimRight(baseURL, "/"), now: time.Now,
		tokens: map[string]xetGrant{}, xorbs: map[xet.Hash]*xetXorb{}, chunks: map[xet.Hash]xetLoc{},
		files: map[xet.Hash]xet.FileInfo{}, bySHA: map[[32]byte]xet.Hash{}}
	x.key = make([]byte, 32)
	if _, err := rand.Read(x.key); err != nil {
		return nil, err
	}
	if _, err := rand.Read(x.hmacKey[:]); err != nil {
		return nil, err
	}
	for _, d := range []string{"xorbs", "shards", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	xs, _ := os.ReadDir(filepath.Join(dir, "xorbs"))
	for _, e := range xs {
		h, err := xet.ParseHash(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, "xorbs", e.Name()))
		if err != nil {
			return nil, err
		}
		cs, err := xet.ReadXorbIndex(b, h)
		if err != nil {
			return nil, fmt.Errorf("hubemu: stored xorb %s: %w", e.Name(), err)
		}
		x.indexXorb(h, cs)
	}
	ss, _ := os.ReadDir(filepath.Join(dir, "shards"))
	for _, e := range ss {
		b, err := os.ReadFile(filepath.Join(dir, "shards", e.Name()))
		if err != nil {
			return nil, err
		}
		s, err := xet.ParseShard(b)
		if err != nil {
			return nil, fmt.Errorf("hubemu: stored shard %s: %w", e.Name(), err)
		}
		x.registerFiles(s)
	}
	return x, nil
}

func (x *XetCAS) indexXorb(h xet.Hash, cs []xet.XorbChunk) {
	rec := &xetXorb{}
	for i, c := range cs {
		rec.chunks = append(rec.chunks, c.Chunk)
		rec.offsets = append(rec.offsets, c.Offset)
		if _, ok := x.chunks[c.Hash]; !ok {
			x.chunks[c.Hash] = xetLoc{xorb: h, index: i}
		}
	}
	// The end of the last chunk, where a footer, if any, starts.
	end := 0
	if n := len(cs); n > 0 {
		end = cs[n-1].Offset + 8 + cs[n-1].Stored
	}
	rec.offsets = append(rec.offsets, end)
	x.xorbs[h] = rec
}

func (x *XetCAS) registerFiles(s *xet.Shard) {
	for _, f := range s.Files {
		x.files[f.Hash] = f
		if f.SHA256 != [32]byte{} {
			x.bySHA[f.SHA256] = f.Hash
		}
	}
}

// IssueToken returns a CAS token for repo (write or read scope) valid for
// ttl, and its expiry.
func (x *XetCAS) IssueToken(repo string, write bool, ttl time.Duration) (string, time.Time) {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	tok := "xet_" + hex.EncodeToString(b)
	x.mu.Lock()
	if x.ttl > 0 {
		ttl = x.ttl
	}
	exp := x.now().Add(ttl)
	x.tokens[tok] = xetGrant{repo: repo, write: write, exp: exp}
	x.mu.Unlock()
	return tok, exp
}

// SetTokenTTL makes every token issued from now on last d (0: as each
// caller asks, an hour): with d shorter than a client's refresh margin,
// the client fetches a new token before each request, which tests of the
// xet-write-token URL a client uses need.
func (x *XetCAS) SetTokenTTL(d time.Duration) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.ttl = d
}

// TokenScope reports the repository key and scope a CAS token was issued
// for, while it is valid.
func (x *XetCAS) TokenScope(tok string) (repo string, write, ok bool) {
	x.mu.Lock()
	g, ok := x.tokens[tok]
	x.mu.Unlock()
	if !ok || tok == "" || x.now().After(g.exp) {
		return "", false, false
	}
	return g.repo, g.write, true
}

// TokenJSON is the Hub's answer to xet-write-token / xet-read-token for a
// CAS at casURL.
func (x *XetCAS) TokenJSON(casURL, repo string, write bool, ttl time.Duration) []byte {
	tok, exp := x.IssueToken(repo, write, ttl)
	b, _ := json.Marshal(struct {
		AccessToken string `json:"accessToken"`
		Exp         int64  `json:"exp"`
		CASURL      string `json:"casUrl"`
	}{tok, exp.Unix(), casURL})
	return b
}

// FileBySHA256 finds a file registered by a shard from its sha256, as a
// commit's LFS pointer names it.
func (x *XetCAS) FileBySHA256(sum [32]byte) (xet.FileInfo, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	h, ok := x.bySHA[sum]
	if !ok {
		return xet.FileInfo{}, false
	}
	f, ok := x.files[h]
	return f, ok
}

// WriteFile writes a registered file's bytes to w, from its xorbs, one
// term's chunks in memory at a time.
func (x *XetCAS) WriteFile(w io.Writer, f xet.FileInfo) error {
	for _, t := range f.Terms {
		x.mu.Lock()
		rec, ok := x.xorbs[t.Xorb]
		x.mu.Unlock()
		if !ok || int(t.End) > len(rec.chunks) || t.Start >= t.End {
			return fmt.Errorf("hubemu: xorb %s does not hold chunks [%d, %d)", t.Xorb, t.Start, t.End)
		}
		b, err := os.ReadFile(x.xorbPath(t.Xorb))
		if err != nil {
			return err
		}
		cs, err := xet.ReadXorb(b[rec.offsets[t.Start]:rec.offsets[t.End]], xet.Hash{})
		if err != nil {
			return fmt.Errorf("hubemu: xorb %s: %w", t.Xorb, err)
		}
		for i, c := range cs {
			if c.Chunk != rec.chunks[int(t.Start)+i] {
				return fmt.Errorf("hubemu: xorb %s chunk %d changed on disk", t.Xorb, int(t.Start)+i)
			}
			if _, err := w.Write(c.Data); err != nil {
				return err
			}
		}
	}
	return nil
}

func (x *XetCAS) xorbPath(h xet.Hash) string { return filepath.Join(x.dir, "xorbs", h.String()) }

// writeAtomic stores b at path through a temp file and a rename
// (atomicfile.Rename: on Windows, retried while a reader has path open).
func (x *XetCAS) writeAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Join(x.dir, "tmp"), "cas-*")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := atomicfile.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

var (
	xetXorbPath = regexp.MustCompile(`^/v1/xorbs/default/([0-9a-f]{64})$`)
	// The spec's prefix is default-merkledb; @huggingface/hub asks
	// chunks/default (2.17.5) or chunk/default (older).
	xetChunkPath  = regexp.MustCompile(`^/v1/(?:chunks/default-merkledb|chunks/default|chunk/default)/([0-9a-f]{64})$`)
	xetReconPath  = regexp.MustCompile(`^/v([12])/reconstructions/([0-9a-f]{64})$`)
	xetFetchPath  = regexp.MustCompile(`^/v1/fetch/([0-9a-f]{64})$`)
	xetRangeValue = regexp.MustCompile(`^bytes=(\d+)-(\d+)$`)
	xetReconRange = regexp.MustCompile(`^bytes=(\d+)-(\d*)$`)
)

// xetError answers the CAS's JSON error.
func xetError(w http.ResponseWriter, status int, format string, a ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": fmt.Sprintf(format, a...)})
}

// auth checks the bearer token's scope; it answers and returns false when
// the request may not proceed.
func (x *XetCAS) auth(w http.ResponseWriter, r *http.Request, write bool) bool {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	x.mu.Lock()
	g, ok := x.tokens[tok]
	x.mu.Unlock()
	switch {
	case !ok || tok == "":
		xetError(w, http.StatusUnauthorized, "missing or unknown CAS token")
	case x.now().After(g.exp):
		xetError(w, http.StatusUnauthorized, "the CAS token expired")
	case write && !g.write:
		xetError(w, http.StatusForbidden, "a read token cannot upload")
	default:
		return true
	}
	return false
}

// ServeHTTP serves the CAS endpoints under /v1/.
func (x *XetCAS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if x.Fault != nil {
		switch st := x.Fault(r); {
		case st == -1:
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
			xetError(w, http.StatusInternalServerError, "injected fault")
			return
		case st != 0:
			_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, xet.MaxXorbSize+1<<20))
			xetError(w, st, "injected fault")
			return
		}
	}
	p := r.URL.Path
	switch m := []string(nil); {
	case r.Method == http.MethodPost && xetXorbPath.MatchString(p):
		m = xetXorbPath.FindStringSubmatch(p)
		x.putXorb(w, r, m[1])
	case r.Method == http.MethodPost && p == "/v1/shards":
		x.putShard(w, r)
	case r.Method == http.MethodGet && xetChunkPath.MatchString(p):
		m = xetChunkPath.FindStringSubmatch(p)
		x.queryChunk(w, r, m[1])
	case r.Method == http.MethodGet && xetReconPath.MatchString(p):
		m = xetReconPath.FindStringSubmatch(p)
		x.reconstruction(w, r, m[2], m[1] == "2")
	case r.Method == http.MethodGet && xetFetchPath.MatchString(p):
		m = xetFetchPath.FindStringSubmatch(p)
		x.fetch(w, r, m[1])
	default:
		xetError(w, http.StatusNotFound, "no CAS endpoint %s %s", r.Method, p)
	}
}

// readBody reads a request body of at most limit bytes, in one buffer of
// the declared length when there is one (io.ReadAll's growth would copy
// and clear a 64 MiB xorb several times).
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if n := r.ContentLength; n > 0 && n <= limit {
		b := make([]byte, n)
		if _, err := io.ReadFull(r.Body, b); err != nil {
			return nil, err
		}
		if extra, _ := r.Body.Read(make([]byte, 1)); extra > 0 {
			return nil, errors.New("the body is longer than its Content-Length")
		}
		return b, nil
	}
	return io.ReadAll(io.LimitReader(r.Body, limit))
}

func (x *XetCAS) putXorb(w http.ResponseWriter, r *http.Request, hexHash string) {
	if !x.auth(w, r, true) {
		return
	}
	h, err := xet.ParseHash(hexHash)
	if err != nil {
		xetError(w, http.StatusBadRequest, "%v", err)
		return
	}
	// A footer other writers add may follow the 64 MiB of chunks.
	body, err := readBody(r, xet.MaxXorbSize+1<<20+1)
	if err != nil {
		xetError(w, http.StatusBadRequest, "reading the xorb: %v", err)
		return
	}
	if len(body) > xet.MaxXorbSize+1<<20 {
		xetError(w, http.StatusBadRequest, "xorb larger than %d bytes", xet.MaxXorbSize)
		return
	}
	cs, err := xet.ReadXorbIndex(body, h)
	if err != nil {
		xetError(w, http.StatusBadRequest, "xorb %s: %v", h, err)
		return
	}
	x.mu.Lock()
	_, had := x.xorbs[h]
	x.mu.Unlock()
	if !had {
		if err := x.writeAtomic(x.xorbPath(h), body); err != nil {
			xetError(w, http.StatusInternalServerError, "storing xorb: %v", err)
			return
		}
		x.mu.Lock()
		x.indexXorb(h, cs)
		x.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]bool{"was_inserted": !had})
}

func (x *XetCAS) putShard(w http.ResponseWriter, r *http.Request) {
	if !x.auth(w, r, true) {
		return
	}
	body, err := readBody(r, xet.MaxShardSize+1)
	if err != nil {
		xetError(w, http.StatusBadRequest, "reading the shard: %v", err)
		return
	}
	if len(body) > xet.MaxShardSize {
		xetError(w, http.StatusBadRequest, "shard larger than %d bytes", xet.MaxShardSize)
		return
	}
	s, err := xet.ParseShard(body)
	if err != nil {
		xetError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if err := x.verifyShard(s); err != nil {
		xetError(w, http.StatusBadRequest, "%v", err)
		return
	}
	sum := sha256.Sum256(body)
	path := filepath.Join(x.dir, "shards", hex.EncodeToString(sum[:]))
	result := 0
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := x.writeAtomic(path, body); err != nil {
			xetError(w, http.StatusInternalServerError, "storing shard: %v", err)
			return
		}
		result = 1
	}
	x.mu.Lock()
	x.registerFiles(s)
	x.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]int{"result": result})
}

// verifyShard checks a shard as the CAS does: every xorb it names was
// uploaded and has the chunks listed, every term's range exists, matches
// its size and its verification hash, and every file's chunks hash to the
// file's hash.
func (x *XetCAS) verifyShard(s *xet.Shard) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, xi := range s.Xorbs {
		rec, ok := x.xorbs[xi.Hash]
		if !ok {
			return fmt.Errorf("xorb %s was not uploaded", xi.Hash)
		}
		if len(rec.chunks) != len(xi.Chunks) {
			return fmt.Errorf("xorb %s has %d chunks, the shard lists %d", xi.Hash, len(rec.chunks), len(xi.Chunks))
		}
		for i, c := range xi.Chunks {
			if c != rec.chunks[i] {
				return fmt.Errorf("xorb %s chunk %d differs from the shard's", xi.Hash, i)
			}
		}
	}
	for _, f := range s.Files {
		var all []xet.Chunk
		for i, t := range f.Terms {
			rec, ok := x.xorbs[t.Xorb]
			if !ok {
				return fmt.Errorf("file %s term %d: xorb %s was not uploaded", f.Hash, i, t.Xorb)
			}
			if t.Start >= t.End || int(t.End) > len(rec.chunks) {
				return fmt.Errorf("file %s term %d: chunks [%d, %d) of a xorb of %d", f.Hash, i, t.Start, t.End, len(rec.chunks))
			}
			cs := rec.chunks[t.Start:t.End]
			hs := make([]xet.Hash, len(cs))
			var size uint32
			for j, c := range cs {
				hs[j] = c.Hash
				size += c.Size
			}
			if size != t.Size {
				return fmt.Errorf("file %s term %d: %d bytes, the shard says %d", f.Hash, i, size, t.Size)
			}
			if xet.VerificationHash(hs) != t.Verification {
				return fmt.Errorf("file %s term %d: verification hash mismatch", f.Hash, i)
			}
			all = append(all, cs...)
		}
		if got := xet.FileHash(all); got != f.Hash {
			return fmt.Errorf("file %s: its chunks hash to %s", f.Hash, got)
		}
	}
	return nil
}

// maxDedupXorbs caps the xorbs of one global deduplication answer.
const maxDedupXorbs = 64

// queryChunk answers the global deduplication query: a shard with the CAS
// info of the xorb holding the chunk and, as the Hub's CAS does ("other
// xorbs returned in a shard are possibly more likely to reference content
// that the client has", docs/xet/shard.md), of the other xorbs of the
// files that use it, chunk hashes keyed with the shard's HMAC key.
func (x *XetCAS) queryChunk(w http.ResponseWriter, r *http.Request, hexHash string) {
	if !x.auth(w, r, false) {
		return
	}
	h, err := xet.ParseHash(hexHash)
	if err != nil {
		xetError(w, http.StatusBadRequest, "%v", err)
		return
	}
	x.mu.Lock()
	loc, ok := x.chunks[h]
	var infos []xet.XorbInfo
	if ok {
		for _, xh := range x.relatedXorbs(loc.xorb) {
			rec := x.xorbs[xh]
			info := xet.XorbInfo{Hash: xh, StoredSize: uint32(rec.offsets[len(rec.offsets)-1])}
			for _, c := range rec.chunks {
				info.Chunks = append(info.Chunks, xet.Chunk{Hash: xet.HMAC(c.Hash, x.hmacKey), Size: c.Size})
			}
			infos = append(infos, info)
		}
	}
	x.mu.Unlock()
	if !ok {
		xetError(w, http.StatusNotFound, "chunk %s is not known", h)
		return
	}
	now := x.now()
	s := &xet.Shard{Xorbs: infos, HMACKey: x.hmacKey,
		CreatedAt: uint64(now.Unix()), KeyExpiry: uint64(now.Add(7 * 24 * time.Hour).Unix())}
	b, err := s.Marshal(true)
	if err != nil {
		xetError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(b)
}

// relatedXorbs is xh first, then the stored xorbs that files using xh also
// use, in the files' order, at most maxDedupXorbs in all; x.mu is held.
func (x *XetCAS) relatedXorbs(xh xet.Hash) []xet.Hash {
	out := []xet.Hash{xh}
	seen := map[xet.Hash]bool{xh: true}
	keys := make([]xet.Hash, 0, len(x.files))
	for k := range x.files {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return bytes.Compare(keys[i][:], keys[j][:]) < 0 })
	for _, k := range keys {
		f := x.files[k]
		uses := false
		for _, t := range f.Terms {
			uses = uses || t.Xorb == xh
		}
		if !uses {
			continue
		}
		for _, t := range f.Terms {
			if len(out) >= maxDedupXorbs {
				return out
			}
			if !seen[t.Xorb] && x.xorbs[t.Xorb] != nil {
				seen[t.Xorb] = true
				out = append(out, t.Xorb)
			}
		}
	}
	return out
}

type xetRange struct {
	Start uint64 `json:"start"`
	End   uint64 `json:"end"`
}

type xetReconTerm struct {
	Hash           string   `json:"hash"`
	UnpackedLength uint32   `json:"unpacked_length"`
	Range          xetRange `json:"range"`
}

type xetFetchInfo struct {
	Range    xetRange `json:"range"`
	URL      string   `json:"url"`
	URLRange xetRange `json:"url_range"` // end inclusive
}

type xetReconstruction struct {
	OffsetIntoFirstRange uint64                    `json:"offset_into_first_range"`
	Terms                []xetReconTerm            `json:"terms"`
	FetchInfo            map[string][]xetFetchInfo `json:"fetch_info"`
}

// The v2 answer (docs/xet/api.md, endpoint 6): per xorb, URLs each with
// the chunk and byte ranges it serves; @huggingface/hub 2.x reads this one.
type xetRangesV2 struct {
	Chunks xetRange `json:"chunks"`
	Bytes  xetRange `json:"bytes"` // end inclusive
}

type xetFetchV2 struct {
	URL    string        `json:"url"`
	Ranges []xetRangesV2 `json:"ranges"`
}

type xetReconstructionV2 struct {
	OffsetIntoFirstRange uint64                  `json:"offset_into_first_range"`
	Terms                []xetReconTerm          `json:"terms"`
	Xorbs                map[string][]xetFetchV2 `json:"xorbs"`
}

func (x *XetCAS) origin(r *http.Request) string {
	if x.baseURL != "" {
		return x.baseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (x *XetCAS) sign(h string, start, end uint64) string {
	m := hmac.New(sha256.New, x.key)
	fmt.Fprintf(m, "%s %d %d", h, start, end)
	return hex.EncodeToString(m.Sum(nil))
}

// reconstruction answers GET /v1|v2/reconstructions/{file}: the file's
// terms (those covering the Range, if one is asked) and a signed URL per
// term for the term's bytes of its xorb.
func (x *XetCAS) reconstruction(w http.ResponseWriter, r *http.Request, hexHash string, v2 bool) {
	if !x.auth(w, r, false) {
		return
	}
	h, err := xet.ParseHash(hexHash)
	if err != nil {
		xetError(w, http.StatusBadRequest, "%v", err)
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	f, ok := x.files[h]
	if !ok {
		xetError(w, http.StatusNotFound, "file %s is not known", h)
		return
	}
	size := f.Size()
	first, last := uint64(0), size // wanted bytes [first, last)
	if rg := r.Header.Get("Range"); rg != "" {
		m := xetReconRange.FindStringSubmatch(rg)
		if m == nil {
			xetError(w, http.StatusBadRequest, "bad Range %q", rg)
			return
		}
		first, _ = strconv.ParseUint(m[1], 10, 64)
		if m[2] != "" {
			e, _ := strconv.ParseUint(m[2], 10, 64)
			last = min(e+1, size)
		}
		if first >= size || last <= first {
			xetError(w, http.StatusRequestedRangeNotSatisfiable, "range %q outside a file of %d bytes", rg, size)
			return
		}
	}
	v1 := xetReconstruction{Terms: []xetReconTerm{}, FetchInfo: map[string][]xetFetchInfo{}}
	v2a := xetReconstructionV2{Terms: []xetReconTerm{}, Xorbs: map[string][]xetFetchV2{}}
	origin := x.origin(r)
	var pos uint64 // file offset of the current chunk
	for _, t := range f.Terms {
		rec := x.xorbs[t.Xorb]
		start, end := -1, -1
		for i := int(t.Start); i < int(t.End); i++ {
			cs := uint64(rec.chunks[i].Size)
			if pos+cs > first && pos < last {
				if start < 0 {
					start = i
					if len(v1.Terms) == 0 {
						v1.OffsetIntoFirstRange = first - pos
					}
				}
				end = i + 1
			}
			pos += cs
		}
		if start < 0 {
			continue
		}
		var n uint32
		for _, c := range rec.chunks[start:end] {
			n += c.Size
		}
		hs := t.Xorb.String()
		term := xetReconTerm{Hash: hs, UnpackedLength: n, Range: xetRange{uint64(start), uint64(end)}}
		v1.Terms = append(v1.Terms, term)
		bs, be := uint64(rec.offsets[start]), uint64(rec.offsets[end])-1
		u := fmt.Sprintf("%s/v1/fetch/%s?sig=%s", origin, hs, x.sign(hs, bs, be))
		chunks := xetRange{uint64(start), uint64(end)}
		v1.FetchInfo[hs] = append(v1.FetchInfo[hs], xetFetchInfo{Range: chunks, URL: u, URLRange: xetRange{bs, be}})
		v2a.Xorbs[hs] = append(v2a.Xorbs[hs], xetFetchV2{URL: u, Ranges: []xetRangesV2{{Chunks: chunks, Bytes: xetRange{bs, be}}}})
	}
	w.Header().Set("Content-Type", "application/json")
	if v2 {
		v2a.OffsetIntoFirstRange, v2a.Terms = v1.OffsetIntoFirstRange, v1.Terms
		_ = json.NewEncoder(w).Encode(v2a)
		return
	}
	_ = json.NewEncoder(w).Encode(v1)
}

// fetch serves the signed byte range of a xorb; the Range header must be
// the signed one, as on the Hub's transfer service.
func (x *XetCAS) fetch(w http.ResponseWriter, r *http.Request, hexHash string) {
	m := xetRangeValue.FindStringSubmatch(r.Header.Get("Range"))
	if m == nil {
		xetError(w, http.StatusForbidden, "a fetch needs the Range it was signed for")
		return
	}
	s, _ := strconv.ParseUint(m[1], 10, 64)
	e, _ := strconv.ParseUint(m[2], 10, 64)
	if !hmac.Equal([]byte(r.URL.Query().Get("sig")), []byte(x.sign(hexHash, s, e))) {
		xetError(w, http.StatusForbidden, "bad signature for this range")
		return
	}
	h, err := xet.ParseHash(hexHash)
	if err != nil {
		xetError(w, http.StatusBadRequest, "%v", err)
		return
	}
	b, err := os.ReadFile(x.xorbPath(h))
	if err != nil || e >= uint64(len(b)) || s > e {
		xetError(w, http.StatusNotFound, "xorb %s range %d-%d not stored", h, s, e)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", s, e, len(b)))
	w.Header().Set("Content-Length", strconv.FormatUint(e-s+1, 10))
	w.WriteHeader(http.StatusPartialContent)
	_, _ = w.Write(b[s : e+1])
}

// XetBatchAction is the upload action for an object of an LFS batch answer
// when the emulator chooses the "xet" transfer (the answer's top-level
// "transfer" is then "xet"): href is the xet-write-token URL, the headers
// carry a fresh write token for the CAS at casURL, as the Hub does and
// @huggingface/hub 2.x reads them.
func (x *XetCAS) XetBatchAction(casURL, writeTokenURL, repo string) (href string, header map[string]string) {
	tok, exp := x.IssueToken(repo, true, time.Hour)
	sid := make([]byte, 12)
	_, _ = rand.Read(sid)
	return writeTokenURL, map[string]string{
		xet.HeaderCASURL:          casURL,
		xet.HeaderAccessToken:     tok,
		xet.HeaderTokenExpiration: strconv.FormatInt(exp.Unix(), 10),
		xet.HeaderSessionID:       hex.EncodeToString(sid),
	}
}

// SetXetFileInfo writes the headers of a resolve answer for a Xet-stored
// file when the client asked for them (Accept includes
// application/vnd.xet-fileinfo+json), as @huggingface/hub's
// fileDownloadInfo reads them: the size, the file hash, and Link relations
// xet-reconstruction-info (this CAS's reconstruction URL) and xet-auth
// (the Hub's xet-read-token URL).
func (x *XetCAS) SetXetFileInfo(h http.Header, f xet.FileInfo, casURL, readTokenURL string) {
	h.Set("Content-Type", "application/vnd.xet-fileinfo+json")
	h.Set("X-Linked-Size", strconv.FormatUint(f.Size(), 10))
	h.Set("X-Xet-Hash", f.Hash.String())
	h.Set("Link", fmt.Sprintf(`<%s/v1/reconstructions/%s>; rel="xet-reconstruction-info", <%s>; rel="xet-auth"`,
		strings.TrimRight(casURL, "/"), f.Hash.String(), readTokenURL))
}
