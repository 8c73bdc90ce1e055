package tensors

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"modelpub/core/folder"
)

// ShardedOptions tune WriteSharded.
type ShardedOptions struct {
	// MaxShardSize is the largest shard in tensor data bytes, as
	// max_shard_size of save_pretrained; DefaultMaxShardSize when 0.
	MaxShardSize int64
	// Base names the files: "diffusion_pytorch_model" or "model".
	Base string
	// Variant, such as "fp16", goes into every file name; empty for none.
	Variant string
	// Metadata for every shard's __metadata__; "format":"pt" is always set.
	Metadata Metadata
	// Progress, if set, is called after each tensor with the bytes of the
	// whole set written so far and the set's total size.
	Progress func(done, total int64)
}

// ShardedResult describes a written set of weights files.
type ShardedResult struct {
	Plan ShardPlan
	// Files are the shard files in order, bare names inside the folder.
	Files []string
	// IndexFile is the index's bare name, empty for a single file.
	IndexFile string
	// Bytes is the size of all files written, headers and index included.
	Bytes int64
}

// WriteSharded writes tensors into dir as save_pretrained does: split by
// PlanShards in the given order, one safetensors file per shard, and, when
// there is more than one shard, an index naming each tensor's file with
// metadata.total_size and metadata.total_parameters. Every file is written
// atomically, the index last, so a reader never finds an index whose shards
// are not all complete. PlanSharded gives the same layout without writing.
func WriteSharded(ctx context.Context, dir string, tensors []WriteTensor, opts ShardedOptions) (*ShardedResult, error) {
	// Every shard is laid out first: the headers give the exact total for
	// progress, and a tensor the writer would refuse fails before any file
	// is written.
	l, err := planSharded(tensors, opts, dir)
	if err != nil {
		return nil, err
	}
	plan := namedPlan(l.groups, l.sizes, l.TotalSize, opts.Base, opts.Variant, func(i int32) string { return tensors[i].Name })
	// Write every shard under a temporary name before syncing any: the
	// disk writes of one shard then overlap the copying of the next.
	res := &ShardedResult{Plan: plan}
	var pending []*pendingFile
	defer func() {
		for _, p := range pending {
			p.abort() // after a commit there is no temporary file left to remove
		}
	}()
	var before int64
	for i, file := range l.Files {
		path := filepath.Join(dir, file.Name)
		var progress func(done, total int64)
		if opts.Progress != nil {
			base, total := before, l.Bytes-l.IndexSize
			progress = func(done, _ int64) { opts.Progress(base+done, total) }
		}
		p, err := createPending(path)
		if err != nil {
			return nil, &PathError{Path: path, Err: err}
		}
		pending = append(pending, p)
		// The header is written as it is made: it can be 100 MB.
		if err := writeLayout(ctx, p.File, l.lps[i], tensors, l.meta, progress); err != nil {
			return nil, &PathError{Path: path, Err: err}
		}
		before += file.Size
		res.Files = append(res.Files, file.Name)
	}
	for _, p := range pending {
		if err := p.sync(); err != nil {
			return nil, &PathError{Path: p.path, Err: err}
		}
	}
	for _, p := range pending {
		if err := p.commit(); err != nil {
			return nil, &PathError{Path: p.path, Err: err}
		}
	}
	pending = nil
	res.Bytes = before
	if l.Index != "" {
		path := filepath.Join(dir, l.Index)
		var n int64
		if err := writeAtomic(path, func(f *os.File) (err error) {
			n, err = writeShardIndex(f, l, tensors)
			return err
		}); err != nil {
			return nil, &PathError{Path: path, Err: err}
		}
		res.IndexFile = l.Index
		res.Bytes += n
		return res, nil // writeAtomic synced the folder
	}
	if err := syncDir(dir); err != nil {
		return nil, &PathError{Path: dir, Err: err}
	}
	return res, nil
}

// ShardedLayout is what WriteSharded writes for a list of tensors, as
// PlanSharded computes it before anything is written.
type ShardedLayout struct {
	// Files are the weights files in order.
	Files []FileLayout
	// Index is the index's bare file name, "" for a single file;
	// IndexSize is its size in bytes.
	Index     string
	IndexSize int64
	// TotalSize is the tensors' data bytes (the index's
	// metadata.total_size), Parameters their elements (its
	// metadata.total_parameters).
	TotalSize, Parameters int64
	// Bytes is the size of the files and the index.
	Bytes int64

	groups [][]int32 // the tensors of each shard, as PlanShards splits them
	sizes  []int64   // the shards' data sizes
	lps    []*layoutPlan
	meta   Metadata
}

