package torchbin

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"

	"modelpub/core/folder"
	"modelpub/core/tensors"
)

// Checkpoint is the plan of a PyTorch checkpoint: its tensors and where
// their bytes are. Open reads no storage bytes.
type Checkpoint struct {
	Path   string
	Format string // "zip" (torch >= 1.6) or "legacy"
	// Version is the zip archive's "version" record, or the legacy
	// protocol version ("1001").
	Version string
	// Prefix is the zip archive's top folder ("pytorch_model").
	Prefix string
	// Tensors in state-dict order. Nested containers are flattened with
	// "." between the keys.
	Tensors []Tensor
	// Skipped lists the state dict's entries that are not tensors
	// (an "epoch" int, a "config" string...), which conversion drops.
	Skipped []string

	f        *os.File
	storages map[string]storageLoc
	index    map[string]int // Tensors by name, as planned
}

// Tensor is one tensor of the plan: a view of a storage.
type Tensor struct {
	Name    string
	DType   tensors.DType
	Shape   []int64
	Strides []int64 // in elements
	// StorageKey names the storage: the zip entry data/<key>, or the key of
	// the legacy format's root storage.
	StorageKey string
	Offset     int64 // first element, in elements of DType from the storage start
	// Contiguous is true when the view is row-major without gaps: its bytes
	// are one range of the storage.
	Contiguous bool
	// SharesStorageWith names the other tensors that view the same storage
	// (tied weights, views), in state-dict order starting after this one
	// and wrapping around. Tensors of one storage share the backing array
	// of these slices: copy before modifying. Each tensor still gets its
	// own copy on conversion.
	SharesStorageWith []string
}

// NumElements is the product of the shape (1 for a 0-dim tensor).
func (t Tensor) NumElements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// ByteSize is the size of the tensor's data in safetensors.
func (t Tensor) ByteSize() int64 { return t.NumElements() * int64(t.DType.Bits()/8) }

type storageLoc struct {
	dtype tensors.DType
	numel int64
	off   int64 // absolute file offset of element 0
}

// Open parses the checkpoint at path, in the zip or the legacy format, into
// a plan, without reading any storage bytes and without running any pickle
// code. The Checkpoint keeps the file open until Close.
func Open(path string) (*Checkpoint, error) {
	f, err := folder.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	c, err := open(path, f)
	if err != nil {
		f.Close()
		return nil, pathErr(path, err)
	}
	return c, nil
}

// Close closes the checkpoint file.
func (c *Checkpoint) Close() error {
	if c.f == nil {
		return nil
	}
	err := c.f.Close()
	c.f = nil
	return err
}

// Tensor returns the tensor named name.
func (c *Checkpoint) Tensor(name string) (Tensor, bool) {
	if i, ok := c.index[name]; ok && i < len(c.Tensors) && c.Tensors[i].Name == name {
		return c.Tensors[i], true
	}
	for _, t := range c.Tensors { // Tensors was edited after Open
		if t.Name == name {
			return t, true
		}
	}
	return Tensor{}, false
}

func open(path string, f *os.File) (*Checkpoint, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: not a regular file", ErrNotCheckpoint)
	}
	size := fi.Size()
	var head [512]byte
	n, _ := f.ReadAt(head[:], 0)
	c := &Checkpoint{Path: path, f: f, storages: map[string]storageLoc{}}
	switch {
	case n >= 4 && (string(head[:4]) == "PK\x03\x04" || string(head[:4]) == "PK\x05\x06"):
		c.Format = "zip"
		err = c.openZip(size)
	case n >= 262 && string(head[257:262]) == "ustar":
		return nil, fmt.Errorf("%w: the tar format of torch before 0.4", ErrUnsupported)
	case n >= 2 && head[0] == 0x80:
		c.Format = "legacy"
		err = c.openLegacy(size)
	default:
		return nil, fmt.Errorf("%w: neither a zip archive nor a legacy torch.save pickle", ErrNotCheckpoint)
	}
	if err != nil {
		return nil, err
	}
	c.index = make(map[string]int, len(c.Tensors))
	for i, t := range c.Tensors {
		c.index[t.Name] = i
	}
	return c, nil
}

