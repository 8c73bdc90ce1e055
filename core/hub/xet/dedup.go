package xet

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// DedupEligible reports whether a chunk may be asked about through the
// global deduplication query (docs/xet/deduplication.md): the first chunk
// of a file always; another when its hash's last 8 bytes, read as a
// little-endian uint64, are a multiple of 1024.
func DedupEligible(h Hash, firstOfFile bool) bool {
	return firstOfFile || binary.LittleEndian.Uint64(h[24:])%1024 == 0
}

// ShardCache is the local deduplication cache: shards this client uploaded
// or learned from global deduplication queries, kept in a directory (one
// file per shard, named by its sha256) within a byte budget, oldest
// dropped first. It answers where a chunk already is. Safe for concurrent
// use.
type ShardCache struct {
	dir string
	max int64
	now func() time.Time

	mu     sync.Mutex
	shards []cachedShard // oldest first
	size   int64
	plain  map[Hash]Located // chunks of shards without an HMAC key
}

type cachedShard struct {
	name   string
	size   int64
	mod    time.Time
	key    Hash   // HMAC key; zero for plain shards
	expiry uint64 // unix seconds; 0: none
	keyed  map[Hash]Located
	chunks []Hash // plain chunk hashes this shard put in ShardCache.plain
}

// DefaultShardCacheDir is os.UserCacheDir()/modelpub/xet-shards, beside
// core/hub's hash cache.
func DefaultShardCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "modelpub", "xet-shards"), nil
}

// OpenShardCache opens (creating it) the cache in dir ("" →
// DefaultShardCacheDir) with a budget of maxBytes (<= 0: 1 GiB).
// Unreadable and expired shards are removed, and the oldest beyond the
// budget. now nil: time.Now.
func OpenShardCache(dir string, maxBytes int64, now func() time.Time) (*ShardCache, error) {
	if dir == "" {
		d, err := DefaultShardCacheDir()
		if err != nil {
			return nil, fmt.Errorf("xet: shard cache: %w", err)
		}
		dir = d
	}
	if maxBytes <= 0 {
		maxBytes = 1 << 30
	}
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("xet: shard cache %s: %w", dir, err)
	}
	c := &ShardCache{dir: dir, max: maxBytes, now: now, plain: map[Hash]Located{}}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("xet: shard cache %s: %w", dir, err)
	}
	type found struct {
		name string
		mod  time.Time
	}
	var fs []found
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".shard") {
			continue
		}
		if info, err := e.Info(); err == nil {
			fs = append(fs, found{e.Name(), info.ModTime()})
		}
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].mod.Before(fs[j].mod) })
	for _, f := range fs {
		path := filepath.Join(dir, f.name)
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		s, err := ParseShard(b)
		if err != nil || c.expired(s) {
			os.Remove(path)
			continue
		}
		c.index(f.name, int64(len(b)), f.mod, s)
	}
	c.evict()
	return c, nil
}

func (c *ShardCache) expired(s *Shard) bool {
	return s.KeyExpiry != 0 && uint64(c.now().Unix()) >= s.KeyExpiry
}

// index adds a parsed shard's CAS info to the maps; c.mu is held or c is
// not shared yet.
func (c *ShardCache) index(name string, size int64, mod time.Time, s *Shard) {
	cs := cachedShard{name: name, size: size, mod: mod, key: s.HMACKey, expiry: s.KeyExpiry}
	if !s.HMACKey.IsZero() {
		cs.keyed = map[Hash]Located{}
	}
	for _, x := range s.Xorbs {
		for i, ch := range x.Chunks {
			loc := Located{Xorb: x.Hash, Index: uint32(i)}
			if cs.keyed != nil {
				cs.keyed[ch.Hash] = loc
				continue
			}
			if _, ok := c.plain[ch.Hash]; !ok {
				c.plain[ch.Hash] = loc
				cs.chunks = append(cs.chunks, ch.Hash)
			}
		}
	}
	c.shards = append(c.shards, cs)
	c.size += size
}

// evict drops the oldest shards while over budget; c.mu is held.
func (c *ShardCache) evict() {
	for c.size > c.max && len(c.shards) > 0 {
		old := c.shards[0]
		c.shards = c.shards[1:]
		c.size -= old.size
		for _, h := range old.chunks {
			delete(c.plain, h)
		}
		os.Remove(filepath.Join(c.dir, old.name))
	}
}

// Add stores a shard (an uploaded one, or a global deduplication answer)
// and indexes its CAS info.
func (c *ShardCache) Add(shard []byte) error {
	s, err := ParseShard(shard)
	if err != nil {
		return err
	}
	if c.expired(s) {
		return nil
	}
	sum := sha256.Sum256(shard)
	name := hex.EncodeToString(sum[:]) + ".shard"
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cs := range c.shards {
		if cs.name == name {
			return nil
		}
	}
	tmp, err := os.CreateTemp(c.dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("xet: shard cache: %w", err)
	}
	_, werr := tmp.Write(shard)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("xet: shard cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(c.dir, name)); err != nil {
		os.Remove(tmp.Name())
		// The name is the shard's hash: a file already there holds the
		// same bytes (Windows refuses to replace it while it is open).
		if _, serr := os.Stat(filepath.Join(c.dir, name)); serr != nil {
			return fmt.Errorf("xet: shard cache: %w", err)
		}
	}
	c.index(name, int64(len(shard)), c.now(), s)
	c.evict()
	return nil
}

// Lookup says where a chunk is, from the cached shards: plain ones first,
// then each keyed one (newest first) with the chunk hash keyed as its
// shard's are. Shards past their key expiry are not used.
func (c *ShardCache) Lookup(h Hash) (Located, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if loc, ok := c.plain[h]; ok {
		return loc, true
	}
	now := uint64(c.now().Unix())
	for i := len(c.shards) - 1; i >= 0; i-- {
		cs := &c.shards[i]
		if cs.keyed == nil || (cs.expiry != 0 && now >= cs.expiry) {
			continue
		}
		if loc, ok := cs.keyed[HMAC(h, cs.key)]; ok {
			return loc, true
		}
	}
	return Located{}, false
}

// Size is the bytes of shards held.
func (c *ShardCache) Size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

// Clear forgets every shard and removes their files: for a cache that
// names xorbs its CAS does not hold (a CAS that lost its data, a local
// Hub started afresh at the same address).
func (c *ShardCache) Clear() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, cs := range c.shards {
		if err := os.Remove(filepath.Join(c.dir, cs.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	c.shards, c.size, c.plain = nil, 0, map[Hash]Located{}
	return errors.Join(errs...)
}
