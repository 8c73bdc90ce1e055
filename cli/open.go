package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"modelpub/core/folder"
	"modelpub/core/pipeline"
	"modelpub/core/tensors"
)

// openFlag adds --allow-outside-links to a command that opens folders
// (inspect, validate, card, save's SRC) and returns how to open one with
// it: sourceDir finds the folder, as the app does, and a note on fs's
// output says when it is not the one given.
func openFlag(fs *flag.FlagSet) func(ctx context.Context, path string) (*pipeline.Pipeline, error) {
	allow := fs.Bool("allow-outside-links", false, "")
	return func(ctx context.Context, path string) (*pipeline.Pipeline, error) {
		dir := sourceDir(path)
		if dir != path {
			fmt.Fprintf(fs.Output(), "modelpub %s: %s is in the folder %s; opening that\n", fs.Name(), folder.Printable(path), folder.Printable(dir))
		}
		p, err := pipeline.OpenWith(ctx, dir, pipeline.OpenOptions{AllowOutsideLinks: *allow})
		if err == nil {
			explainMissingFiles(p)
		}
		return p, err
	}
}

// sourceDir is the folder to open for path. A file, or a folder holding
// neither model_index.json nor config.json (a tokenizer, a weights
// subfolder), opens the pipeline or model folder pipeline.FindRoot finds
// at or above it, as the app does. A folder with a config.json stays as
// given, even inside a pipeline: "save pipe/unet out" saves that model
// alone. A path that cannot be read is returned as it is, for Open to say
// why.
func sourceDir(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return path
	}
	if st.IsDir() && (isFile(filepath.Join(path, pipeline.ModelIndexFile)) || isFile(filepath.Join(path, "config.json"))) {
		return path
	}
	root, err := pipeline.FindRoot(path)
	if err != nil || (!st.IsDir() && root == filepath.Dir(path) && !isFile(filepath.Join(root, pipeline.ModelIndexFile)) &&
		!isFile(filepath.Join(root, "config.json"))) {
		return path // nothing above: Open says what path is
	}
	return root
}

func isFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// missingFileError is a weights file an index names that is not there.
type missingFileError struct {
	file string // relative to the pipeline folder, slash-separated
	err  error  // what opening it said
}

func (e *missingFileError) Error() string { return e.file + " is missing: the index names it" }

func (e *missingFileError) Unwrap() []error { return []error{tensors.ErrMissingShard, e.err} }

// explainMissingFiles rewords the error of each weight set whose index
// names a file that does not exist (pipeline.Open words it as the failed
// stat: "lstat /abs/path: no such file or directory"), in the set and in
// the warning that repeats it, so inspect, validate and save say which
// file is missing and why it is wanted.
func explainMissingFiles(p *pipeline.Pipeline) {
	for _, c := range p.Components {
		for _, w := range c.Weights {
			var pe *fs.PathError
			if w.Err == nil || w.Index == "" || !errors.Is(w.Err, fs.ErrNotExist) || !errors.As(w.Err, &pe) {
				continue
			}
			rel, err := filepath.Rel(p.Dir, pe.Path)
			if err != nil || !filepath.IsLocal(rel) {
				continue
			}
			old := w.Err.Error()
			w.Err = &missingFileError{file: filepath.ToSlash(rel), err: w.Err}
			for i, wn := range p.Warnings {
				if wn.Message == old {
					p.Warnings[i].Message = w.Err.Error()
				}
			}
		}
	}
}
