package xet

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Shard format constants (docs/xet/shard.md).
const (
	shardHeaderVersion = 2
	shardFooterVersion = 1
	shardHeaderSize    = 48
	shardFooterSize    = 200
	shardEntrySize     = 48
	// MaxShardSize: a bigger upload must be split into several shards.
	MaxShardSize = 64 << 20

	fileFlagWithVerification = 1 << 31
	fileFlagWithMetadataExt  = 1 << 30
)

// shardMagic is MDB_SHARD_HEADER_TAG: "HFRepoMetaData", a zero byte and 17
// fixed bytes (as xet-core and @huggingface/hub write it).
var shardMagic = [32]byte{
	'H', 'F', 'R', 'e', 'p', 'o', 'M', 'e', 't', 'a', 'D', 'a', 't', 'a', 0,
	85, 105, 103, 69, 106, 123, 129, 87, 131, 165, 189, 217, 92, 205, 209, 74, 169,
}

// bookendHash marks the end of the file info and CAS info sections.
var bookendHash = Hash{
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
}

// Term is one piece of a file's reconstruction: chunks [Start, End) of a
// xorb.
type Term struct {
	Xorb         Hash
	Start, End   uint32 // chunk indexes in the xorb, end exclusive
	Size         uint32 // the range's bytes, unpacked
	Verification Hash   // VerificationHash of the range's chunk hashes
}

// hashOrder converts between a sha256 digest and the bytes a shard's
// metadata extension holds: the field is a Xet hash (docs/xet/shard.md:
// "sha256: Hash"), which xet-core fills with MerkleHash::from_hex of the
// sha256's hex digest (data/src/sha256.rs) and @huggingface/hub with
// writeHashToArray of it (utils/uploadShards.ts). A Xet hash's hex string
// lists each 8-byte little-endian word's bytes in reverse, so the field
// holds the digest with the bytes of each 8-byte word reversed. The
// conversion is its own inverse.
func hashOrder(h [32]byte) [32]byte {
	var out [32]byte
	for w := 0; w < 32; w += 8 {
		for i := 0; i < 8; i++ {
			out[w+i] = h[w+7-i]
		}
	}
	return out
}

// FileInfo is a file's reconstruction as a shard records it.
type FileInfo struct {
	Hash   Hash     // FileHash of the file's chunks
	SHA256 [32]byte // the file's sha256 digest (as LFS pointers name it; Marshal and ParseShard convert to and from the shard's order); zero: none
	Terms  []Term
}

// Size is the file's length: the sum of its terms.
func (f FileInfo) Size() uint64 {
	var n uint64
	for _, t := range f.Terms {
		n += uint64(t.Size)
	}
	return n
}

// XorbInfo describes a xorb in a shard's CAS info section.
type XorbInfo struct {
	Hash       Hash
	Chunks     []Chunk
	StoredSize uint32 // the serialized xorb's length
}

// Shard is a shard's content: what a shard upload registers, what a global
// deduplication query answers.
type Shard struct {
	Files []FileInfo
	Xorbs []XorbInfo
	// Read from a footer, when the shard has one.
	HMACKey   Hash   // non-zero: the CAS section's chunk hashes are HMAC(hash, HMACKey)
	CreatedAt uint64 // seconds since the epoch
	KeyExpiry uint64 // seconds since the epoch; past it, do not deduplicate against this shard
}

