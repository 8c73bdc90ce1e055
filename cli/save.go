package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"modelpub/core/convert"
	"modelpub/core/folder"
	"modelpub/core/pipeline"
	"modelpub/core/tensors"
)

func init() {
	register(command{
		name:    "save",
		args:    "SRC DST [--max-shard-size SIZE] [--variant fp16|bf16] [--overwrite] [--no-validate] [--allow-outside-links] [--json]",
		summary: "save a Diffusers folder anew: safetensors, resharded, with an fp16/bf16 variant",
		help:    saveHelp,
		run:     runSave,
	})
	register(command{
		name:    "validate",
		args:    "DIR [--against SRC] [--strict] [--allow-outside-links] [--json]",
		summary: "check that a folder loads as diffusers would load it, and matches its source",
		help:    validateHelp,
		run:     runValidate,
	})
}

const saveHelp = `Writes the pipeline (or single model) in SRC to DST as diffusers'
save_pretrained would: weights as safetensors, split at SIZE (default 10GB for
diffusers models, 5GB for transformers models), model_index.json in diffusers'
format, configs, tokenizers and every other file copied. SRC is only read.
DST must not exist or be empty unless --overwrite; it is built in a hidden
folder beside it (.DST.modelpub-partial) and appears only when complete. A
save stopped by Ctrl-C or killed keeps its finished files there, and running
the same save again (same SRC, unchanged, and options) writes only the rest;
a save that fails leaves nothing. Afterwards DST is validated against SRC
(see "modelpub help validate") unless --no-validate.

  --max-shard-size SIZE  5GB, 500MB, 1.5GB, 2GiB or bytes
  --variant fp16|bf16    also write the weights converted to float16 or
                         bfloat16 beside the full-precision ones
                         (diffusion_pytorch_model.fp16.safetensors, ...);
                         integer and bool tensors are copied unchanged
  --overwrite            replace a non-empty DST
  --no-validate          skip the load-back check
  --allow-outside-links  follow symbolic links that lead outside the folder
                         (refused by default: a downloaded folder is untrusted)
  --json                 print the result as JSON

Exit status: 0 saved (and valid), 1 saved but validation found problems,
2 nothing was saved.
`

const validateHelp = `Checks that DIR loads as diffusers' from_pretrained would load it: every
listed component present, each index consistent with its shards, every
safetensors file valid with format "pt", configs that parse.

With --against SRC it also compares DIR with the folder it was saved from:
missing and unexpected tensors by name, shapes and dtypes, main weights bit
for bit, variant tensors against the exact round-to-nearest-even conversion
of the source, configs and model_index.json by value. Values a variant could
not hold (overflow to ±inf, underflow to zero) are warnings, or problems
with --strict. Tensors are streamed, never loaded whole.

  --allow-outside-links  follow symbolic links that lead outside the folders
                         (refused by default: a downloaded folder is untrusted)

Exit status: 0 valid, 1 problems found, 2 the check could not run.
`

func runSave(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("save", stderr)
	maxSize := fs.String("max-shard-size", "", "")
	variant := fs.String("variant", "", "")
	overwrite := fs.Bool("overwrite", false, "")
	open := openFlag(fs)
	noValidate := fs.Bool("no-validate", false, "")
	asJSON := fs.Bool("json", false, "")
	pos, ok := parseArgs(fs, args, 2)
	if !ok {
		return ExitUsage
	}
	opts := pipeline.SaveOptions{Variant: *variant, Overwrite: *overwrite, Resume: true}
	if *maxSize != "" {
		var err error
		if opts.MaxShardSize, err = tensors.ParseSize(*maxSize); err != nil {
			fmt.Fprintf(stderr, "modelpub save: --max-shard-size: %s\n", errText(err))
			return ExitUsage
		}
	}
	ctx, stop := interruptible()
	defer stop()
	src, err := open(ctx, pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "modelpub save: %s\n", errText(err))
		return ExitUsage
	}
	bar := newProgressBar(stderr)
	opts.Progress = func(p pipeline.Progress) { bar.update(p.Done, p.Total) }
	res, err := pipeline.Save(ctx, src, pos[1], opts)
	bar.done()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintf(stderr, "modelpub save: interrupted; %s was not created (run the same save again to resume)\n", folder.Printable(pos[1]))
		} else {
			fmt.Fprintf(stderr, "modelpub save: %s\n", errText(err))
		}
		return ExitUsage
	}
	out := struct {
		Dir        string                 `json:"dir"`
		Bytes      int64                  `json:"bytes"`
		Kept       int64                  `json:"resumed_bytes,omitempty"`
		Lossy      []pipeline.LossyTensor `json:"lossy_tensors"`
		Validation *pipeline.Report       `json:"validation,omitempty"`
	}{Dir: res.Dir, Bytes: res.Bytes, Kept: res.Kept, Lossy: res.Lossy}
	if out.Lossy == nil {
		out.Lossy = []pipeline.LossyTensor{}
	}
	code := ExitOK
	if !*noValidate {
		dst, err := pipeline.Open(ctx, res.Dir)
		if err == nil {
			out.Validation, err = pipeline.Validate(ctx, dst, pipeline.ValidateOptions{Against: src})
		}
		if err != nil {
			fmt.Fprintf(stderr, "modelpub save: saved, but the load-back check could not run: %s\n", errText(err))
			return ExitProblems
		}
		if !out.Validation.OK() {
			code = ExitProblems
		}
	}
	if *asJSON {
		printJSON(stdout, out)
		return code
	}
	fmt.Fprintf(stdout, "saved %s (%s)\n", folder.Printable(res.Dir), tensors.FormatSize(res.Bytes))
	if res.Kept > 0 {
		fmt.Fprintf(stdout, "resumed: %s were kept from the interrupted save\n", tensors.FormatSize(res.Kept))
	}
	if out.Validation != nil {
		// The check reports every lossy variant tensor (those of a resumed
		// save too), worded as validate words it.
		printReport(stdout, out.Validation)
	} else {
		for _, l := range res.Lossy {
			fmt.Fprintf(stdout, "warning: %s (%s variant): tensor %q: %d values overflowed to ±inf and %d non-zero values became zero\n",
				folder.Printable(l.Component), folder.Printable(l.Variant), l.Tensor, l.Overflow, l.Underflow)
		}
	}
	return code
}

func runValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("validate", stderr)
	against := fs.String("against", "", "")
	strict := fs.Bool("strict", false, "")
	open := openFlag(fs)
	asJSON := fs.Bool("json", false, "")
	pos, ok := parseArgs(fs, args, 1)
	if !ok {
		return ExitUsage
	}
	ctx, stop := interruptible()
	defer stop()
	opts := pipeline.ValidateOptions{Strict: *strict}
	// --against a single-file checkpoint: the folder is checked alone, then
	// every tensor against the checkpoint bytes it was converted from.
	checkpoint := ""
	if st, err := os.Stat(*against); *against != "" && err == nil && st.Mode().IsRegular() && isCheckpointName(*against) {
		checkpoint = *against
	}
	if *against != "" && checkpoint == "" {
		var err error
		if opts.Against, err = open(ctx, *against); err != nil {
			fmt.Fprintf(stderr, "modelpub validate: --against: %s\n", errText(err))
			return ExitUsage
		}
	}
	p, err := open(ctx, pos[0])
	if err != nil {
		if errors.Is(err, pipeline.ErrMissingComponent) || errors.Is(err, pipeline.ErrModelIndex) {
			fmt.Fprintf(stderr, "modelpub validate: %s\n", errText(err))
			return ExitProblems // the folder would not load: a finding, not a failure to check
		}
		fmt.Fprintf(stderr, "modelpub validate: %s\n", errText(err))
		return ExitUsage
	}
	bar := newProgressBar(stderr)
	opts.Progress = bar.update
	rep, err := pipeline.Validate(ctx, p, opts)
	if err == nil && checkpoint != "" {
		var conv *pipeline.Report
		if conv, err = convert.VerifyFolder(ctx, checkpoint, p, "", bar.update); err == nil {
			rep.Problems = append(rep.Problems, conv.Problems...)
			rep.Warnings = append(rep.Warnings, conv.Warnings...)
			rep.Tensors, rep.Bytes = conv.Tensors, conv.Bytes
		}
	}
	bar.done()
	if err != nil {
		fmt.Fprintf(stderr, "modelpub validate: %s\n", errText(err))
		return ExitUsage
	}
	if *asJSON {
		printJSON(stdout, rep)
	} else {
		printReport(stdout, rep)
	}
	if !rep.OK() {
		return ExitProblems
	}
	return ExitOK
}

// printReport prints a validation report, one line per finding: the
// messages name files and tensors of the folder, so they go through
// safeText and a hostile name cannot add a line ("valid").
func printReport(w io.Writer, r *pipeline.Report) {
	for _, p := range r.Problems {
		fmt.Fprintf(w, "problem: %s\n", safeText(p.Message))
	}
	for _, p := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", safeText(p.Message))
	}
	switch {
	case !r.OK():
		fmt.Fprintf(w, "%s found\n", count(len(r.Problems), "problem", ""))
	case r.Tensors > 0:
		verb := "match"
		if r.Tensors == 1 {
			verb = "matches"
		}
		fmt.Fprintf(w, "valid: %s (%s) %s the source\n", count(r.Tensors, "tensor", ""), tensors.FormatSize(r.Bytes), verb)
	default:
		fmt.Fprintln(w, "valid")
	}
}

// isCheckpointName reports a weights file name that validate --against
// takes as a single-file checkpoint (any other file stands for its folder).
func isCheckpointName(path string) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".safetensors", ".ckpt", ".pt", ".pth", ".bin":
		return true
	}
	return false
}
