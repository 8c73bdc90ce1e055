package xet

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/zeebo/blake3"
)

// Hash is a 32-byte Xet hash (chunk, xorb, file or verification range), in
// the byte order the hashes are computed in.
type Hash [32]byte

// The BLAKE3 keys of the specification (docs/xet/hashing.md).
var (
	// dataKey keys chunk hashes (DATA_KEY).
	dataKey = [32]byte{
		102, 151, 245, 119, 91, 149, 80, 222, 49, 53, 203, 172, 165, 151, 24, 28,
		157, 228, 33, 16, 155, 235, 43, 88, 180, 208, 176, 75, 147, 173, 242, 41,
	}
	// internalNodeKey keys the Merkle tree's internal nodes (INTERNAL_NODE_KEY).
	internalNodeKey = [32]byte{
		1, 126, 197, 199, 165, 71, 41, 150, 253, 148, 102, 102, 180, 138, 2, 230,
		93, 221, 83, 111, 55, 199, 109, 210, 248, 99, 82, 230, 74, 83, 113, 63,
	}
	// verificationKey keys term verification hashes (VERIFICATION_KEY).
	verificationKey = [32]byte{
		127, 24, 87, 214, 206, 86, 237, 102, 18, 127, 249, 19, 231, 165, 195, 243,
		164, 205, 38, 213, 181, 219, 73, 230, 65, 36, 152, 127, 40, 251, 148, 195,
	}
	// zeroKey turns a Merkle root into a file hash.
	zeroKey [32]byte
)

// String is the hash as the Xet APIs write it (docs/xet/api.md): each
// 8-byte group read as a little-endian uint64 and printed as 16 lowercase
// hex digits, so the bytes of each group appear reversed.
func (h Hash) String() string {
	var b [64]byte
	h.appendHex(b[:0])
	return string(b[:])
}

func (h Hash) appendHex(dst []byte) []byte {
	var r [32]byte
	for g := 0; g < 4; g++ {
		for i := 0; i < 8; i++ {
			r[g*8+i] = h[g*8+7-i]
		}
	}
	return hex.AppendEncode(dst, r[:])
}

// IsZero reports whether h is all zeros (the file hash of an empty file).
func (h Hash) IsZero() bool { return h == Hash{} }

// ParseHash reads a hash written as String writes it: 64 hex digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 64 {
		return h, fmt.Errorf("xet: hash %q: want 64 hex digits, have %d characters", s, len(s))
	}
	for g := 0; g < 4; g++ {
		v, err := strconv.ParseUint(s[g*16:g*16+16], 16, 64)
		if err != nil || !isLowerHex(s[g*16:g*16+16]) {
			return Hash{}, fmt.Errorf("xet: hash %q: not lowercase hex", s)
		}
		binary.LittleEndian.PutUint64(h[g*8:], v)
	}
	return h, nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// keyedHasher returns a BLAKE3 hasher keyed with key.
func keyedHasher(key *[32]byte) *blake3.Hasher {
	h, err := blake3.NewKeyed(key[:])
	if err != nil {
		// Only a key of the wrong length fails, and every key here is 32 bytes.
		panic("xet: blake3 key: " + err.Error())
	}
	return h
}

func sum(h *blake3.Hasher) Hash {
	var out Hash
	h.Sum(out[:0])
	return out
}

// ChunkHash is the hash of one chunk's bytes: BLAKE3 keyed with DATA_KEY.
func ChunkHash(data []byte) Hash {
	h := keyedHasher(&dataKey)
	_, _ = h.Write(data)
	return sum(h)
}

// chunkHasher hashes many chunks with one keyed hasher.
type chunkHasher struct{ h *blake3.Hasher }

func newChunkHasher() chunkHasher { return chunkHasher{keyedHasher(&dataKey)} }

func (c chunkHasher) hash(data []byte) Hash {
	c.h.Reset()
	_, _ = c.h.Write(data)
	return sum(c.h)
}

// HMAC is BLAKE3 of h keyed with key: how a global-deduplication shard
// protects its chunk hashes (docs/xet/shard.md, HMAC Key Protection).
func HMAC(h, key Hash) Hash {
	k := [32]byte(key)
	x := keyedHasher(&k)
	_, _ = x.Write(h[:])
	return sum(x)
}

// Chunk is a chunk's hash and its length in bytes.
type Chunk struct {
	Hash Hash
	Size uint32
}

// meanBranching is the Merkle tree's mean number of children per node.
const meanBranching = 4

// node is an entry of one level of the Merkle tree: a chunk, or an internal
// node with the total size of the chunks under it (beyond 4 GiB for a big
// file, so 64 bits).
type node struct {
	hash Hash
	size uint64
}

// nextCut is how many of the leading entries of level form the next node:
// all of them when two or fewer remain, otherwise at least 3 and at most
// 2*meanBranching+1, cut after the first entry from the third on whose hash,
// read as the little-endian uint64 at bytes 24..31, is a multiple of
// meanBranching (xet-core merklehash aggregated_hashes.rs, next_merge_cut).
func nextCut(level []node) int {
	if len(level) <= 2 {
		return len(level)
	}
	end := min(2*meanBranching+1, len(level))
	for i := 2; i < end; i++ {
		if binary.LittleEndian.Uint64(level[i].hash[24:])%meanBranching == 0 {
			return i + 1
		}
	}
	return end
}

// mergeNode hashes a node's children: one line "{hash} : {size}\n" per
// child, hashed with INTERNAL_NODE_KEY; the node's size is the children's sum.
func mergeNode(h *blake3.Hasher, buf []byte, children []node) (node, []byte) {
	buf = buf[:0]
	var total uint64
	for _, c := range children {
		buf = c.hash.appendHex(buf)
		buf = append(buf, " : "...)
		buf = strconv.AppendUint(buf, c.size, 10)
		buf = append(buf, '\n')
		total += c.size
	}
	h.Reset()
	_, _ = h.Write(buf)
	return node{hash: sum(h), size: total}, buf
}

// merkleRoot is the root of the Merkle tree over chunks; zero for none.
func merkleRoot(chunks []Chunk) Hash {
	if len(chunks) == 0 {
		return Hash{}
	}
	level := make([]node, len(chunks))
	for i, c := range chunks {
		level[i] = node{hash: c.Hash, size: uint64(c.Size)}
	}
	h := keyedHasher(&internalNodeKey)
	var buf []byte
	for len(level) > 1 {
		w := 0
		for r := 0; r < len(level); {
			n := nextCut(level[r:])
			level[w], buf = mergeNode(h, buf, level[r:r+n])
			w++
			r += n
		}
		level = level[:w]
	}
	return level[0].hash
}

// XorbHash is the hash of a xorb holding chunks in this order: the root of
// the Merkle tree over them.
func XorbHash(chunks []Chunk) Hash { return merkleRoot(chunks) }

// FileHash is the hash of a file cut into chunks: the Merkle root hashed
// again with an all-zero key; an empty file's hash is all zeros, as in
// xet-core (file_hash_with_salt).
func FileHash(chunks []Chunk) Hash {
	if len(chunks) == 0 {
		return Hash{}
	}
	root := merkleRoot(chunks)
	h := keyedHasher(&zeroKey)
	_, _ = h.Write(root[:])
	return sum(h)
}

// VerificationHash is the hash proving a shard's writer holds a term's
// chunks: BLAKE3 keyed with VERIFICATION_KEY over their raw hashes in order.
func VerificationHash(hashes []Hash) Hash {
	h := keyedHasher(&verificationKey)
	for i := range hashes {
		_, _ = h.Write(hashes[i][:])
	}
	return sum(h)
}