// FileLayout is one weights file of a ShardedLayout.
type FileLayout struct {
	Name string // bare file name
	Size int64  // the whole file
	// DataStart is where the tensor data begins: the 8-byte length and
	// the padded JSON header.
	DataStart int64
	// Count is the number of tensors in the file.
	Count int
}

// Tensors yields the tensors of file i in the order of their bytes in the
// file: each one's index in the list given to PlanSharded, and its entry in
// the file's header (Begin and End relative to DataStart).
func (l *ShardedLayout) Tensors(i int, tensors []WriteTensor) iter.Seq2[int, TensorInfo] {
	return func(yield func(int, TensorInfo) bool) {
		var off int64
		for _, k := range l.lps[i].order {
			t := &tensors[k]
			size := t.Data.Size()
			if !yield(int(k), TensorInfo{Name: t.Name, DType: t.DType, Shape: t.Shape, Begin: off, End: off + size}) {
				return
			}
			off += size
		}
	}
}

// PlanSharded lays tensors out as WriteSharded would write them with opts
// (Progress is not used), writing nothing: the sources only need their
// sizes. Its errors are those WriteSharded reports before writing, with
// bare file names.
func PlanSharded(tensors []WriteTensor, opts ShardedOptions) (*ShardedLayout, error) {
	return planSharded(tensors, opts, "")
}

func planSharded(tensors []WriteTensor, opts ShardedOptions, dir string) (*ShardedLayout, error) {
	max := opts.MaxShardSize
	if max == 0 {
		max = DefaultMaxShardSize
	}
	l := &ShardedLayout{meta: EnsureFormatPT(opts.Metadata)}
	for _, t := range tensors {
		if t.Data == nil {
			return nil, fmt.Errorf("%w: %q has no data source", ErrInvalidTensor, t.Name)
		}
		n := int64(1)
		for _, d := range t.Shape {
			n *= d
		}
		l.Parameters += n
	}
	// PlanShards' checks, in its order.
	if max <= 0 {
		return nil, fmt.Errorf("%w: max shard size must be greater than zero, got %d", ErrInvalidSize, max)
	}
	if err := checkWeightsNamePart("base name", opts.Base, false); err != nil {
		return nil, err
	}
	if err := checkWeightsNamePart("variant", opts.Variant, true); err != nil {
		return nil, err
	}
	var err error
	l.groups, l.sizes, l.TotalSize, err = planShardGroups(len(tensors), func(i int) (string, int64) {
		return tensors[i].Name, tensors[i].Data.Size()
	}, max)
	if err != nil {
		return nil, err
	}
	n := len(l.groups)
	l.Files = make([]FileLayout, n)
	l.lps = make([]*layoutPlan, n)
	for i, g := range l.groups {
		file := WeightsFileName(opts.Base, opts.Variant)
		if n > 1 {
			file = ShardFileName(opts.Base, opts.Variant, i+1, n)
		}
		// Names are unique across the set: planShardGroups checked.
		lp, err := planOrder(tensors, g, l.meta, false)
		if err != nil {
			return nil, &PathError{Path: filepath.Join(dir, file), Err: err}
		}
		l.lps[i] = lp
		l.Files[i] = FileLayout{Name: file, Size: lp.size, DataStart: 8 + int64(lp.headerLen), Count: len(lp.order)}
		l.Bytes += lp.size
	}
	if n > 1 {
		l.Index = IndexFileName(opts.Base, opts.Variant)
		l.IndexSize = indexSize(l, tensors)
		l.Bytes += l.IndexSize
	}
	return l, nil
}

