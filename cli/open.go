package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"modelpub/core/folder"
	"modelpub/core/pipeline"
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
		return pipeline.OpenWith(ctx, dir, pipeline.OpenOptions{AllowOutsideLinks: *allow})
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
