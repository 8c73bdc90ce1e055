package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"

	"modelpub/core/hub/xet"
)

// The Xet side of an Upload (docs/xet/upload-protocol.md): when the LFS
// batch answers the "xet" transfer, a file's bytes go to the CAS as xorbs
// of new chunks, and one or more shards register the files before the
// commit, which still names each file by its sha256 (an lfsFile line).
// The files of an upload share one xet.Uploader, fed one file at a time:
// chunks repeated across files are sent once, small files share xorbs,
// and memory is the Uploader's xorb buffers whatever the number of files.

// DefaultXetCacheBytes bounds the default shard cache: its index is held
// in memory (about 100 bytes per 64 KiB chunk uploaded), so 16 MiB of
// shards, about 20 GB of uploads remembered, cost about 35 MB of memory.
const DefaultXetCacheBytes = 16 << 20

// xetParallel is how many xorbs go up at once: with DefaultXorbSize, the
// xorb buffers of an upload are (xetParallel+1) × 32 MiB.
const xetParallel = 2

// xetXorbSize is the xorb size of Xet uploads; 0: xet.DefaultXorbSize
// (tests make it small to get many xorbs from little data).
var xetXorbSize = 0

// xetSession is an upload's Xet state, made at the first batch that
// answered "xet".
type xetSession struct {
	u      *Upload
	tokens *xet.TokenSource
	cas    *xet.CASClient
	up     *xet.Uploader
	cache  *xet.ShardCache

	addMu sync.Mutex // Uploader.Add: one file at a time
	next  int        // the next file's index in the Uploader

	mu    sync.Mutex
	files map[int]*xetFile // by Uploader index
	order []*pending       // the files added, in order (addMu)
}

// xetFile is a file's share of the Xet upload, for progress.
type xetFile struct {
	path  string
	added bool   // Add returned: newBytes is final
	newB  uint64 // bytes of its chunks to send
	sent  uint64 // of those, in xorbs the CAS accepted
	dedup uint64 // deduplicated bytes not yet reported
	done  bool   // reported done
}

// transfers is what this upload's batches offer.
func (u *Upload) transfers() []string {
	switch u.c.transfer {
	case TransferLFS:
		return lfsTransfers
	case TransferXet:
		return xetTransfer
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.noXet {
		return lfsTransfers
	}
	return autoTransfer
}

// writeTokenURL is the xet-write-token endpoint for the upload's revision:
// the branch committed to, or the one a pull request is opened against,
// with create_pr=1 as huggingface_hub asks for it (a user who may only
// open pull requests gets a token for one).
func (u *Upload) writeTokenURL() string {
	s := xet.WriteTokenURL(u.c.endpoint, string(u.id.typ()), u.id.path(), u.rev)
	if u.opts.CreatePR {
		s += "?create_pr=1"
	}
	return s
}

// xetStart returns the upload's Xet session, making it from the first xet
// batch action: its token (or one from the xet-write-token endpoint when
// the action carries none), the shard cache, the Uploader.
func (u *Upload) xetStart(act *LFSHref) (*xetSession, error) {
	u.xetMu.Lock()
	defer u.xetMu.Unlock()
	if u.xs != nil {
		return u.xs, nil
	}
	session := xet.SessionFromBatchAction(act.Header)
	if session == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		session = hex.EncodeToString(b[:])
	}
	c := u.c
	tokenURL := u.writeTokenURL()
	fetch := func(ctx context.Context) (xet.Token, error) {
		resp, err := c.call(ctx, &request{op: "xet write token", method: http.MethodGet, url: tokenURL,
			header: http.Header{xet.HeaderSessionID: {session}}, auth: true, retry: true})
		if err != nil {
			return xet.Token{}, err
		}
		t, err := xet.ParseToken(resp.body)
		if err != nil {
			return xet.Token{}, &Error{Kind: ErrBadRequest, Op: "xet write token", Message: err.Error()}
		}
		return t, nil
	}
	tokens := xet.NewTokenSource(fetch, nil)
	if t, err := xet.TokenFromBatchAction(act.Header); err == nil {
		tokens.Seed(t)
	}
	if _, err := tokens.Token(u.ctx); err != nil {
		return nil, err
	}
	xs := &xetSession{u: u, tokens: tokens, files: map[int]*xetFile{}}
	xs.cache = u.opts.XetCache
	if xs.cache == nil {
		var cerr error
		if xs.cache, cerr = c.OpenXetCache(); cerr != nil {
			c.logf("hub: no Xet shard cache (%v); a rerun will send again what this one sent", cerr)
			xs.cache = nil
		}
	}
	var hc http.Client
	hc.Transport = c.http.Transport // not c.http: its redirect policy is the Hub token's
	retries := c.retry.MaxRetries
	if retries == 0 { // the policy's "none" (xet.Retry reads 0 as its default)
		retries = -1
	}
	cas := xet.NewCASClient(tokens, xet.CASOptions{HTTPClient: &hc, Logf: c.logf, SessionID: session, UserAgent: c.userAgent,
		Retry: xet.Retry{MaxRetries: retries, BaseWait: c.retry.BaseWait, MaxWait: c.retry.MaxWait, MaxServerWait: c.retry.MaxServerWait},
		Sleep: c.sleep})
	xs.cas = cas
	xs.up = xet.NewUploader(cas, xet.UploadOptions{Parallel: xetParallel, XorbSize: xetXorbSize, Cache: xs.cache, GlobalDedup: xs.cache != nil,
		OnXorb: xs.onXorb, OnDedup: xs.onDedup})
	u.xs = xs
	return xs, nil
}

