package xet

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/pierrec/lz4/v4"
)

// Compression is a chunk's compression scheme in a xorb (docs/xet/xorb.md).
type Compression uint8

// The chunk compression schemes.
const (
	CompressionNone   Compression = 0 // stored as is
	CompressionLZ4    Compression = 1 // an LZ4 frame
	CompressionBG4LZ4 Compression = 2 // bytes grouped by position mod 4, then an LZ4 frame
)

func (c Compression) String() string {
	switch c {
	case CompressionNone:
		return "none"
	case CompressionLZ4:
		return "lz4"
	case CompressionBG4LZ4:
		return "bg4-lz4"
	}
	return fmt.Sprintf("compression(%d)", uint8(c))
}

// lz4FrameHeader opens every LZ4 frame written here: magic 0x184D2204, FLG
// 0x60 (version 1, independent blocks, no checksums, no content size), BD
// 0x50 (blocks up to 256 KiB, so a chunk is one block), and the header
// checksum byte. The xet-core and @huggingface/hub readers take LZ4 frames,
// not bare blocks.
var lz4FrameHeader = [7]byte{0x04, 0x22, 0x4d, 0x18, 0x60, 0x50, 0xfb}

// lz4FrameOverhead is the header, one block size and the end mark.
const lz4FrameOverhead = len(lz4FrameHeader) + 4 + 4

// bg4Split groups src's bytes by position mod 4: every byte 0 of each
// 4-byte group, then every byte 1, 2 and 3; a tail shorter than 4 bytes
// gives one byte to each of the first groups.
func bg4Split(dst, src []byte) []byte {
	dst = dst[:0]
	for g := 0; g < 4; g++ {
		for i := g; i < len(src); i += 4 {
			dst = append(dst, src[i])
		}
	}
	return dst
}

// bg4Join undoes bg4Split.
func bg4Join(dst, src []byte) []byte {
	n := len(src)
	dst = append(dst[:0], make([]byte, n)...)
	k := 0
	for g := 0; g < 4; g++ {
		for i := g; i < n; i += 4 {
			dst[i] = src[k]
			k++
		}
	}
	return dst
}

// compressor holds the buffers a xorb writer reuses from chunk to chunk.
type compressor struct {
	lz      lz4.Compressor
	grouped []byte
	a, b    []byte
}

// lz4Frame appends src as a one-block LZ4 frame to dst[:0]; ok is false
// when LZ4 cannot make the block smaller.
func (z *compressor) lz4Frame(dst, src []byte) (out []byte, ok bool) {
	bound := lz4.CompressBlockBound(len(src))
	if cap(dst) < lz4FrameOverhead+bound {
		dst = make([]byte, 0, lz4FrameOverhead+bound)
	}
	dst = append(dst[:0], lz4FrameHeader[:]...)
	dst = dst[:len(lz4FrameHeader)+4+bound]
	n, err := z.lz.CompressBlock(src, dst[len(lz4FrameHeader)+4:])
	if err != nil || n == 0 || n >= len(src) {
		return dst[:0], false
	}
	binary.LittleEndian.PutUint32(dst[len(lz4FrameHeader):], uint32(n))
	dst = dst[:len(lz4FrameHeader)+4+n]
	dst = binary.LittleEndian.AppendUint32(dst, 0)
	return dst, true
}

// compress returns the chunk's stored bytes and scheme under policy: the
// smallest of what the policy tries, or the raw bytes when no scheme makes
// the chunk smaller. The returned slice is src or one of z's buffers.
func (z *compressor) compress(policy Policy, src []byte) ([]byte, Compression) {
	best, scheme := src, CompressionNone
	if policy == PolicyLZ4 || policy == PolicyBest {
		// The buffer is kept whether or not LZ4 made the chunk smaller:
		// an incompressible chunk must not cost an allocation.
		out, ok := z.lz4Frame(z.a, src)
		z.a = out
		if ok {
			if len(out) < len(best) {
				best, scheme = out, CompressionLZ4
			}
		}
	}
	if policy == PolicyBG4LZ4 || policy == PolicyBest {
		z.grouped = bg4Split(z.grouped, src)
		out, ok := z.lz4Frame(z.b, z.grouped)
		z.b = out
		if ok {
			if len(out) < len(best) {
				best, scheme = out, CompressionBG4LZ4
			}
		}
	}
	return best, scheme
}

// Decompress returns a chunk's bytes from its stored form: rawSize bytes,
// or an error naming what is wrong.
func Decompress(scheme Compression, stored []byte, rawSize int) ([]byte, error) {
	switch scheme {
	case CompressionNone:
		if len(stored) != rawSize {
			return nil, fmt.Errorf("%w: uncompressed chunk of %d bytes declares %d", ErrFormat, len(stored), rawSize)
		}
		return stored, nil
	case CompressionLZ4, CompressionBG4LZ4:
		out := make([]byte, rawSize)
		r := lz4.NewReader(bytes.NewReader(stored))
		if _, err := io.ReadFull(r, out); err != nil {
			return nil, fmt.Errorf("%w: %s chunk: %v", ErrFormat, scheme, err)
		}
		// The frame must end right there: with its end mark, nothing after.
		if n, err := io.Copy(io.Discard, r); n != 0 || err != nil {
			return nil, fmt.Errorf("%w: %s chunk does not end after its declared %d bytes", ErrFormat, scheme, rawSize)
		}
		if scheme == CompressionBG4LZ4 {
			return bg4Join(nil, out), nil
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: unknown compression scheme %d", ErrFormat, uint8(scheme))
}
