package tensors

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ShardEntry is one tensor to place in a shard: its name and the size of its
// data in bytes (numel × dtype size, without any header), in state-dict
// order.
type ShardEntry struct {
	Name string
	Size int64
}

// Shard is one weights file of a ShardPlan.
type Shard struct {
	File    string   // bare file name, e.g. "model-00001-of-00002.safetensors"
	Tensors []string // tensor names in the order they were given
	Size    int64    // sum of the tensors' data sizes
}

// ShardPlan is the result of PlanShards.
type ShardPlan struct {
	Shards    []Shard
	TotalSize int64 // sum of all tensor data sizes: the index's metadata.total_size
	Sharded   bool  // more than one shard: an index file must be written
}

// MaxShards is the largest number of shards PlanShards produces: the
// "-00001-of-00003" suffix has five digits, and the loaders' regular
// expressions (\d{5}) accept nothing longer.
const MaxShards = 99999

// DefaultMaxShardSize is the default max_shard_size of diffusers'
// ModelMixin.save_pretrained, "10GB". (transformers uses "5GB" in v4 and
// "50GB" in v5; huggingface_hub's own default is "5GB".)
const DefaultMaxShardSize int64 = 10_000_000_000

// PlanShards splits tensors into shards exactly as huggingface_hub's
// split_state_dict_into_shards_factory does (which diffusers' and
// transformers' save_pretrained call), and names the files as diffusers does.
//
// Tensors are taken in the given order, with no bin-packing. A tensor larger
// than maxShardSize gets a shard of its own, appended at once while the open
// shard stays open, so it comes before that shard: sizes [1, 9, 1] with
// max 5 give the shards [b] and [a, c]. Otherwise, when the tensor does not
// fit in what is left of the open shard, the open shard is closed and a new
// one started; a tensor that exactly fills the remaining space still fits,
// and a zero-size tensor always fits. After the last tensor the open shard
// is appended if it is not empty.
//
// One shard is named WeightsFileName(base, variant) and Sharded is false
// (no index is written); n > 1 shards are named ShardFileName(base,
// variant, i, n) for i = 1..n.
//
// Decision for an empty tensor list: huggingface_hub returns no shards, so
// diffusers writes no weights file at all and the folder does not load.
// PlanShards instead returns one empty, unsharded shard with the plain name,
// so the caller writes a valid safetensors file holding no tensors.
//
// Errors: maxShardSize <= 0 (wrapping ErrInvalidSize), a negative tensor
// size, a repeated tensor name, a total size that overflows int64, more
// than MaxShards shards, an empty base, or a base or variant containing '.',
// '/', '\\', ':' or NUL or ending in a shard suffix (they would make the file
// names ambiguous or unsafe).
func PlanShards(tensors []ShardEntry, maxShardSize int64, base, variant string) (ShardPlan, error) {
	if maxShardSize <= 0 {
		return ShardPlan{}, fmt.Errorf("%w: max shard size must be greater than zero, got %d", ErrInvalidSize, maxShardSize)
	}
	if err := checkWeightsNamePart("base name", base, false); err != nil {
		return ShardPlan{}, err
	}
	if err := checkWeightsNamePart("variant", variant, true); err != nil {
		return ShardPlan{}, err
	}

	groups, sizes, total, err := planShardGroups(len(tensors), func(i int) (string, int64) {
		return tensors[i].Name, tensors[i].Size
	}, maxShardSize)
	if err != nil {
		return ShardPlan{}, err
	}
	return namedPlan(groups, sizes, total, base, variant, func(i int32) string { return tensors[i].Name }), nil
}

// planShardGroups splits n tensors (entry(i) gives tensor i's name and data
// size) as PlanShards documents, and returns the tensors of each shard as
// indices, the shards' sizes and the total.
func planShardGroups(n int, entry func(i int) (string, int64), maxShardSize int64) (groups [][]int32, sizes []int64, total int64, err error) {
	var (
		cur   []int32
		curSz int64
		dup   = firstRepeat(n, func(i int32) string { name, _ := entry(int(i)); return name })
	)
	for i := range n {
		name, size := entry(i)
		if i == dup {
			return nil, nil, 0, fmt.Errorf("shard plan: tensor %q appears more than once", name)
		}
		if size < 0 {
			return nil, nil, 0, fmt.Errorf("shard plan: tensor %q has a negative size %d", name, size)
		}
		if size > math.MaxInt64-total {
			return nil, nil, 0, fmt.Errorf("shard plan: total size overflows int64 at tensor %q", name)
		}
		total += size
		if size > maxShardSize {
			groups = append(groups, []int32{int32(i)})
			sizes = append(sizes, size)
			continue
		}
		// curSz <= maxShardSize and size <= maxShardSize: no overflow.
		if curSz+size > maxShardSize {
			groups = append(groups, cur)
			sizes = append(sizes, curSz)
			cur, curSz = nil, 0
		}
		cur = append(cur, int32(i))
		curSz += size
	}
	if len(cur) > 0 || len(groups) == 0 {
		if cur == nil {
			cur = []int32{}
		}
		groups = append(groups, cur)
		sizes = append(sizes, curSz)
	}
	if len(groups) > MaxShards {
		return nil, nil, 0, fmt.Errorf("shard plan: %d shards is more than the %d that five-digit shard names allow; use a larger max shard size", len(groups), MaxShards)
	}
	return groups, sizes, total, nil
}