// XetCacheDir is the folder of this Hub's default Xet shard cache:
// xet.DefaultShardCacheDir, then the endpoint as a folder name
// ("https___huggingface.co"): the chunks a cache records are in one Hub's
// storage only.
func (c *Client) XetCacheDir() (string, error) {
	dir, err := xet.DefaultShardCacheDir()
	if err != nil {
		return "", err
	}
	u, err := url.Parse(c.endpoint)
	if err != nil {
		return "", err
	}
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			return r
		}
		return '_'
	}, strings.ToLower(u.Scheme+"___"+u.Host+strings.TrimRight(u.Path, "/")))
	return filepath.Join(dir, name), nil
}

// OpenXetCache opens the default Xet shard cache (XetCacheDir), bounded
// by DefaultXetCacheBytes: what an upload uses when UploadOptions.XetCache
// is nil, and what a dry run estimates new bytes from.
func (c *Client) OpenXetCache() (*xet.ShardCache, error) {
	dir, err := c.XetCacheDir()
	if err != nil {
		return nil, err
	}
	return xet.OpenShardCache(dir, DefaultXetCacheBytes, nil)
}

// dedupFlush is how many deduplicated bytes of a file gather before a
// progress report.
const dedupFlush = 4 << 20

// onDedup counts a deduplicated chunk (Add's goroutine).
func (xs *xetSession) onDedup(file int, size uint32) {
	xs.mu.Lock()
	f := xs.files[file]
	f.dedup += uint64(size)
	var n uint64
	if f.dedup >= dedupFlush {
		n, f.dedup = f.dedup, 0
	}
	xs.mu.Unlock()
	if n > 0 {
		xs.u.rep.dedup("upload", f.path, int64(n))
	}
}

// onXorb counts the bytes a xorb the CAS accepted carried, per file.
func (xs *xetSession) onXorb(x xet.XorbSent) {
	for _, fb := range x.Files {
		xs.mu.Lock()
		f := xs.files[fb.File]
		f.sent += fb.Bytes
		finished := f.added && !f.done && f.sent == f.newB
		f.done = f.done || finished
		xs.mu.Unlock()
		xs.u.rep.add("upload", f.path, int64(fb.Bytes))
		if finished {
			xs.u.rep.done("upload", f.path)
		}
	}
}

