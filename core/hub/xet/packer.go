package xet

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
)

// SealedXorb is a finished xorb, ready to upload. Its Bytes are the
// receiver's: each xorb gets a buffer of its own, so emit may hand them to
// another goroutine.
type SealedXorb struct {
	Info  XorbInfo    // hash, chunks, serialized size: its CAS info entry
	Bytes []byte      //
	Files []FileBytes // the chunk bytes each file put in it (first packed there), in file order
}

// FileBytes counts bytes of one file, by its index among the Packer's
// files (PackedFile.Index).
type FileBytes struct {
	File  int
	Bytes uint64
}

// Located is where a chunk already on the CAS is: chunk Index of Xorb.
type Located struct {
	Xorb  Hash
	Index uint32
}

// Packer turns files into xorbs and reconstructions, in the one pass that
// reads their bytes: it cuts each file into chunks, hashes them, computes
// the file's sha256, skips chunks already packed in this session or known
// to the CAS (Lookup), packs the others into xorbs (sealed and handed to
// emit when full, and by Flush), and records each file's terms with their
// verification hashes.
type Packer struct {
	// Lookup, when set, says where a chunk the CAS already holds is; such
	// chunks are referenced, not packed.
	Lookup func(Hash) (Located, bool)
	// OnDedup, when set, is told each chunk of a file that is not packed
	// (already packed in this session, or Lookup found it), as it is read.
	OnDedup func(file int, size uint32)

	emit   func(SealedXorb) error
	files  int         // files added so far; the current one is files-1
	share  []FileBytes // the open xorb's bytes per file
	xw     *XorbWriter
	seq    int             // sequence number of the open xorb
	sealed []Hash          // hash of each sealed xorb, by sequence number
	local  map[Hash]placed // chunks packed in this session
	stats  Stats
}

// placed is a chunk's place: in xorb seq of this session (remote false) or
// in a CAS xorb (remote true).
type placed struct {
	seq    int
	xorb   Hash
	index  uint32
	remote bool
}

// Stats counts a Packer's bytes.
type Stats struct {
	Bytes        uint64 // file bytes read
	NewBytes     uint64 // chunk bytes packed into xorbs
	StoredBytes  uint64 // serialized xorb bytes emitted
	DedupedBytes uint64 // chunk bytes referenced instead of packed
	Xorbs        int    // xorbs emitted
}

// NewPacker returns a Packer handing each sealed xorb to emit.
func NewPacker(policy Policy, emit func(SealedXorb) error) *Packer {
	return &Packer{emit: emit, xw: NewXorbWriter(policy), local: map[Hash]placed{}}
}

// Stats are the byte counts so far.
func (p *Packer) Stats() Stats { return p.stats }

// PackedFile is a file the Packer has read; its FileInfo is complete once
// every xorb holding its new chunks is sealed (after Flush).
type PackedFile struct {
	Hash         Hash
	SHA256       [32]byte
	Size         uint64
	Index        int    // the file's place among the Packer's files, from 0
	NewBytes     uint64 // bytes of its chunks packed into xorbs
	DedupedBytes uint64 // bytes of its chunks referenced instead (NewBytes + DedupedBytes = Size)
	p            *Packer
	terms        []pendingTerm
}

type pendingTerm struct {
	at           placed // where the term's first chunk is
	end          uint32 // chunk index end, exclusive
	size         uint32
	verification Hash
}

