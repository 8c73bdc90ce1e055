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
//
// It applies xet-core's fragmentation rule (Defrag): in a file whose terms
// have become short on average, a short run of known chunks is packed
// again rather than referenced. To know a run's length it holds the run's
// chunks (copies of their bytes) until the run ends or is long enough, at
// most the average term's chunks: 8 chunks, 1 MiB, with DefaultDefrag.
type Packer struct {
	// Lookup, when set, says where a chunk the CAS already holds is; such
	// chunks are referenced, not packed.
	Lookup func(Hash) (Located, bool)
	// OnDedup, when set, is told each chunk of a file that is not packed
	// (already packed in this session, or Lookup found it), as it is
	// decided: at once, or at the end of a held run.
	OnDedup func(file int, size uint32)
	// Defrag is the fragmentation rule, per file; NewPacker sets
	// DefaultDefrag, the zero value turns it off.
	Defrag DefragPolicy

	emit   func(SealedXorb) error
	files  int         // files added so far; the current one is files-1
	share  []FileBytes // the open xorb's bytes per file
	xw     *XorbWriter
	seq    int             // sequence number of the open xorb
	sealed []Hash          // hash of each sealed xorb, by sequence number
	local  map[Hash]placed // chunks packed in this session, and where Lookup found others
	stats  Stats
	frag   defragTracker
	held   []heldChunk // a run of known chunks waiting for the fragmentation rule
	bound  float32     // the held run is referenced once it holds this many chunks
}

// placed is a chunk's place: in xorb seq of this session (remote false) or
// in a CAS xorb (remote true).
type placed struct {
	seq    int
	xorb   Hash
	index  uint32
	remote bool
}

// follows reports whether b is the chunk after a in the same xorb.
func (a placed) follows(b placed) bool {
	return a.remote == b.remote && a.seq == b.seq && a.xorb == b.xorb && a.index+1 == b.index
}

// heldChunk is a known chunk of a held run, with a copy of its bytes in
// case the run is packed again.
type heldChunk struct {
	ch   Chunk
	data []byte
	at   placed
}

// Stats counts a Packer's bytes.
type Stats struct {
	Bytes        uint64 // file bytes read
	NewBytes     uint64 // chunk bytes packed into xorbs (Defragmented included)
	StoredBytes  uint64 // serialized xorb bytes emitted
	DedupedBytes uint64 // chunk bytes referenced instead of packed (Bytes = NewBytes + DedupedBytes)
	// Defragmented is the chunk bytes packed again although the CAS or
	// this session held them: short runs the fragmentation rule refused.
	Defragmented uint64
	Xorbs        int // xorbs emitted
}