// namedPlan is the ShardPlan of groups: file names, and the tensors' names.
func namedPlan(groups [][]int32, sizes []int64, total int64, base, variant string, name func(int32) string) ShardPlan {
	n := len(groups)
	plan := ShardPlan{Shards: make([]Shard, n), TotalSize: total, Sharded: n > 1}
	for i, g := range groups {
		file := WeightsFileName(base, variant)
		if n > 1 {
			file = ShardFileName(base, variant, i+1, n)
		}
		names := make([]string, len(g))
		for k, t := range g {
			names[k] = name(t)
		}
		plan.Shards[i] = Shard{File: file, Tensors: names, Size: sizes[i]}
	}
	return plan
}

// Index returns the index of the plan: metadata.total_size and the weight
// map. Write it (IndexFileName) only when p.Sharded; diffusers writes no
// index for a single file.
func (p ShardPlan) Index() *Index {
	ix := &Index{TotalSize: p.TotalSize, WeightMap: make(map[string]string)}
	for _, s := range p.Shards {
		for _, t := range s.Tensors {
			ix.WeightMap[t] = s.File
		}
	}
	return ix
}

func checkWeightsNamePart(what, s string, emptyOK bool) error {
	if s == "" {
		if emptyOK {
			return nil
		}
		return fmt.Errorf("shard plan: empty %s", what)
	}
	if strings.ContainsAny(s, "./\\:\x00") {
		return fmt.Errorf("shard plan: %s %q must not contain '.', '/', '\\', ':' or NUL", what, s)
	}
	if _, _, ok := cutShardSuffix(s); ok {
		return fmt.Errorf("shard plan: %s %q must not end in a shard suffix like -00001-of-00002", what, s)
	}
	return nil
}

// WeightsFileName is the name of an unsharded safetensors weights file:
// "{base}.safetensors", or "{base}.{variant}.safetensors" (diffusers'
// _add_variant), e.g. "diffusion_pytorch_model.fp16.safetensors".
func WeightsFileName(base, variant string) string {
	if variant == "" {
		return base + ".safetensors"
	}
	return base + "." + variant + ".safetensors"
}

// ShardFileName is the name of shard i (counted from 1) of n:
// "{base}-00001-of-00003.safetensors", or with a variant
// "{base}.fp16-00001-of-00003.safetensors" (the current diffusers and
// transformers form, not the deprecated "{base}-00001-of-00003.fp16.safetensors").
func ShardFileName(base, variant string, i, n int) string {
	suffix := fmt.Sprintf("-%05d-of-%05d", i, n)
	if variant == "" {
		return base + suffix + ".safetensors"
	}
	return base + "." + variant + suffix + ".safetensors"
}

// IndexFileName is the name of the shard index of a safetensors model:
// "{base}.safetensors.index.json", or with a variant
// "{base}.safetensors.index.{variant}.json" (diffusers' _add_variant puts the
// variant before the last extension).
func IndexFileName(base, variant string) string {
	if variant == "" {
		return base + ".safetensors.index.json"
	}
	return base + ".safetensors.index." + variant + ".json"
}

// WeightsName is a weights file name taken apart by ParseWeightsFileName.
type WeightsName struct {
	Base    string // e.g. "diffusion_pytorch_model", "model"
	Variant string // e.g. "fp16", "non_ema"; "" for none
	Ext     string // "safetensors" or "bin"
	Shard   int    // shard number counted from 1; 0 when not sharded
	Of      int    // number of shards; 0 when not sharded
	// Legacy is set for the deprecated variant shard form
	// "{base}-00001-of-00002.{variant}.{ext}" (deprecated in diffusers
	// 0.31, PR #9253; it still loads with a warning). Never write it.
	Legacy bool
}

// Sharded reports whether the name carries a -NNNNN-of-NNNNN suffix.
func (w WeightsName) Sharded() bool { return w.Of > 0 }

