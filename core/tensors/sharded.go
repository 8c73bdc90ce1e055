package tensors

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

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
// are not all complete.
func WriteSharded(ctx context.Context, dir string, tensors []WriteTensor, opts ShardedOptions) (*ShardedResult, error) {
	max := opts.MaxShardSize
	if max == 0 {
		max = DefaultMaxShardSize
	}
	entries := make([]ShardEntry, len(tensors))
	byName := make(map[string]WriteTensor, len(tensors))
	var params int64
	for i, t := range tensors {
		if t.Data == nil {
			return nil, fmt.Errorf("%w: %q has no data source", ErrInvalidTensor, t.Name)
		}
		entries[i] = ShardEntry{Name: t.Name, Size: t.Data.Size()}
		byName[t.Name] = t
		n := int64(1)
		for _, d := range t.Shape {
			n *= d
		}
		params += n
	}
	plan, err := PlanShards(entries, max, opts.Base, opts.Variant)
	if err != nil {
		return nil, err
	}
	meta := EnsureFormatPT(opts.Metadata)

	// Lay out every shard first: the headers give the exact total for
	// progress, and a tensor the writer would refuse fails before any file
	// is written.
	groups := make([][]WriteTensor, len(plan.Shards))
	layouts := make([]*Layout, len(plan.Shards))
	var total int64
	for i, s := range plan.Shards {
		for _, name := range s.Tensors {
			groups[i] = append(groups[i], byName[name])
		}
		l, err := PlanLayout(groups[i], meta)
		if err != nil {
			return nil, &PathError{Path: filepath.Join(dir, s.File), Err: err}
		}
		layouts[i] = l
		total += l.Size
	}
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
	for i, s := range plan.Shards {
		path := filepath.Join(dir, s.File)
		var progress func(done, total int64)
		if opts.Progress != nil {
			base := before
			progress = func(done, _ int64) { opts.Progress(base+done, total) }
		}
		l := layouts[i]
		p, err := createPending(path)
		if err != nil {
			return nil, &PathError{Path: path, Err: err}
		}
		pending = append(pending, p)
		if err := writeLayout(ctx, p.File, l, groups[i], progress); err != nil {
			return nil, &PathError{Path: path, Err: err}
		}
		before += l.Size
		res.Files = append(res.Files, s.File)
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
	if plan.Sharded {
		ix := plan.Index()
		ix.TotalParameters = params
		name := IndexFileName(opts.Base, opts.Variant)
		data := ix.MarshalPython()
		if err := writeAtomic(filepath.Join(dir, name), func(f *os.File) error {
			_, err := f.Write(data)
			return err
		}); err != nil {
			return nil, &PathError{Path: filepath.Join(dir, name), Err: err}
		}
		res.IndexFile = name
		res.Bytes += int64(len(data))
		return res, nil // writeAtomic synced the folder
	}
	if err := syncDir(dir); err != nil {
		return nil, &PathError{Path: dir, Err: err}
	}
	return res, nil
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
	dir := filepath.Dir(indexPath)
	set := &ShardedSet{IndexPath: indexPath, Index: ix, Shards: map[string]*Header{}}
	owner := map[string]string{} // tensor → the shard that holds it
	for _, shard := range ix.Shards() {
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
		for _, t := range h.Tensors {
			if other, dup := owner[t.Name]; dup {
				return nil, &ShardSetError{Index: indexPath, Shard: other + " and " + shard, Tensor: t.Name, Err: ErrTensorInTwoShards}
			}
			owner[t.Name] = shard
			if _, mapped := ix.WeightMap[t.Name]; !mapped {
				return nil, &ShardSetError{Index: indexPath, Shard: shard, Tensor: t.Name, Err: ErrUnmappedTensor}
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(ix.WeightMap)) {
		if shard := ix.WeightMap[name]; owner[name] != shard {
			return nil, &ShardSetError{Index: indexPath, Shard: shard, Tensor: name, Err: ErrTensorNotInShard}
		}
	}
	return set, nil
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
