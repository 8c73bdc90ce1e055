package xet

import (
	"bytes"
	"testing"
)

// FuzzParseShard: any bytes are refused or parsed without panicking, and a
// parsed shard written back parses to the same content.
func FuzzParseShard(f *testing.F) {
	data := weights("F32", 200<<10, 3)
	var xi []XorbInfo
	p := NewPacker(PolicyNone, func(x SealedXorb) error { xi = append(xi, x.Info); return nil })
	pf, err := p.AddFile(bytes.NewReader(data))
	if err != nil {
		f.Fatal(err)
	}
	if err := p.Flush(); err != nil {
		f.Fatal(err)
	}
	info, err := pf.Info()
	if err != nil {
		f.Fatal(err)
	}
	for _, footer := range []bool{false, true} {
		b, err := (&Shard{Files: []FileInfo{info}, Xorbs: xi, HMACKey: info.Hash, KeyExpiry: 7}).Marshal(footer)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseShard(b)
		if err != nil {
			return
		}
		again, err := s.Marshal(true)
		if err != nil {
			return // e.g. a file with no terms and a non-zero hash
		}
		s2, err := ParseShard(again)
		if err != nil {
			t.Fatalf("a written shard does not parse: %v", err)
		}
		if len(s2.Files) != len(s.Files) || len(s2.Xorbs) != len(s.Xorbs) {
			t.Fatalf("round trip changed the shard")
		}
	})
}

// FuzzReadXorb: any bytes are refused or decoded without panicking, each
// chunk's data matching its header.
func FuzzReadXorb(f *testing.F) {
	x := NewXorbWriter(PolicyBest)
	data := append(weights("BF16", 200<<10, 4), make([]byte, 100<<10)...)
	for _, c := range Chunks(data) {
		x.Add(c, data[:c.Size])
		data = data[c.Size:]
	}
	f.Add(append([]byte(nil), x.Bytes()...))
	f.Add([]byte{0, 3, 0, 0, 0, 3, 0, 0, 'a', 'b', 'c'})
	f.Fuzz(func(t *testing.T, b []byte) {
		cs, err := ReadXorb(b, Hash{})
		if err != nil {
			return
		}
		for i, c := range cs {
			if len(c.Data) != int(c.Size) || c.Hash != ChunkHash(c.Data) {
				t.Fatalf("chunk %d: %d bytes for a size of %d", i, len(c.Data), c.Size)
			}
		}
	})
}