// NewPacker returns a Packer handing each sealed xorb to emit, with
// DefaultDefrag.
func NewPacker(policy Policy, emit func(SealedXorb) error) *Packer {
	return &Packer{emit: emit, xw: NewXorbWriter(policy), local: map[Hash]placed{}, Defrag: DefaultDefrag}
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
	Defragmented uint64 // of NewBytes, those known but packed again (DefragPolicy)
	p            *Packer
	terms        []pendingTerm
	chunks       []Chunk // while read: its chunks so far, for the file hash
	termFirst    int     // while read: index in chunks of the open term's first chunk
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
	p.frag.reset(p.Defrag)
	p.held = p.held[:0]
	for {
		ch, data, err := c.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		at, known := p.find(ch.Hash)
		if n := len(p.held); n > 0 {
			if known && p.held[n-1].at.follows(at) {
				p.hold(ch, data, at)
				if float32(len(p.held)) >= p.bound {
					if err := p.settle(f); err != nil {
						return nil, err
					}
				}
				continue
			}
			// The run ended shorter than the bound.
			if err := p.settle(f); err != nil {
				return nil, err
			}
		}
		switch {
		case !known:
			if err := p.pack(f, ch, data, false); err != nil {
				return nil, err
			}
		case f.continues(at):
			p.reference(f, ch, at)
		default:
			// A run that would open a term: when the file is fragmented
			// the rule needs the run's length, so its chunks wait.
			bound, pending := p.frag.pending()
			if !pending {
				p.frag.allow(1)
				p.reference(f, ch, at)
				continue
			}
			p.bound = bound
			p.hold(ch, data, at)
			if float32(len(p.held)) >= p.bound {
				if err := p.settle(f); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := p.settle(f); err != nil {
		return nil, err
	}
	f.closeTerm()
	f.Hash = FileHash(f.chunks)
	sum.Sum(f.SHA256[:0])
	for _, ch := range f.chunks {
		f.Size += uint64(ch.Size)
	}
	f.chunks = nil
	p.stats.Bytes += f.Size
	return f, nil
}

// find says where a chunk already is: packed in this session, or known to
// the CAS (Lookup).
func (p *Packer) find(h Hash) (placed, bool) {
	if at, ok := p.local[h]; ok {
		return at, true
	}
	if p.Lookup != nil {
		if loc, ok := p.Lookup(h); ok {
			at := placed{xorb: loc.Xorb, index: loc.Index, remote: true}
			p.local[h] = at
			return at, true
		}
	}
	return placed{}, false
}

// hold keeps a known chunk of the run waiting for the rule, with a copy of
// its bytes (the Chunker's are only valid until its next chunk).
func (p *Packer) hold(ch Chunk, data []byte, at placed) {
	n := len(p.held)
	if n < cap(p.held) {
		p.held = p.held[:n+1]
		h := &p.held[n]
		h.ch, h.data, h.at = ch, append(h.data[:0], data...), at
		return
	}
	p.held = append(p.held, heldChunk{ch: ch, data: append([]byte(nil), data...), at: at})
}

// settle decides the held run, if any: referenced, or packed as new data
// when the rule refuses it. xet-core packs the whole refused run again
// (its chunks were all offered as one match).
func (p *Packer) settle(f *PackedFile) error {
	if len(p.held) == 0 {
		return nil
	}
	ok := p.frag.allow(len(p.held))
	for i := range p.held {
		h := &p.held[i]
		if ok {
			p.reference(f, h.ch, h.at)
			continue
		}
		if err := p.pack(f, h.ch, h.data, true); err != nil {
			return err
		}
	}
	p.held = p.held[:0]
	return nil
}

// reference adds a chunk found at at to the file.
func (p *Packer) reference(f *PackedFile, ch Chunk, at placed) {
	p.stats.DedupedBytes += uint64(ch.Size)
	f.DedupedBytes += uint64(ch.Size)
	if p.OnDedup != nil {
		p.OnDedup(f.Index, ch.Size)
	}
	f.add(ch, at)
}

// pack packs a chunk into the open xorb (sealing it first when full) and
// adds it to the file; again: the chunk was known, the rule refused it.
func (p *Packer) pack(f *PackedFile, ch Chunk, data []byte, again bool) error {
	if !p.xw.Fits(len(data)) {
		if err := p.Flush(); err != nil {
			return err
		}
	}
	at := placed{seq: p.seq, index: uint32(p.xw.NumChunks())}
	if !p.xw.Add(ch, data) {
		return fmt.Errorf("xet: chunk of %d bytes does not fit an empty xorb", len(data))
	}
	p.local[ch.Hash] = at
	p.stats.NewBytes += uint64(ch.Size)
	f.NewBytes += uint64(ch.Size)
	if again {
		p.stats.Defragmented += uint64(ch.Size)
		f.Defragmented += uint64(ch.Size)
	}
	if n := len(p.share); n > 0 && p.share[n-1].File == p.files-1 {
		p.share[n-1].Bytes += uint64(ch.Size)
	} else {
		p.share = append(p.share, FileBytes{File: p.files - 1, Bytes: uint64(ch.Size)})
	}
	f.add(ch, at)
	return nil
}

// continues reports whether a chunk at at extends the file's last term.
func (f *PackedFile) continues(at placed) bool {
	n := len(f.terms)
	if n == 0 {
		return false
	}
	t := &f.terms[n-1]
	return t.at.remote == at.remote && t.at.seq == at.seq && t.at.xorb == at.xorb && t.end == at.index
}

// add appends a chunk to the file's reconstruction: it extends the last
// term when it follows that term's last chunk in the same xorb, otherwise
// it opens a term. The fragmentation estimate counts the same.
func (f *PackedFile) add(ch Chunk, at placed) {
	if f.continues(at) {
		t := &f.terms[len(f.terms)-1]
		t.end++
		t.size += ch.Size
		f.chunks = append(f.chunks, ch)
		f.p.frag.extend(1)
		return
	}
	f.closeTerm()
	f.chunks = append(f.chunks, ch)
	f.terms = append(f.terms, pendingTerm{at: at, end: at.index + 1, size: ch.Size})
	f.p.frag.addRange(1)
}

// closeTerm computes the open term's verification hash.
func (f *PackedFile) closeTerm() {
	if n := len(f.terms); n > 0 && f.terms[n-1].verification.IsZero() {
		hs := make([]Hash, 0, len(f.chunks)-f.termFirst)
		for _, ch := range f.chunks[f.termFirst:] {
			hs = append(hs, ch.Hash)
		}
		f.terms[n-1].verification = VerificationHash(hs)
	}
	f.termFirst = len(f.chunks)
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