// Marshal serializes the shard: header, file info section (every file with
// its verification entries and, when SHA256 is set, its metadata
// extension), CAS info section, and the footer only when withFooter (the
// shard upload body MUST NOT have one).
func (s *Shard) Marshal(withFooter bool) ([]byte, error) {
	var b bytes.Buffer
	le := binary.LittleEndian
	u32 := func(v uint32) { _ = binary.Write(&b, le, v) }
	u64 := func(v uint64) { _ = binary.Write(&b, le, v) }
	zeros := func(n int) { b.Write(make([]byte, n)) }

	b.Write(shardMagic[:])
	u64(shardHeaderVersion)
	if withFooter {
		u64(shardFooterSize)
	} else {
		u64(0)
	}
	fileInfoOffset := b.Len()
	for i, f := range s.Files {
		if len(f.Terms) == 0 && !f.Hash.IsZero() {
			return nil, fmt.Errorf("%w: file %d (%s) has no terms", ErrFormat, i, f.Hash)
		}
		if f.Hash == bookendHash {
			return nil, fmt.Errorf("%w: file %d has the bookend hash", ErrFormat, i)
		}
		flags := uint32(fileFlagWithVerification)
		if f.SHA256 != [32]byte{} {
			flags |= fileFlagWithMetadataExt
		}
		b.Write(f.Hash[:])
		u32(flags)
		u32(uint32(len(f.Terms)))
		zeros(8)
		for _, t := range f.Terms {
			if t.End <= t.Start {
				return nil, fmt.Errorf("%w: file %s: term of xorb %s has the empty range [%d, %d)", ErrFormat, f.Hash, t.Xorb, t.Start, t.End)
			}
			b.Write(t.Xorb[:])
			u32(0) // cas_flags
			u32(t.Size)
			u32(t.Start)
			u32(t.End)
		}
		for _, t := range f.Terms {
			b.Write(t.Verification[:])
			zeros(16)
		}
		if flags&fileFlagWithMetadataExt != 0 {
			sha := hashOrder(f.SHA256)
			b.Write(sha[:])
			zeros(16)
		}
	}
	b.Write(bookendHash[:])
	zeros(16)

	casInfoOffset := b.Len()
	for _, x := range s.Xorbs {
		if x.Hash == bookendHash {
			return nil, fmt.Errorf("%w: xorb has the bookend hash", ErrFormat)
		}
		var raw uint64
		for _, c := range x.Chunks {
			raw += uint64(c.Size)
		}
		if raw > MaxXorbSize*2 {
			return nil, fmt.Errorf("%w: xorb %s: %d bytes of chunks", ErrFormat, x.Hash, raw)
		}
		b.Write(x.Hash[:])
		u32(0) // cas_flags
		u32(uint32(len(x.Chunks)))
		u32(uint32(raw))
		u32(x.StoredSize)
		var start uint32
		for _, c := range x.Chunks {
			b.Write(c.Hash[:])
			u32(start) // chunk_byte_range_start: the chunk's offset in the xorb's unpacked bytes
			u32(c.Size)
			zeros(8)
			start += c.Size
		}
	}
	b.Write(bookendHash[:])
	zeros(16)

	if withFooter {
		footerOffset := b.Len()
		u64(shardFooterVersion)
		u64(uint64(fileInfoOffset))
		u64(uint64(casInfoOffset))
		zeros(48)
		b.Write(s.HMACKey[:])
		u64(s.CreatedAt)
		u64(s.KeyExpiry)
		zeros(72)
		u64(uint64(footerOffset))
	}
	if b.Len() > MaxShardSize {
		return nil, fmt.Errorf("%w: shard of %d bytes exceeds %d: split the upload", ErrFormat, b.Len(), MaxShardSize)
	}
	return b.Bytes(), nil
}

// shardReader reads fixed-size fields, remembering the first shortfall.
type shardReader struct {
	b   []byte
	off int
	err error
}

