package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"modelpub/core/folder"
	"modelpub/core/tensors"
)

func init() {
	register(command{
		name:    "shard",
		args:    "SRC DIR [--max-shard-size SIZE] [--dtype f16|bf16|f32] [--variant NAME] [--base NAME]",
		summary: "reshard a .safetensors file or sharded set, optionally converting floats",
		help:    shardHelp,
		run:     runShard,
	})
}

const shardHelp = `Rewrites the tensors of SRC into DIR, split as save_pretrained splits them.

SRC is a .safetensors file or a *.safetensors.index.json (with its shards
beside it). Tensors keep their order; each output file is written atomically;
a single shard keeps the plain name and gets no index. DIR is created if
needed; existing files of the same names are replaced.

  --max-shard-size SIZE  largest shard in tensor bytes: 5GB, 500MB, 1.5GB,
                         2GiB, or bytes (default 10GB, as diffusers)
  --dtype f16|bf16|f32   convert floating-point tensors (F32, BF16, F16) to
                         this type; integer and bool tensors are copied as is
  --variant NAME         put a variant in the file names, e.g. fp16:
                         model.fp16-00001-of-00002.safetensors
  --base NAME            file name base (default: taken from SRC, e.g.
                         diffusion_pytorch_model)
`

func runShard(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("shard", stderr)
	maxSize := fs.String("max-shard-size", "10GB", "")
	dtypeName := fs.String("dtype", "", "")
	variant := fs.String("variant", "", "")
	base := fs.String("base", "", "")
	pos, ok := parseArgs(fs, args, 2)
	if !ok {
		return ExitUsage
	}
	src, dir := pos[0], pos[1]
	max, err := tensors.ParseSize(*maxSize)
	if err != nil {
		fmt.Fprintf(stderr, "modelpub shard: --max-shard-size: %s\n", errText(err))
		return ExitUsage
	}
	var to tensors.DType
	switch strings.ToLower(*dtypeName) {
	case "":
	case "f16", "fp16", "float16":
		to = tensors.F16
	case "bf16", "bfloat16":
		to = tensors.BF16
	case "f32", "fp32", "float32":
		to = tensors.F32
	default:
		fmt.Fprintf(stderr, "modelpub shard: --dtype %q: use f16, bf16 or f32\n", *dtypeName)
		return ExitUsage
	}

	ctx, stop := interruptible()
	defer stop()

	in, err := openWeights(src)
	if err != nil {
		fmt.Fprintf(stderr, "modelpub shard: %s\n", errText(err))
		return ExitUsage
	}
	defer in.Close()
	if *base == "" {
		*base = in.base
	}
	ws, converted, err := in.writeTensors(to)
	if err != nil {
		fmt.Fprintf(stderr, "modelpub shard: %s\n", errText(err))
		return ExitUsage
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(stderr, "modelpub shard: %s\n", errText(err))
		return ExitUsage
	}
	bar := newProgressBar(stderr)
	res, err := tensors.WriteSharded(ctx, dir, ws, tensors.ShardedOptions{
		MaxShardSize: max, Base: *base, Variant: *variant, Metadata: in.metadata, Progress: bar.update,
	})
	bar.done()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(stderr, "modelpub shard: interrupted; nothing was left half-written")
		} else {
			fmt.Fprintf(stderr, "modelpub shard: %s\n", errText(err))
		}
		return ExitUsage
	}
	for i, f := range res.Files {
		fmt.Fprintf(stdout, "%s  %s  %s\n", folder.Printable(filepath.Join(dir, f)),
			tensors.FormatSize(res.Plan.Shards[i].Size), count(len(res.Plan.Shards[i].Tensors), "tensor", ""))
	}
	if res.IndexFile != "" {
		fmt.Fprintf(stdout, "%s\n", folder.Printable(filepath.Join(dir, res.IndexFile)))
	}
	for _, c := range converted {
		if st := c.src.Stats(); st.Overflow > 0 || st.Underflow > 0 {
			fmt.Fprintf(stdout, "warning: tensor %q: %d values overflowed to ±inf, %d underflowed to zero in %s\n",
				c.name, st.Overflow, st.Underflow, to)
		}
	}
	return ExitOK
}

// weightsInput is an open safetensors file or sharded set, read in the
// order its tensors are stored.
type weightsInput struct {
	base     string
	metadata tensors.Metadata
	files    []*tensors.File
}

func (w *weightsInput) Close() {
	for _, f := range w.files {
		f.Close()
	}
}

// openWeights opens a .safetensors file, or a sharded set through its index.
func openWeights(path string) (*weightsInput, error) {
	name := filepath.Base(path)
	if ix, ok := tensors.ParseIndexFileName(name); ok {
		set, err := tensors.OpenShardedSet(path)
		if err != nil {
			return nil, err
		}
		in := &weightsInput{base: ix.Base}
		for _, shard := range set.Index.Shards() {
			f, err := tensors.Open(filepath.Join(filepath.Dir(path), shard))
			if err != nil {
				in.Close()
				return nil, err
			}
			in.files = append(in.files, f)
		}
		if len(in.files) > 0 {
			in.metadata = in.files[0].Header.Metadata
		}
		return in, nil
	}
	f, err := tensors.Open(path)
	if err != nil {
		return nil, err
	}
	base := strings.TrimSuffix(name, ".safetensors")
	if wn, ok := tensors.ParseWeightsFileName(name); ok {
		base = wn.Base
	}
	return &weightsInput{base: base, metadata: f.Header.Metadata, files: []*tensors.File{f}}, nil
}

type convertedTensor struct {
	name string
	src  *tensors.Converted
}

// writeTensors lists the input's tensors as writer inputs, converting
// floating-point tensors to dtype to (unless to is zero).
func (w *weightsInput) writeTensors(to tensors.DType) ([]tensors.WriteTensor, []convertedTensor, error) {
	var ws []tensors.WriteTensor
	var conv []convertedTensor
	for _, f := range w.files {
		for _, t := range f.Header.Tensors {
			wt := tensors.WriteTensor{Name: t.Name, DType: t.DType, Shape: t.Shape, Data: f.TensorSource(t)}
			if to != 0 && t.DType.IsFloat() && t.DType != to {
				c, err := tensors.Convert(wt.Data, t.DType, to)
				if err != nil {
					return nil, nil, fmt.Errorf("%s: tensor %q: %w", folder.Printable(f.Path), t.Name, err)
				}
				wt.DType, wt.Data = to, c
				conv = append(conv, convertedTensor{t.Name, c})
			}
			ws = append(ws, wt)
		}
	}
	return ws, conv, nil
}