// ParseWeightsFileName recognises the weights file names diffusers and
// transformers write and load, for the extensions .safetensors and .bin:
//
//	{base}.{ext}                              model.safetensors
//	{base}.{variant}.{ext}                    model.fp16.safetensors
//	{base}-{i}-of-{n}.{ext}                   model-00001-of-00002.safetensors
//	{base}.{variant}-{i}-of-{n}.{ext}         model.fp16-00001-of-00002.safetensors
//	{base}-{i}-of-{n}.{variant}.{ext}         legacy, Legacy=true
//
// where {i} and {n} are exactly five digits (like the loaders' \d{5}) and
// not 00000; they are not checked against each other (callers that need a
// valid set check Shard <= Of). name may be a path; only the part after the
// last '/' or '\\' is parsed. Base and variant contain no '.' and are not
// empty; the base is not restricted to known names (diffusion_pytorch_model,
// model, pytorch_model, ...): callers check it. Index files, other
// extensions and other shapes give ok=false.
func ParseWeightsFileName(name string) (w WeightsName, ok bool) {
	name = name[strings.LastIndexAny(name, `/\`)+1:]
	parts := strings.Split(name, ".")
	ext := parts[len(parts)-1]
	if len(parts) < 2 || len(parts) > 3 || (ext != "safetensors" && ext != "bin") {
		return WeightsName{}, false
	}
	w.Ext = ext
	w.Shard = -1 // set when a shard suffix is found
	head := parts[0]
	if b, sn, found := cutShardSuffix(head); found {
		w.Base, w.Shard, w.Of = b, sn[0], sn[1]
		if len(parts) == 3 {
			w.Variant, w.Legacy = parts[1], true
		}
	} else {
		w.Base = head
		if len(parts) == 3 {
			w.Variant = parts[1]
			if v, sn, found := cutShardSuffix(w.Variant); found {
				w.Variant, w.Shard, w.Of = v, sn[0], sn[1]
			}
		}
	}
	if w.Base == "" || len(parts) == 3 && w.Variant == "" {
		return WeightsName{}, false
	}
	if _, _, found := cutShardSuffix(w.Variant); found {
		return WeightsName{}, false // "a-00001-of-00002.b-00001-of-00002.bin" and the like
	}
	if w.Shard == -1 {
		w.Shard = 0
	} else if w.Shard == 0 || w.Of == 0 {
		return WeightsName{}, false // shards are numbered from 1: -00000-of-... is no name
	}
	return w, true
}

// IndexName is an index file name taken apart by ParseIndexFileName.
type IndexName struct {
	Base    string // e.g. "diffusion_pytorch_model"
	Variant string // "" for none
	Ext     string // the weights extension: "safetensors" or "bin"
	// Legacy is set for the deprecated "{base}.{ext}.{variant}.index.json"
	// that diffusers still tries when "{base}.{ext}.index.{variant}.json" is
	// missing.
	Legacy bool
}

// ParseIndexFileName recognises shard index file names:
//
//	{base}.{ext}.index.json                  diffusion_pytorch_model.safetensors.index.json
//	{base}.{ext}.index.{variant}.json        model.safetensors.index.fp16.json
//	{base}.{ext}.{variant}.index.json        legacy, Legacy=true
//
// with ext "safetensors" or "bin". name may be a path; only the part after
// the last '/' or '\\' is parsed.
func ParseIndexFileName(name string) (ix IndexName, ok bool) {
	name = name[strings.LastIndexAny(name, `/\`)+1:]
	parts := strings.Split(name, ".")
	if len(parts) < 4 || len(parts) > 5 || parts[len(parts)-1] != "json" || parts[0] == "" {
		return IndexName{}, false
	}
	ix.Base, ix.Ext = parts[0], parts[1]
	if ix.Ext != "safetensors" && ix.Ext != "bin" {
		return IndexName{}, false
	}
	switch {
	case len(parts) == 4 && parts[2] == "index":
	case len(parts) == 5 && parts[2] == "index" && parts[3] != "" && parts[3] != "index":
		ix.Variant = parts[3]
	case len(parts) == 5 && parts[3] == "index" && parts[2] != "" && parts[2] != "index":
		ix.Variant, ix.Legacy = parts[2], true
	default:
		return IndexName{}, false
	}
	return ix, true
}

// cutShardSuffix splits "name-00001-of-00002" into "name" and [1, 2].
func cutShardSuffix(s string) (string, [2]int, bool) {
	const suffixLen = len("-00001-of-00002")
	if len(s) < suffixLen {
		return "", [2]int{}, false
	}
	prefix, suf := s[:len(s)-suffixLen], s[len(s)-suffixLen:]
	if suf[0] != '-' || suf[6:10] != "-of-" {
		return "", [2]int{}, false
	}
	var nums [2]int
	for k, digits := range [2]string{suf[1:6], suf[10:]} {
		for i := 0; i < len(digits); i++ {
			if digits[i] < '0' || digits[i] > '9' {
				return "", [2]int{}, false
			}
		}
		nums[k], _ = strconv.Atoi(digits)
	}
	return prefix, nums, true
}
