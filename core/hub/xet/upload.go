package xet

import (
	"context"
	"errors"
	"io"
	"sync"
)

// UploadOptions configure an Uploader.
type UploadOptions struct {
	Policy   Policy // chunk compression; zero: PolicyAuto
	Parallel int    // xorb uploads in flight; 0: 2
	// XorbSize caps the serialized xorbs: 0 → DefaultXorbSize, at most
	// MaxXorbSize. Memory is (Parallel+1) × XorbSize of xorb buffers,
	// allocated once and reused: 96 MiB at the defaults, 192 MiB with 64
	// MiB xorbs. Smaller xorbs mean more requests and smaller
	// global-deduplication answers.
	XorbSize int
	// Cache, when set, is asked where chunks already are, receives every
	// uploaded xorb at once (so a rerun after a crash does not send it
	// again) and every uploaded shard, and keeps what global
	// deduplication answers.
	Cache *ShardCache
	// GlobalDedup asks the CAS about eligible chunks (a file's first, and
	// those DedupEligible picks, at most one per GlobalDedupSpacing bytes);
	// the answers go to Cache, which it needs.
	GlobalDedup bool
	// Progress, when set, is called after each xorb upload and each file,
	// from the goroutine that caused it; it must be quick.
	Progress func(UploadStats)
	// OnXorb, when set, is called after each xorb the CAS accepted, with
	// the bytes of each file's chunks it carried, from the goroutine that
	// uploaded it; it must be quick and safe for concurrent use.
	OnXorb func(XorbSent)
	// OnDedup, when set, is called from Add's goroutine for each chunk of
	// a file that is not sent: already in this upload, in Cache or found
	// by global deduplication (file: the index Add's PackedFile has).
	OnDedup func(file int, size uint32)
}

// XorbSent is a xorb the CAS accepted.
type XorbSent struct {
	Hash     Hash
	Stored   int         // serialized bytes sent
	Inserted bool        // false: the CAS already held it
	Files    []FileBytes // chunk bytes per file (PackedFile.Index) first packed in it
}

// DefaultXorbSize is the xorb size an Uploader fills by default: half the
// format's maximum, which keeps an upload's xorb buffers under 100 MiB.
const DefaultXorbSize = 32 << 20

// GlobalDedupSpacing is the least distance between two global
// deduplication queries within a file: the spec recommends about 4 MB, as
// an answer describes the chunks around the one asked about.
const GlobalDedupSpacing = 4 << 20

// UploadStats count an upload's bytes.
type UploadStats struct {
	Stats             // what the Packer read, packed and deduplicated
	SentBytes  uint64 // serialized xorb bytes the CAS accepted
	XorbsSent  int    // xorbs uploaded
	XorbsKnown int    // of those, how many the CAS already held
	Queries    int    // global deduplication queries
	CacheHits  int    // chunks found in Cache (from earlier uploads or answers)
}

// Uploader uploads files to a CAS: Add reads each file once, xorbs go up
// Parallel at a time as they fill, and Finish uploads the last xorb and
// the shards that register the files. Add and Finish are called from one
// goroutine.
type Uploader struct {
	cas  *CASClient
	opts UploadOptions
	p    *Packer
	ctx  context.Context // of the current Add or Finish, for emit

	slots  chan struct{}
	free   chan []byte // xorb buffers back from finished uploads
	mapped [][]byte    // buffers outside the Go heap, unmapped by Finish (Add's goroutine)
	wg     sync.WaitGroup

	mu     sync.Mutex
	err    error // the first upload failure
	xorbs  []XorbInfo
	files  []*PackedFile
	stats  UploadStats
	pstats Stats  // the Packer's, copied on the Add goroutine (the Packer is not shared)
	sinceQ uint64 // bytes since the last global query in the current file
	first  bool   // the next looked-up chunk is its file's first
}

// NewUploader returns an Uploader sending to cas.
func NewUploader(cas *CASClient, opts UploadOptions) *Uploader {
	if opts.Parallel <= 0 {
		opts.Parallel = 2
	}
	if opts.XorbSize <= 0 {
		opts.XorbSize = DefaultXorbSize
	}
	opts.XorbSize = min(opts.XorbSize, MaxXorbSize)
	u := &Uploader{cas: cas, opts: opts, slots: make(chan struct{}, opts.Parallel),
		free: make(chan []byte, opts.Parallel+1)}
	u.p = NewPacker(opts.Policy, u.emit)
	u.p.OnDedup = opts.OnDedup
	u.p.xw.maxSize = opts.XorbSize
	u.p.xw.alloc = func() []byte {
		select {
		case b := <-u.free:
			return b
		default:
		}
		if b, ok := newXorbBuffer(opts.XorbSize); ok {
			u.mapped = append(u.mapped, b)
			return b
		}
		return make([]byte, 0, opts.XorbSize)
	}
	if opts.Cache != nil {
		u.p.Lookup = u.lookup
	}
	return u
}

// lookup asks the cache, and the CAS for eligible chunks.
func (u *Uploader) lookup(h Hash) (Located, bool) {
	if loc, ok := u.opts.Cache.Lookup(h); ok {
		u.mu.Lock()
		u.stats.CacheHits++
		u.mu.Unlock()
		return loc, true
	}
	first := u.first
	u.first = false
	if !u.opts.GlobalDedup || !DedupEligible(h, first) || (!first && u.sinceQ < GlobalDedupSpacing) {
		return Located{}, false
	}
	u.sinceQ = 0
	u.mu.Lock()
	u.stats.Queries++
	u.mu.Unlock()
	s, found, err := u.cas.QueryChunk(u.ctx, h)
	if err != nil || !found {
		// Deduplication is an optimization: a failed query costs bytes,
		// not the upload.
		return Located{}, false
	}
	if b, err := s.Marshal(true); err == nil {
		_ = u.opts.Cache.Add(b)
	}
	return u.opts.Cache.Lookup(h)
}