// AddFile reads r to its end. A read error, or an error from emit, stops
// it; the Packer is then unusable.
func (p *Packer) AddFile(r io.Reader) (*PackedFile, error) {
	sum := sha256.New()
	c := NewChunker(io.TeeReader(r, sum))
	f := &PackedFile{p: p, Index: p.files}
	p.files++
	var chunks []Chunk // this file's chunks, for the file hash
	termFirst := 0     // index in chunks of the open term's first chunk
	closeTerm := func() {
		if n := len(f.terms); n > 0 && f.terms[n-1].verification.IsZero() {
			hs := make([]Hash, 0, len(chunks)-termFirst)
			for _, ch := range chunks[termFirst:] {
				hs = append(hs, ch.Hash)
			}
			f.terms[n-1].verification = VerificationHash(hs)
		}
		termFirst = len(chunks)
	}
	for {
		ch, data, err := c.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		at, packed, err := p.place(ch, data)
		if err != nil {
			return nil, err
		}
		if packed {
			f.NewBytes += uint64(ch.Size)
		} else {
			f.DedupedBytes += uint64(ch.Size)
			if p.OnDedup != nil {
				p.OnDedup(f.Index, ch.Size)
			}
		}
		// Extend the open term when the chunk follows its last one in the
		// same xorb; otherwise close it and open another.
		if n := len(f.terms); n > 0 {
			t := &f.terms[n-1]
			if t.at.remote == at.remote && t.at.seq == at.seq && t.at.xorb == at.xorb && t.end == at.index {
				t.end++
				t.size += ch.Size
				chunks = append(chunks, ch)
				continue
			}
			closeTerm()
		}
		chunks = append(chunks, ch)
		f.terms = append(f.terms, pendingTerm{at: at, end: at.index + 1, size: ch.Size})
	}
	closeTerm()
	f.Hash = FileHash(chunks)
	sum.Sum(f.SHA256[:0])
	for _, ch := range chunks {
		f.Size += uint64(ch.Size)
	}
	p.stats.Bytes += f.Size
	return f, nil
}

// place finds or packs a chunk; packed says which.
func (p *Packer) place(ch Chunk, data []byte) (at placed, packed bool, err error) {
	if at, ok := p.local[ch.Hash]; ok {
		p.stats.DedupedBytes += uint64(ch.Size)
		return at, false, nil
	}
	if p.Lookup != nil {
		if loc, ok := p.Lookup(ch.Hash); ok {
			at := placed{xorb: loc.Xorb, index: loc.Index, remote: true}
			p.local[ch.Hash] = at
			p.stats.DedupedBytes += uint64(ch.Size)
			return at, false, nil
		}
	}
	if !p.xw.Fits(len(data)) {
		if err := p.Flush(); err != nil {
			return placed{}, false, err
		}
	}
	at = placed{seq: p.seq, index: uint32(p.xw.NumChunks())}
	if !p.xw.Add(ch, data) {
		return placed{}, false, fmt.Errorf("xet: chunk of %d bytes does not fit an empty xorb", len(data))
	}
	p.local[ch.Hash] = at
	p.stats.NewBytes += uint64(ch.Size)
	if n := len(p.share); n > 0 && p.share[n-1].File == p.files-1 {
		p.share[n-1].Bytes += uint64(ch.Size)
	} else {
		p.share = append(p.share, FileBytes{File: p.files - 1, Bytes: uint64(ch.Size)})
	}
	return at, true, nil
}

// Flush seals the open xorb, if it holds any chunk, and hands it to emit.
func (p *Packer) Flush() error {
	if p.xw.NumChunks() == 0 {
		return nil
	}
	info := XorbInfo{
		Hash:       p.xw.Hash(),
		Chunks:     append([]Chunk(nil), p.xw.Chunks()...),
		StoredSize: uint32(p.xw.Len()),
	}
	share := p.share
	p.share = nil
	if err := p.emit(SealedXorb{Info: info, Bytes: p.xw.Detach(), Files: share}); err != nil {
		return err
	}
	p.sealed = append(p.sealed, info.Hash)
	p.stats.StoredBytes += uint64(info.StoredSize)
	p.stats.Xorbs++
	p.seq++
	p.xw.Reset()
	return nil
}

// Info is the file's reconstruction; an error until every xorb it uses is
// sealed.
func (f *PackedFile) Info() (FileInfo, error) {
	info := FileInfo{Hash: f.Hash, SHA256: f.SHA256, Terms: make([]Term, len(f.terms))}
	for i, t := range f.terms {
		x := t.at.xorb
		if !t.at.remote {
			if t.at.seq >= len(f.p.sealed) {
				return FileInfo{}, fmt.Errorf("xet: file %s: xorb %d is not sealed yet (Flush first)", f.Hash, t.at.seq)
			}
			x = f.p.sealed[t.at.seq]
		}
		info.Terms[i] = Term{Xorb: x, Start: t.at.index, End: t.end, Size: t.size, Verification: t.verification}
	}
	return info, nil
}