// writeShardIndex writes the index of l to w exactly as the tests'
// Index.MarshalPython (index_ref_test.go) writes an Index of TotalSize,
// Parameters and the weight map, without building the map or holding the
// text: the tensors are sorted by name and
// written a line each. It returns the bytes written.
func writeShardIndex(w io.Writer, l *ShardedLayout, tensors []WriteTensor) (int64, error) {
	type entry struct{ tensor, file int32 }
	entries := make([]entry, 0, len(tensors))
	for i, g := range l.groups {
		for _, k := range g {
			entries = append(entries, entry{k, int32(i)})
		}
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(tensors[a.tensor].Name, tensors[b.tensor].Name) })
	files := make([][]byte, len(l.Files))
	for i, f := range l.Files {
		files[i] = appendPyString(nil, f.Name)
	}
	bw := bufio.NewWriterSize(w, smallWrites)
	var n int64
	b := make([]byte, 0, headerChunk+4096)
	flush := func() error {
		n += int64(len(b))
		_, err := bw.Write(b)
		b = b[:0]
		return err
	}
	b = append(b, "{\n  \"metadata\": {\n"...)
	if l.Parameters > 0 {
		b = append(b, `    "total_parameters": `...)
		b = strconv.AppendInt(b, l.Parameters, 10)
		b = append(b, ",\n"...)
	}
	b = append(b, `    "total_size": `...)
	b = strconv.AppendInt(b, l.TotalSize, 10)
	b = append(b, "\n  },\n  \"weight_map\": {"...)
	for i, e := range entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n    "...)
		b = appendPyString(b, tensors[e.tensor].Name)
		b = append(b, ": "...)
		b = append(b, files[e.file]...)
		if len(b) >= headerChunk {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if len(entries) > 0 {
		b = append(b, "\n  "...)
	}
	b = append(b, "}\n}\n"...)
	if err := flush(); err != nil {
		return n, err
	}
	return n, bw.Flush()
}

// indexSize is the length of the index WriteSharded writes for l: the
// Index.MarshalPython of an Index with TotalSize, Parameters and the
// weight map, counted without building it (the order of the keys does not change the
// length, and the names are unique).
func indexSize(l *ShardedLayout, tensors []WriteTensor) int64 {
	n := int64(len("{\n  \"metadata\": {\n    \"total_size\": ") + intLen(l.TotalSize) + len("\n  },\n  \"weight_map\": {"))
	if l.Parameters > 0 {
		n += int64(len("    \"total_parameters\": ,\n") + intLen(l.Parameters))
	}
	entries := 0
	for i, g := range l.groups {
		file := int64(pyStringLen(l.Files[i].Name))
		for _, k := range g {
			n += int64(len("\n    ")+pyStringLen(tensors[k].Name)+len(": ")) + file
			entries++
		}
	}
	if entries > 0 {
		n += int64(entries-1) + int64(len("\n  "))
	}
	return n + int64(len("}\n}\n"))
}

// Errors of a sharded set whose index and shards disagree.
var (
	ErrMissingShard      = errors.New("shard file named by the index is missing")
	ErrTensorNotInShard  = errors.New("tensor is not in the shard the index names")
	ErrUnmappedTensor    = errors.New("tensor in a shard is not in the index")
	ErrTensorInTwoShards = errors.New("tensor appears in more than one shard")
)

// ShardSetError reports an inconsistency between an index and its shards.
type ShardSetError struct {
	Index  string // the index file's path
	Shard  string // the shard's bare file name, if any
	Tensor string // the tensor, if any
	Err    error
}

func (e *ShardSetError) Error() string { return describe(e.Index, e.Tensor, e.Err, e.Shard) }

func (e *ShardSetError) Unwrap() error { return e.Err }

// ShardedSet is a validated index with the headers of all its shards.
type ShardedSet struct {
	IndexPath string
	Index     *Index
	// Shards maps each shard's bare file name to its header, in the
	// order of Index.Shards().
	Shards map[string]*Header
}

// OpenShardedSet reads the index at indexPath and the header of every shard
// it names (tensor data is not read), and checks they agree: each shard name
// is a bare file name in the index's folder, each shard exists and is a
// valid safetensors file, every mapped tensor is in its shard, every tensor
// of a shard is mapped, and no tensor is in two shards.
func OpenShardedSet(indexPath string) (*ShardedSet, error) {
	data, err := folder.ReadFile(indexPath, MaxIndexSize)
	if err != nil {
		return nil, err
	}
	ix, err := ParseIndex(data)
	if err != nil {
		return nil, &PathError{Path: indexPath, Err: err}
	}
	data = nil // a big index is garbage from here on
	dir := filepath.Dir(indexPath)
	set := &ShardedSet{IndexPath: indexPath, Index: ix, Shards: map[string]*Header{}}
	read := func(shard string) (*Header, error) {
		if h := set.Shards[shard]; h != nil {
			return h, nil
		}
		if err := CheckShardFileName(shard); err != nil { // ParseIndex checks too; never trust a path
			return nil, &PathError{Path: indexPath, Err: err}
		}
		h, err := ReadHeaderFile(filepath.Join(dir, shard))
		if errors.Is(err, os.ErrNotExist) {
			return nil, &ShardSetError{Index: indexPath, Shard: shard, Err: ErrMissingShard}
		}
		if err != nil {
			return nil, err
		}
		set.Shards[shard] = h
		return h, nil
	}
	// The set is consistent when every tensor of every shard is mapped to
	// that shard and as many were found as the index maps: then no tensor
	// is unmapped, none is in two shards (it would be in one it is not
	// mapped to) and every mapped one is where the index says. Anything
	// else is an error, which checkShardSet finds and names.
	found := 0
	for _, shard := range ix.Shards() {
		h, err := read(shard)
		if err != nil {
			return nil, err
		}
		for _, t := range h.Tensors {
			if ix.WeightMap[t.Name] != shard {
				return slowCheck(set, read)
			}
		}
		found += len(h.Tensors)
	}
	if found != len(ix.WeightMap) {
		return slowCheck(set, read)
	}
	return set, nil
}