// emit uploads a sealed xorb in the background, at most Parallel at once.
func (u *Uploader) emit(x SealedXorb) error {
	if err := u.failed(); err != nil {
		return err
	}
	select {
	case u.slots <- struct{}{}:
	case <-u.ctx.Done():
		return u.ctx.Err()
	}
	u.mu.Lock()
	u.xorbs = append(u.xorbs, x.Info)
	u.pstats = u.p.Stats()
	u.mu.Unlock()
	ctx := u.ctx
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		defer func() { <-u.slots }()
		inserted, err := u.cas.UploadXorb(ctx, x.Info.Hash, x.Bytes)
		defer func() {
			select {
			case u.free <- x.Bytes[:0]:
			default:
			}
		}()
		if err == nil && u.opts.Cache != nil {
			// Remembered at once: a rerun after a crash finds it here.
			if b, merr := (&Shard{Xorbs: []XorbInfo{x.Info}}).Marshal(false); merr == nil {
				_ = u.opts.Cache.Add(b)
			}
		}
		u.mu.Lock()
		if err != nil {
			if u.err == nil {
				u.err = err
			}
			u.mu.Unlock()
			return
		}
		u.stats.XorbsSent++
		u.stats.SentBytes += uint64(len(x.Bytes))
		if !inserted {
			u.stats.XorbsKnown++
		}
		st := u.statsLocked()
		u.mu.Unlock()
		if u.opts.OnXorb != nil {
			u.opts.OnXorb(XorbSent{Hash: x.Info.Hash, Stored: len(x.Bytes), Inserted: inserted, Files: x.Files})
		}
		if u.opts.Progress != nil {
			u.opts.Progress(st)
		}
	}()
	return nil
}

func (u *Uploader) failed() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

func (u *Uploader) statsLocked() UploadStats {
	st := u.stats
	st.Stats = u.pstats
	return st
}

// Stats are the counts so far.
func (u *Uploader) Stats() UploadStats {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.statsLocked()
}

// Add reads a file to its end and packs it; its FileInfo comes from
// Finish. The returned PackedFile gives its hash, sha256 and size at once.
func (u *Uploader) Add(ctx context.Context, r io.Reader) (*PackedFile, error) {
	if err := u.failed(); err != nil {
		return nil, err
	}
	u.ctx = ctx
	u.first, u.sinceQ = true, GlobalDedupSpacing
	pf, err := u.p.AddFile(&countingReader{r: r, n: &u.sinceQ})
	if err != nil {
		return nil, err
	}
	u.files = append(u.files, pf)
	u.mu.Lock()
	u.pstats = u.p.Stats()
	u.mu.Unlock()
	if u.opts.Progress != nil {
		u.opts.Progress(u.Stats())
	}
	return pf, nil
}

// countingReader counts bytes read, for the spacing of global queries.
type countingReader struct {
	r io.Reader
	n *uint64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += uint64(n)
	return n, err
}

// Finish uploads the last xorb, waits for every xorb, then uploads the
// shards registering the files (split below MaxShardSize), and returns
// the files' infos in the order they were added. It releases the xorb
// buffers: the Uploader is done, whatever the outcome (an Uploader must
// end with Finish, even after a failed Add); xorbs already sent stay in
// the Cache for a rerun.
func (u *Uploader) Finish(ctx context.Context) ([]FileInfo, error) {
	u.ctx = ctx
	ferr := u.p.Flush()
	u.wg.Wait()
	// Every upload is over (its body fenced off): nothing reads the
	// buffers any more.
	for _, b := range u.mapped {
		freeXorbBuffer(b)
	}
	u.mapped = nil
	u.p.xw.alloc = func() []byte { return nil }
	u.mu.Lock()
	u.pstats = u.p.Stats()
	u.mu.Unlock()
	if err := errors.Join(u.failed(), ferr); err != nil {
		return nil, err
	}
	infos := make([]FileInfo, len(u.files))
	for i, pf := range u.files {
		fi, err := pf.Info()
		if err != nil {
			return nil, err
		}
		infos[i] = fi
	}
	for _, s := range splitShards(infos, u.xorbs, MaxShardSize) {
		b, err := s.Marshal(false)
		if err != nil {
			return nil, err
		}
		if err := u.cas.UploadShard(ctx, b); err != nil {
			return nil, err
		}
		if u.opts.Cache != nil {
			_ = u.opts.Cache.Add(b)
		}
	}
	return infos, nil
}

// splitShards spreads files and xorbs over shards of at most maxSize
// bytes (header and bookends included).
func splitShards(files []FileInfo, xorbs []XorbInfo, maxSize int) []*Shard {
	budget := maxSize
	var out []*Shard
	cur, size := &Shard{}, shardHeaderSize+2*shardEntrySize
	add := func(n int) {
		if size+n > budget && (len(cur.Files) > 0 || len(cur.Xorbs) > 0) {
			out = append(out, cur)
			cur, size = &Shard{}, shardHeaderSize+2*shardEntrySize
		}
		size += n
	}
	for _, f := range files {
		n := shardEntrySize * (1 + 2*len(f.Terms))
		if f.SHA256 != [32]byte{} {
			n += shardEntrySize
		}
		add(n)
		cur.Files = append(cur.Files, f)
	}
	for _, x := range xorbs {
		add(shardEntrySize * (1 + len(x.Chunks)))
		cur.Xorbs = append(cur.Xorbs, x)
	}
	if len(cur.Files) > 0 || len(cur.Xorbs) > 0 {
		out = append(out, cur)
	}
	return out
}
