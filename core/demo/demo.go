// Package demo writes the demo pipeline of `modelpub demo` and the app's
// "Try with a demo model": a small folder shaped as Stable Diffusion 1.5
// (the real component folders, configs, tokenizer, file and tensor names,
// narrower tensors of seeded random values) with a model card saying it is
// a demo, to try Modelpub without downloading a model.
package demo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"modelpub/core/card"
	"modelpub/core/drafts"
	"modelpub/core/pipeline"
	"modelpub/core/pipeline/pipelinetest"
)

// Scale gives a few hundred MB (about 215): enough for the shard map and
// the variant scan to show something, little enough to write in seconds.
const Scale = 0.05

// Seed makes every demo folder the same.
const Seed = 1505

// License is the license of Stable Diffusion 1.5, whose layout the demo
// has; the card says so.
const License = "creativeml-openrail-m"

// ErrDirNotEmpty is returned for a destination that has entries.
var ErrDirNotEmpty = errors.New("demo: the folder is not empty")

// Notice starts the demo card's body.
const Notice = `> **A demo folder written by ` + "`modelpub demo`" + `.** It has the files, names and tensor layout of
> Stable Diffusion 1.5 with narrower tensors of random values: it does not generate images. Use it to try
> Modelpub (resharding, variants, the card, a publish to ` + "`modelpub localhub`" + `), not as a model.

`

// Result is a demo folder written.
type Result struct {
	Dir   string // absolute
	Bytes int64  // of every file written
	Files int
}

// Write writes the demo pipeline at scale (0 < scale ≤ 1; Scale is the
// demo's) into dir, which must not exist or be an empty folder, with its
// model card as README.md. progress, if not nil, is called with the bytes of
// tensor data written and their total, from any goroutine. The folder is
// built in a hidden folder beside dir and renamed into place once complete:
// a failure or a cancelled ctx leaves no dir and nothing beside it.
func Write(ctx context.Context, dir string, scale float64, progress func(done, total int64)) (*Result, error) {
	if !(scale > 0 && scale <= 1) {
		return nil, fmt.Errorf("demo: scale must be above 0 and at most 1, not %v", scale)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	switch entries, err := os.ReadDir(dir); {
	case err == nil && len(entries) > 0:
		return nil, fmt.Errorf("%w: %s", ErrDirNotEmpty, dir)
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".modelpub-demo-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	// The folder is built under its own name, which the card's title
	// takes.
	stage := filepath.Join(tmp, filepath.Base(dir))
	m, err := pipelinetest.WriteSD15(ctx, stage, pipelinetest.Options{Scale: scale, Seed: Seed, Progress: progress})
	if err != nil {
		return nil, err
	}
	p, err := pipeline.Open(ctx, stage)
	if err != nil {
		return nil, err
	}
	c := card.Generate(p, card.GenerateOptions{License: License})
	c.SetBody(Notice + c.Body())
	data, err := c.Bytes()
	if err != nil {
		return nil, err
	}
	if err := drafts.WriteFile(filepath.Join(stage, card.FileName), data, 0o644); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// An empty dir is replaced; one that got files meanwhile is not
	// removed (os.Remove refuses), and the rename fails.
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("demo: %s: %w", dir, err)
	}
	if err := os.Rename(stage, dir); err != nil {
		return nil, fmt.Errorf("demo: %s: %w", dir, err)
	}
	return &Result{Dir: dir, Bytes: m.Bytes + int64(len(data)), Files: len(m.Files) + 1}, nil
}