// maxRecord bounds the small text records of the zip format.
const maxRecord = 64

func readSmall(zf *zip.File) (string, error) {
	rc, err := zf.Open()
	if err != nil {
		return "", fmt.Errorf("%w: entry %s: %v", ErrCorrupt, zf.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxRecord+1))
	if err != nil {
		return "", fmt.Errorf("%w: entry %s: %v", ErrCorrupt, zf.Name, err)
	}
	if len(b) > maxRecord {
		return "", fmt.Errorf("%w: entry %s is over %d bytes", ErrCorrupt, zf.Name, maxRecord)
	}
	return strings.TrimSpace(string(b)), nil
}

func (c *Checkpoint) openZip(size int64) error {
	zr, err := zip.NewReader(c.f, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return fmt.Errorf("%w: unreadable zip archive (truncated?): %v", ErrCorrupt, err)
	}
	if len(zr.File) == 0 {
		return fmt.Errorf("%w: an empty zip archive", ErrNotCheckpoint)
	}
	// torch writes every record under one folder, named after the file
	// when it was saved; its reader takes the folder of the first entry.
	first := zr.File[0].Name
	i := strings.IndexByte(first, '/')
	if i <= 0 {
		return fmt.Errorf("%w: a zip archive whose first entry %q is not in a folder", ErrNotCheckpoint, first)
	}
	c.Prefix = first[:i]
	entries := make(map[string]*zip.File, len(zr.File))
	for _, zf := range zr.File {
		if rest, ok := strings.CutPrefix(zf.Name, c.Prefix+"/"); ok {
			if _, dup := entries[rest]; dup {
				return fmt.Errorf("%w: the zip archive holds %s twice", ErrCorrupt, zf.Name)
			}
			entries[rest] = zf
		}
	}
	torchScript := entries["constants.pkl"] != nil
	for name := range entries {
		torchScript = torchScript || strings.HasPrefix(name, "code/")
	}
	if torchScript {
		return fmt.Errorf("%w: a TorchScript archive (torch.jit.save), not a state dict", ErrUnsupported)
	}
	pkl := entries["data.pkl"]
	if pkl == nil {
		return fmt.Errorf("%w: the zip archive has no %s/data.pkl", ErrNotCheckpoint, c.Prefix)
	}
	if zf := entries["byteorder"]; zf != nil {
		bo, err := readSmall(zf)
		if err != nil {
			return err
		}
		switch bo {
		case "little":
		case "big":
			return fmt.Errorf("%w: big-endian storages", ErrUnsupported)
		default:
			return fmt.Errorf("%w: byteorder record %q", ErrCorrupt, bo)
		}
	}
	if zf := entries["version"]; zf != nil {
		if c.Version, err = readSmall(zf); err != nil {
			return err
		}
	}
	// The limits of the pickle VM are relative to the bytes data.pkl takes
	// in the file; a deflated data.pkl may inflate only so much, and is
	// read through that limit whatever its declared size.
	pklOff, err := pkl.DataOffset()
	if err != nil || pklOff < 0 || pklOff > size {
		return fmt.Errorf("%w: entry %s: bad offset (%v)", ErrCorrupt, pkl.Name, err)
	}
	stored := size - pklOff
	if pkl.CompressedSize64 < uint64(stored) {
		stored = int64(pkl.CompressedSize64)
	}
	limit := int64(maxPickle)
	if pkl.Method != zip.Store {
		limit = min(limit, inflateFloor+inflatePerByte*stored)
	}
	if pkl.UncompressedSize64 > uint64(limit) {
		return fmt.Errorf("data.pkl: %w", &LimitError{Limit: "size", Max: limit, Stored: stored})
	}
	rc, err := pkl.Open()
	if err != nil {
		return fmt.Errorf("%w: data.pkl: %v", ErrCorrupt, err)
	}
	data, err := scanPickle(rc, int64(pkl.UncompressedSize64), stored, allowedGlobal)
	rc.Close()
	if err != nil {
		return fmt.Errorf("data.pkl: %w", err)
	}
	res, err := unpickle(data, false)
	if err != nil {
		return fmt.Errorf("data.pkl: %w", err)
	}
	if c.Tensors, c.Skipped, err = res.plan(); err != nil {
		return err
	}
	for _, key := range res.order {
		st := res.storages[key]
		name := "data/" + key
		zf := entries[name]
		if zf == nil {
			return fmt.Errorf("%w: storage entry %s/%s is missing", ErrCorrupt, c.Prefix, name)
		}
		if zf.Method != zip.Store {
			return fmt.Errorf("%w: storage entry %s is compressed (method %d); torch stores storages uncompressed", ErrUnsupported, zf.Name, zf.Method)
		}
		if zf.CompressedSize64 != zf.UncompressedSize64 {
			return fmt.Errorf("%w: stored entry %s has compressed size %d but size %d", ErrCorrupt, zf.Name, zf.CompressedSize64, zf.UncompressedSize64)
		}
		need := st.numel * int64(st.dtype.Bits()/8)
		if zf.UncompressedSize64 > math.MaxInt64 || int64(zf.UncompressedSize64) < need {
			return fmt.Errorf("%w: storage entry %s is %d bytes but the pickle declares %d %s elements (%d bytes)",
				ErrCorrupt, zf.Name, zf.UncompressedSize64, st.numel, st.dtype, need)
		}
		off, err := zf.DataOffset()
		if err != nil {
			return fmt.Errorf("%w: storage entry %s: %v", ErrCorrupt, zf.Name, err)
		}
		if off < 0 || off > size || need > size-off {
			return fmt.Errorf("%w: storage entry %s (%d bytes at offset %d) ends past the end of the file (%d bytes): truncated?",
				ErrCorrupt, zf.Name, need, off, size)
		}
		c.storages[key] = storageLoc{dtype: st.dtype, numel: st.numel, off: off}
	}
	return nil
}

