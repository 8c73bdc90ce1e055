package torchbin

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// pk writes pickle opcodes by hand (protocol 2, as torch.save does).
type pk struct{ bytes.Buffer }

func (p *pk) op(b ...byte)       { p.Write(b) }
func (p *pk) global(m, n string) { p.WriteString("c" + m + "\n" + n + "\n") }
func (p *pk) str(s string)       { p.op('X'); p.u32(uint32(len(s))); p.WriteString(s) }
func (p *pk) u32(v uint32)       { var b [4]byte; binary.LittleEndian.PutUint32(b[:], v); p.Write(b[:]) }
func (p *pk) stackStr(m, n string) {
	p.op(0x8c, byte(len(m)))
	p.WriteString(m)
	p.op(0x8c, byte(len(n)))
	p.WriteString(n)
	p.op(0x93)
}
func (p *pk) int(v int64) {
	if v >= -1<<31 && v < 1<<31 {
		p.op('J')
		p.u32(uint32(int32(v)))
		return
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(v))
	p.op(0x8a, 8)
	p.Write(b[:])
}
func (p *pk) ints(vs []int64) {
	p.op('(')
	for _, v := range vs {
		p.int(v)
	}
	p.op('t')
}

type spec struct {
	name, storage, key string
	numel, offset      int64
	size, stride       []int64
}

// statePickle is data.pkl of an OrderedDict of tensors.
func statePickle(ts ...spec) []byte {
	var p pk
	p.op(0x80, 2)
	p.global("collections", "OrderedDict")
	p.op(')', 'R', '(')
	for _, t := range ts {
		p.str(t.name)
		p.global("torch._utils", "_rebuild_tensor_v2")
		p.op('(', '(')
		p.str("storage")
		p.global("torch", t.storage)
		p.str(t.key)
		p.str("cpu")
		p.int(t.numel)
		p.op('t', 'Q')
		p.int(t.offset)
		p.ints(t.size)
		p.ints(t.stride)
		p.op(0x89)
		p.global("collections", "OrderedDict")
		p.op(')', 'R', 't', 'R')
	}
	p.op('u', '.')
	return p.Bytes()
}

type zent struct {
	name   string
	data   []byte
	method uint16
	// size, when set, is written as the entry's declared uncompressed size.
	size uint64
}

// writeZip writes a zip with the given entries under prefix/.
func writeZip(t testing.TB, path, prefix string, ents []zent) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range ents {
		data := e.data
		if e.method == zip.Deflate {
			var c bytes.Buffer
			fw, _ := flate.NewWriter(&c, 9)
			fw.Write(e.data)
			fw.Close()
			data = c.Bytes()
		}
		h := &zip.FileHeader{Name: prefix + "/" + e.name, Method: e.method,
			CRC32: crc32.ChecksumIEEE(e.data), CompressedSize64: uint64(len(data)), UncompressedSize64: uint64(len(e.data))}
		if e.size != 0 {
			h.UncompressedSize64 = e.size
			if e.method == zip.Store {
				h.CompressedSize64 = e.size
			}
		}
		w, err := zw.CreateRaw(h)
		require.NoError(t, err)
		_, err = w.Write(data)
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
}

// readZipEntries returns the entries of a testdata zip, names without prefix.
func readZipEntries(t testing.TB, path string) (string, []zent) {
	t.Helper()
	zr, err := zip.OpenReader(path)
	require.NoError(t, err)
	defer zr.Close()
	var prefix string
	var out []zent
	for _, f := range zr.File {
		dir, rest, _ := bytes.Cut([]byte(f.Name), []byte("/"))
		prefix = string(dir)
		rc, err := f.Open()
		require.NoError(t, err)
		var b bytes.Buffer
		_, err = b.ReadFrom(rc)
		require.NoError(t, err)
		rc.Close()
		out = append(out, zent{name: string(rest), data: b.Bytes()})
	}
	return prefix, out
}

func td(name string) string { return filepath.Join("testdata", name) }