// send packs p's content: its new chunks go up as their xorbs fill, the
// others are referenced. It returns the bytes of p's new chunks and of
// its deduplicated ones.
func (xs *xetSession) send(p *pending) (sent, deduped int64, err error) {
	u, a := xs.u, &p.a
	u.rep.phase("upload", a.Size, 1)
	u.rep.file("upload", a.Path, a.Size)
	src, err := a.open()
	if err != nil {
		return 0, 0, err
	}
	defer src.Close()
	xs.addMu.Lock()
	idx := xs.next
	xs.next++
	xs.order = append(xs.order, p)
	f := &xetFile{path: a.Path}
	xs.mu.Lock()
	xs.files[idx] = f
	xs.mu.Unlock()
	pf, err := xs.up.Add(u.ctx, io.NewSectionReader(src, 0, a.Size))
	if err == nil && pf.Index != idx {
		err = fmt.Errorf("hub: xet: file %s packed as file %d, not %d", a.Path, pf.Index, idx)
	}
	xs.addMu.Unlock()
	if err != nil {
		if ctxErr := u.ctx.Err(); ctxErr != nil {
			return 0, 0, ctxErr
		}
		return 0, 0, xs.wrap(err, "upload "+a.Path)
	}
	if int64(pf.Size) != a.Size || hex.EncodeToString(pf.SHA256[:]) != p.h.SHA256 {
		return 0, 0, fmt.Errorf("hub: %s changed since it was hashed: its bytes are not the ones whose sha256 the commit names", a.Path)
	}
	xs.mu.Lock()
	f.added, f.newB = true, pf.NewBytes
	finished := f.sent == f.newB
	f.done = finished
	rest := f.dedup
	f.dedup = 0
	xs.mu.Unlock()
	if rest > 0 {
		u.rep.dedup("upload", a.Path, int64(rest))
	}
	if finished {
		u.rep.done("upload", a.Path)
	}
	return int64(pf.NewBytes), int64(pf.DedupedBytes), nil
}

// finish uploads the last xorb, waits for the others and uploads the
// shards registering the files; after a failure (or with ctx done) it
// only waits for the xorb uploads in flight to end.
//
// A CAS that refuses the shard after chunks were found in the local cache
// may not hold what the cache says (a local Hub started afresh at the same
// address): the cache is cleared and the files are packed and sent again
// without it, once.
func (xs *xetSession) finish(ctx context.Context) error {
	_, err := xs.up.Finish(ctx)
	if err != nil && errors.Is(err, xet.ErrRefused) && ctx.Err() == nil && xs.cache != nil && xs.up.Stats().CacheHits > 0 {
		xs.u.c.logf("hub: the Hub's Xet storage refused the upload that used the local shard cache (%v); clearing the cache and sending again", err)
		if cerr := xs.cache.Clear(); cerr != nil {
			xs.u.c.logf("hub: clearing the Xet shard cache: %v", cerr)
		}
		err = xs.redo(ctx)
	}
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		return xs.wrap(err, "xet upload")
	}
	return nil
}

// redo packs and sends every file again with a fresh Uploader.
func (xs *xetSession) redo(ctx context.Context) error {
	xs.up = xet.NewUploader(xs.cas, xet.UploadOptions{Parallel: xetParallel, XorbSize: xetXorbSize, Cache: xs.cache, GlobalDedup: true})
	for _, p := range xs.order {
		src, err := p.a.open()
		if err != nil {
			return err
		}
		pf, err := xs.up.Add(ctx, io.NewSectionReader(src, 0, p.a.Size))
		src.Close()
		if err != nil {
			_, _ = xs.up.Finish(ctx)
			return err
		}
		if hex.EncodeToString(pf.SHA256[:]) != p.h.SHA256 {
			_, _ = xs.up.Finish(ctx)
			return fmt.Errorf("hub: %s changed since it was hashed: its bytes are not the ones whose sha256 the commit names", p.a.Path)
		}
	}
	_, err := xs.up.Finish(ctx)
	return err
}

// wrap turns a CAS failure into the client's *Error kinds; other errors
// (reading a file) pass as they are.
func (xs *xetSession) wrap(err error, op string) error {
	var ce *xet.CASError
	if !errors.As(err, &ce) {
		var he *Error
		if errors.As(err, &he) {
			return err
		}
		return err
	}
	kind := ErrBadRequest
	switch {
	case errors.Is(err, xet.ErrUnauthorized):
		kind = ErrUnauthorized
	case errors.Is(err, xet.ErrForbidden):
		kind = ErrForbidden
	case errors.Is(err, xet.ErrRateLimited):
		kind = ErrRateLimited
	case errors.Is(err, xet.ErrServer):
		kind = ErrServer
	case errors.Is(err, xet.ErrNetwork):
		kind = ErrNetwork
	}
	return &Error{Kind: kind, Op: op, RetryAfter: ce.RetryAfter, Err: err, Hint: "the Hub's Xet storage refused or failed the upload; run again (uploaded chunks are not sent twice), or use --transfer lfs"}
}