// legacyMagic is the number the legacy format starts with.
var legacyMagic, _ = new(big.Int).SetString("1950a86a20f9469cfc6c", 16)

// The legacy format (torch.save before 1.6, or with
// _use_new_zipfile_serialization=False) is one stream: five pickles (the
// magic number, the protocol version 1001, a sys-info dict, the object, the
// list of storage keys) followed by the storages in the order of that list,
// each an 8-byte little-endian element count and then its bytes.
func (c *Checkpoint) openLegacy(size int64) error {
	br := bufio.NewReaderSize(io.NewSectionReader(c.f, 0, size), 64<<10)
	pos := int64(0)
	next := func(what string, allowed func(string, string) bool) ([]byte, error) {
		data, err := scanPickle(br, min(maxPickle, size-pos), 0, allowed)
		if err != nil {
			return nil, fmt.Errorf("legacy %s pickle: %w", what, err)
		}
		pos += int64(len(data))
		return data, nil
	}
	data, err := next("magic", noGlobals)
	if err != nil {
		return fmt.Errorf("%w: a pickle that does not start with the torch.save magic number", ErrNotCheckpoint)
	}
	if v, err := loadPlain(data); err != nil || !isMagic(v) {
		return fmt.Errorf("%w: a pickle that does not start with the torch.save magic number", ErrNotCheckpoint)
	}
	if data, err = next("protocol", noGlobals); err != nil {
		return err
	}
	v, err := loadPlain(data)
	if err != nil {
		return fmt.Errorf("legacy protocol pickle: %w", err)
	}
	if n, ok := v.(int); !ok || n != 1001 {
		return fmt.Errorf("%w: legacy protocol version %s, want 1001", ErrUnsupported, describe(v))
	}
	c.Version = "1001"
	if data, err = next("sys info", noGlobals); err != nil {
		return err
	}
	if v, err = loadPlain(data); err != nil {
		return fmt.Errorf("legacy sys info pickle: %w", err)
	}
	if d, ok := v.(*types.Dict); ok {
		if le, ok := d.Get("little_endian"); ok && le != true {
			return fmt.Errorf("%w: big-endian storages", ErrUnsupported)
		}
	}
	if data, err = next("main", allowedGlobal); err != nil {
		return err
	}
	res, err := unpickle(data, true)
	if err != nil {
		return fmt.Errorf("legacy main pickle: %w", err)
	}
	if c.Tensors, c.Skipped, err = res.plan(); err != nil {
		return err
	}
	if data, err = next("storage keys", noGlobals); err != nil {
		return err
	}
	v, err = loadPlain(data)
	if err != nil {
		return fmt.Errorf("legacy storage keys pickle: %w", err)
	}
	list, ok := v.(*types.List)
	if !ok {
		return fmt.Errorf("%w: the legacy storage key list is %s", ErrCorrupt, describe(v))
	}
	var hdr [8]byte
	for _, k := range *list {
		key, ok := k.(string)
		if !ok {
			return fmt.Errorf("%w: a legacy storage key is %s", ErrCorrupt, describe(k))
		}
		st := res.storages[key]
		if st == nil || st.root != key {
			return fmt.Errorf("%w: the legacy storage list names %q, which no tensor uses", ErrCorrupt, clip(key))
		}
		if _, dup := c.storages[key]; dup {
			return fmt.Errorf("%w: the legacy storage list names %q twice", ErrCorrupt, key)
		}
		if m, err := c.f.ReadAt(hdr[:], pos); m < 8 {
			return fmt.Errorf("%w: storage %q: the file ends at byte %d (%v): truncated", ErrCorrupt, key, size, err)
		}
		count := int64(binary.LittleEndian.Uint64(hdr[:]))
		if count != st.numel {
			return fmt.Errorf("%w: storage %q at byte %d has %d elements, the pickle declares %d", ErrCorrupt, key, pos, count, st.numel)
		}
		n := count * int64(st.dtype.Bits()/8) // no overflow: checked in persistentLoad
		if n > size-pos-8 {
			return fmt.Errorf("%w: storage %q (%d bytes at byte %d) ends past the end of the file (%d bytes): truncated", ErrCorrupt, key, n, pos+8, size)
		}
		c.storages[key] = storageLoc{dtype: st.dtype, numel: st.numel, off: pos + 8}
		pos += 8 + n
	}
	for _, key := range res.order {
		if st := res.storages[key]; st.root == key {
			if _, ok := c.storages[key]; !ok {
				return fmt.Errorf("%w: storage %q is missing from the legacy storage list", ErrCorrupt, key)
			}
		}
	}
	return nil
}

func isMagic(v any) bool {
	switch v := v.(type) {
	case *big.Int:
		return v.Cmp(legacyMagic) == 0
	}
	return false
}

// loadPlain unpickles a pickle that scanPickle accepted with no globals.
func loadPlain(data []byte) (v any, err error) {
	u := pickle.NewUnpickler(bytes.NewReader(data))
	u.FindClass = func(module, name string) (any, error) {
		return nil, fmt.Errorf("%w: the pickle references %s.%s", ErrForbiddenGlobal, module, name)
	}
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("%w: malformed pickle (%s)", ErrCorrupt, clip(fmt.Sprint(r)))
		}
	}()
	v, err = u.Load()
	if err != nil && !isOurs(err) {
		err = fmt.Errorf("%w: malformed pickle: %s", ErrCorrupt, clip(err.Error()))
	}
	return v, err
}