// ReadShardedSet reads and checks the sharded set of the index at indexPath
// exactly as OpenShardedSet does, but keeps neither the index's weight map
// nor the shards' headers: each header is passed to visit, in the order of
// the shards' names, and dropped. A set of a million tensors then costs a
// few bytes a tensor besides what visit keeps. When it returns an error,
// what visit was given is not a consistent set and is to be discarded.
func ReadShardedSet(indexPath string, visit func(shard string, h *Header)) error {
	data, err := folder.ReadFile(indexPath, MaxIndexSize)
	if err != nil {
		return err
	}
	r, err := checkIndex(data)
	if err != nil {
		return &PathError{Path: indexPath, Err: err}
	}
	data = nil // a big index is garbage from here on
	wm := r.wm.lookup()
	r.wm = nil
	dir := filepath.Dir(indexPath)
	read := func(shard string) (*Header, error) {
		if err := CheckShardFileName(shard); err != nil { // checkIndex checks too; never trust a path
			return nil, &PathError{Path: indexPath, Err: err}
		}
		h, err := ReadHeaderFile(filepath.Join(dir, shard))
		if errors.Is(err, os.ErrNotExist) {
			return nil, &ShardSetError{Index: indexPath, Shard: shard, Err: ErrMissingShard}
		}
		return h, err
	}
	// As in OpenShardedSet: anything but every tensor in the shard it is
	// mapped to, and all of them found, is an error that checkShardSet
	// names (with the weight map built, the headers read again).
	found := 0
	slow := func() error {
		r.wm = wm.w
		if err := checkShardSet(indexPath, r.index(), read); err != nil {
			return err
		}
		return fmt.Errorf("%s: tensors: internal error: the shard check found no problem", indexPath)
	}
	for _, shard := range wm.shards() {
		h, err := read(shard)
		if err != nil {
			return err
		}
		for _, t := range h.Tensors {
			if f := wm.file(t.Name); f < 0 || wm.w.files[f] != shard {
				return slow()
			}
		}
		found += len(h.Tensors)
		visit(shard, h)
	}
	if found != wm.n {
		return slow()
	}
	return nil
}

// slowCheck returns set, or the error checkShardSet finds in it.
func slowCheck(set *ShardedSet, read func(shard string) (*Header, error)) (*ShardedSet, error) {
	if err := checkShardSet(set.IndexPath, set.Index, read); err != nil {
		return nil, err
	}
	return set, nil
}

// checkShardSet returns the first inconsistency of an index with its
// shards: the shards in sorted order, each tensor in data order (in two
// shards, or not mapped), then the index's tensors in sorted order (not in
// the shard it names).
func checkShardSet(indexPath string, ix *Index, read func(shard string) (*Header, error)) error {
	owner := map[string]string{} // tensor → the shard that holds it
	for _, shard := range ix.Shards() {
		h, err := read(shard)
		if err != nil {
			return err
		}
		for _, t := range h.Tensors {
			if other, dup := owner[t.Name]; dup {
				return &ShardSetError{Index: indexPath, Shard: other + " and " + shard, Tensor: t.Name, Err: ErrTensorInTwoShards}
			}
			owner[t.Name] = shard
			if _, mapped := ix.WeightMap[t.Name]; !mapped {
				return &ShardSetError{Index: indexPath, Shard: shard, Tensor: t.Name, Err: ErrUnmappedTensor}
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(ix.WeightMap)) {
		if shard := ix.WeightMap[name]; owner[name] != shard {
			return &ShardSetError{Index: indexPath, Shard: shard, Tensor: name, Err: ErrTensorNotInShard}
		}
	}
	return nil
}

// Tensor returns the tensor called name and the shard file holding it.
func (s *ShardedSet) Tensor(name string) (TensorInfo, string, bool) {
	shard, ok := s.Index.WeightMap[name]
	if !ok {
		return TensorInfo{}, "", false
	}
	t, ok := s.Shards[shard].Tensor(name)
	return t, shard, ok
}
