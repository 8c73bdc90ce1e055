package xet

import (
	"context"
	"errors"
	"io"
)

// Estimate says how many bytes an upload of some files would send, from
// shard caches alone, without packing or sending anything: each file is cut
// and hashed as the Packer cuts and hashes it, and a chunk counts as new
// unless a cache knows where it is or an earlier chunk of the estimate
// had the same hash (the Packer packs such a chunk once). Global
// deduplication is not asked, so the estimate is an upper bound of what an
// upload with the same caches sends, before compression.
//
// Memory is the Chunker's buffer plus one hash per distinct new chunk seen
// (about 48 bytes per 64 KiB on average). An Estimate is used from one
// goroutine.
type Estimate struct {
	caches []*ShardCache
	seen   map[Hash]struct{}
	// Total is the bytes read by Add so far; New those of chunks neither
	// in the cache nor seen before; Total - New were found.
	Total, New int64
}

// NewEstimate returns an empty Estimate looking chunks up in each of
// caches (nil ones skipped; none: only repeats within the estimate are
// found).
func NewEstimate(caches ...*ShardCache) *Estimate {
	e := &Estimate{seen: map[Hash]struct{}{}}
	for _, c := range caches {
		if c != nil {
			e.caches = append(e.caches, c)
		}
	}
	return e
}

// estimateCheckEvery is how many chunks Add cuts between two looks at its
// context: about 4 MiB.
const estimateCheckEvery = 64

// Add reads r to its end and returns the bytes of its chunks that are new
// (also added to e.New). It stops with ctx's error when ctx ends, and with
// a read error as it came; the counts then hold what was read before.
func (e *Estimate) Add(ctx context.Context, r io.Reader) (newBytes int64, err error) {
	c := NewChunker(r)
	for i := 0; ; i++ {
		if i%estimateCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return newBytes, err
			}
		}
		ch, _, err := c.Next()
		if errors.Is(err, io.EOF) {
			return newBytes, nil
		}
		if err != nil {
			return newBytes, err
		}
		n := int64(ch.Size)
		e.Total += n
		if e.known(ch.Hash) {
			continue
		}
		e.seen[ch.Hash] = struct{}{}
		e.New += n
		newBytes += n
	}
}

func (e *Estimate) known(h Hash) bool {
	if _, ok := e.seen[h]; ok {
		return true
	}
	for _, c := range e.caches {
		if _, ok := c.Lookup(h); ok {
			return true
		}
	}
	return false
}

// EstimateNew is the bytes of r that an upload deduplicating against
// cache would send: NewEstimate(cache).Add(ctx, r).
func EstimateNew(ctx context.Context, r io.Reader, cache *ShardCache) (newBytes int64, err error) {
	return NewEstimate(cache).Add(ctx, r)
}