func (r *shardReader) take(n int, what string) []byte {
	if r.err != nil {
		return make([]byte, n)
	}
	if len(r.b)-r.off < n {
		r.err = fmt.Errorf("%w: shard truncated in %s at byte %d", ErrFormat, what, r.off)
		return make([]byte, n)
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

func (r *shardReader) hash(what string) Hash { return Hash(r.take(32, what)) }
func (r *shardReader) u32(what string) uint32 {
	return binary.LittleEndian.Uint32(r.take(4, what))
}
func (r *shardReader) u64(what string) uint64 {
	return binary.LittleEndian.Uint64(r.take(8, what))
}

// ParseShard reads a shard, with or without its footer. Counts are checked
// against the bytes present before anything is allocated by them.
func ParseShard(b []byte) (*Shard, error) {
	r := &shardReader{b: b}
	if tag := r.take(32, "header"); r.err == nil && !bytes.Equal(tag, shardMagic[:]) {
		return nil, fmt.Errorf("%w: not a shard (bad magic tag)", ErrFormat)
	}
	if v := r.u64("header"); r.err == nil && v != shardHeaderVersion {
		return nil, fmt.Errorf("%w: shard header version %d, want %d", ErrFormat, v, shardHeaderVersion)
	}
	footerSize := r.u64("header")
	if r.err != nil {
		return nil, r.err
	}
	if footerSize != 0 && footerSize != shardFooterSize {
		return nil, fmt.Errorf("%w: shard footer size %d", ErrFormat, footerSize)
	}
	s := &Shard{}
	for {
		h := r.hash("file info")
		flags := r.u32("file info")
		n := r.u32("file info")
		r.take(8, "file info")
		if r.err != nil {
			return nil, r.err
		}
		if h == bookendHash {
			break
		}
		per := uint64(shardEntrySize)
		if flags&fileFlagWithVerification != 0 {
			per += shardEntrySize
		}
		if uint64(n)*per > uint64(len(b)-r.off) {
			return nil, fmt.Errorf("%w: file %s declares %d terms, more than the shard holds", ErrFormat, h, n)
		}
		f := FileInfo{Hash: h, Terms: make([]Term, n)}
		for i := range f.Terms {
			t := &f.Terms[i]
			t.Xorb = r.hash("file term")
			r.u32("file term")
			t.Size = r.u32("file term")
			t.Start = r.u32("file term")
			t.End = r.u32("file term")
			if r.err == nil && t.End <= t.Start {
				return nil, fmt.Errorf("%w: file %s term %d: empty chunk range [%d, %d)", ErrFormat, h, i, t.Start, t.End)
			}
		}
		if flags&fileFlagWithVerification != 0 {
			for i := range f.Terms {
				f.Terms[i].Verification = r.hash("verification entry")
				r.take(16, "verification entry")
			}
		}
		if flags&fileFlagWithMetadataExt != 0 {
			f.SHA256 = hashOrder([32]byte(r.take(32, "metadata extension")))
			r.take(16, "metadata extension")
		}
		if r.err != nil {
			return nil, r.err
		}
		s.Files = append(s.Files, f)
	}
	for {
		h := r.hash("CAS info")
		r.u32("CAS info")
		n := r.u32("CAS info")
		raw := r.u32("CAS info")
		stored := r.u32("CAS info")
		if r.err != nil {
			return nil, r.err
		}
		if h == bookendHash {
			break
		}
		if uint64(n)*shardEntrySize > uint64(len(b)-r.off) {
			return nil, fmt.Errorf("%w: xorb %s declares %d chunks, more than the shard holds", ErrFormat, h, n)
		}
		x := XorbInfo{Hash: h, StoredSize: stored, Chunks: make([]Chunk, n)}
		var start, sum uint32
		for i := range x.Chunks {
			x.Chunks[i].Hash = r.hash("CAS chunk")
			if off := r.u32("CAS chunk"); r.err == nil && off != start {
				return nil, fmt.Errorf("%w: xorb %s chunk %d starts at %d, want %d", ErrFormat, h, i, off, start)
			}
			x.Chunks[i].Size = r.u32("CAS chunk")
			r.take(8, "CAS chunk")
			start += x.Chunks[i].Size
			sum += x.Chunks[i].Size
		}
		if r.err != nil {
			return nil, r.err
		}
		if sum != raw {
			return nil, fmt.Errorf("%w: xorb %s: chunks sum to %d bytes, header says %d", ErrFormat, h, sum, raw)
		}
		s.Xorbs = append(s.Xorbs, x)
	}
	if footerSize == 0 {
		if r.off != len(b) {
			return nil, fmt.Errorf("%w: %d bytes after the CAS info section of a shard without footer", ErrFormat, len(b)-r.off)
		}
		return s, nil
	}
	if len(b)-r.off != shardFooterSize {
		return nil, fmt.Errorf("%w: shard footer of %d bytes, want %d", ErrFormat, len(b)-r.off, shardFooterSize)
	}
	footerOffset := r.off
	if v := r.u64("footer"); v != shardFooterVersion {
		return nil, fmt.Errorf("%w: shard footer version %d, want %d", ErrFormat, v, shardFooterVersion)
	}
	r.u64("footer") // file_info_offset: the sections were read in order
	r.u64("footer") // cas_info_offset
	r.take(48, "footer")
	s.HMACKey = r.hash("footer")
	s.CreatedAt = r.u64("footer")
	s.KeyExpiry = r.u64("footer")
	r.take(72, "footer")
	if off := r.u64("footer"); off != uint64(footerOffset) {
		return nil, fmt.Errorf("%w: shard footer_offset %d, footer is at %d", ErrFormat, off, footerOffset)
	}
	return s, r.err
}