// torchPickle writes data.pkl of a state dict the way torch.save's pickler
// does (checked against Python's pickle with a fake torch module):
// memoized strings, tuples and globals, SETITEMS in batches of 1000, and
// the state dict's _metadata set by BUILD. Tensor i is 1-dim of numel
// i%7+1 in storage "i". proto is 2 (torch's default) or 4; name makes the
// tensor names.
type torchPickle struct {
	pk
	proto int
	memo  map[string]int // memoized strings and globals
	next  int
}

func newTorchPickle(proto int) *torchPickle {
	p := &torchPickle{proto: proto, memo: map[string]int{}}
	p.op(0x80, byte(proto))
	return p
}

func (p *torchPickle) put() {
	switch {
	case p.proto >= 4:
		p.op(0x94)
	case p.next < 256:
		p.op('q', byte(p.next))
	default:
		p.op('r')
		p.u32(uint32(p.next))
	}
	p.next++
}

func (p *torchPickle) get(i int) {
	if i < 256 {
		p.op('h', byte(i))
		return
	}
	p.op('j')
	p.u32(uint32(i))
}

// str writes a memoized string, or a reference to it.
func (p *torchPickle) str(s string) {
	if i, ok := p.memo["s:"+s]; ok {
		p.get(i)
		return
	}
	if p.proto >= 4 && len(s) < 256 {
		p.op(0x8c, byte(len(s)))
		p.WriteString(s)
	} else {
		p.pk.str(s)
	}
	p.memo["s:"+s] = p.next
	p.put()
}

func (p *torchPickle) global(module, name string) {
	if i, ok := p.memo["g:"+module+"."+name]; ok {
		p.get(i)
		return
	}
	if p.proto >= 4 {
		p.str(module)
		p.str(name)
		p.op(0x93)
	} else {
		p.pk.global(module, name)
	}
	p.memo["g:"+module+"."+name] = p.next
	p.put()
}

func (p *torchPickle) small(v int) {
	switch {
	case v < 256:
		p.op('K', byte(v))
	case v < 65536:
		p.op('M', byte(v), byte(v>>8))
	default:
		p.op('J')
		p.u32(uint32(v))
	}
}

// stateDict writes an OrderedDict of n tensors named name(i) and STOP.
func (p *torchPickle) stateDict(n int, name func(int) string) []byte {
	p.global("collections", "OrderedDict")
	odict := p.memo["g:collections.OrderedDict"]
	p.op(')', 'R')
	p.put()
	for i := 0; i < n; i++ {
		if i%1000 == 0 {
			p.op('(')
		}
		p.str(name(i))
		p.global("torch._utils", "_rebuild_tensor_v2")
		p.op('(', '(')
		p.str("storage")
		p.global("torch", "FloatStorage")
		p.str(fmt.Sprint(i))
		p.str("cpu")
		p.small(i%7 + 1)
		p.op('t')
		p.put()
		p.op('Q')
		p.small(0)
		p.small(i%7 + 1)
		p.op(0x85)
		p.put()
		p.small(1)
		p.op(0x85)
		p.put()
		p.op(0x89)
		p.get(odict)
		p.op(')', 'R')
		p.put()
		p.op('t')
		p.put()
		p.op('R')
		p.put()
		if i%1000 == 999 || i == n-1 {
			p.op('u')
		}
	}
	// state: {"_metadata": OrderedDict({"": {"version": 1}})}
	p.op('}')
	p.put()
	p.str("_metadata")
	p.get(odict)
	p.op(')', 'R')
	p.put()
	p.str("")
	p.op('}')
	p.put()
	p.str("version")
	p.small(1)
	p.op('s', 's', 's', 'b', '.')
	return p.Bytes()
}

// storageZip writes a zip checkpoint of data.pkl and storages "0".."n-1"
// of numel i%7+1 float32 each, as stateDict describes them.
func storageZip(t testing.TB, path string, pkl []byte, n int) {
	t.Helper()
	ents := []zent{{name: "data.pkl", data: pkl}}
	for i := 0; i < n; i++ {
		ents = append(ents, zent{name: "data/" + fmt.Sprint(i), data: make([]byte, 4*(i%7+1))})
	}
	writeZip(t, path, "sd", ents)
}
