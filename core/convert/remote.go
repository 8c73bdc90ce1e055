package convert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing/fstest"
	"time"

	"modelpub/core/hub"
)

// HubReader is what FetchConfigs needs of a Hub client (*hub.Client is
// one): the repository's file list and small files read whole.
type HubReader interface {
	ListTree(ctx context.Context, id hub.RepoID, rev, path string, recursive bool) ([]hub.TreeEntry, error)
	ReadFile(ctx context.Context, id hub.RepoID, rev, path string) ([]byte, error)
}

// maxConfigFile bounds each file FetchConfigs reads: configs are a few KB,
// CLIP's vocab.json 1 MB, a T5 tokenizer.json 2.4 MB.
const maxConfigFile = 16 << 20

// ErrConfigRepo: the reference repository could not be read or does not
// hold what the type needs.
var ErrConfigRepo = errors.New("convert: cannot take the configs from the reference repository")

// DefaultConfigRepo is the repository diffusers takes type t's configs
// from (DIFFUSERS_DEFAULT_PIPELINE_PATHS in single_file_utils.py).
func DefaultConfigRepo(t Type) string {
	if r := recipeFor(t); r != nil {
		return r.repo
	}
	return ""
}

// NeedsConfigs reports whether type t has no embedded configs: converting
// it reads them from the Hub (Options.ConfigFrom, or DefaultConfigRepo).
func NeedsConfigs(t Type) bool {
	r := recipeFor(t)
	return r != nil && r.dir == ""
}

// isRepoConfigFile reports the files of a pipeline repository a conversion
// takes: model_index.json, and in each component folder the configs and
// tokenizer and processor files; never weights or their index files.
func isRepoConfigFile(p string) bool {
	base := path.Base(p)
	switch {
	case strings.Contains(base, ".safetensors"), strings.Contains(base, ".bin"), strings.HasSuffix(base, ".index.json"),
		strings.Contains(base, ".ckpt"), strings.Contains(base, ".pt"), strings.Contains(base, ".gguf"), strings.Contains(base, ".onnx"):
		return false
	case strings.HasSuffix(base, ".json"), strings.HasSuffix(base, ".txt"), base == "spiece.model", strings.HasSuffix(base, ".tiktoken"):
		return true
	}
	return false
}

// FetchConfigs reads the configuration and tokenizer files of a Diffusers
// pipeline repository at rev ("" → main) — model_index.json and, in the
// folder of each component it names, the JSON, TXT and sentencepiece files
// — never its weights, and returns them laid out as in the repository. A
// gated repository the token cannot read fails with hub.ErrForbidden or
// hub.ErrUnauthorized wrapped with what to do.
func FetchConfigs(ctx context.Context, h HubReader, repo, rev string) (fs.FS, error) {
	id, err := hub.ParseRepoID(repo)
	if err != nil || id.Namespace == "" {
		return nil, fmt.Errorf("%w %q: not a repo id like stabilityai/stable-diffusion-2-1", ErrConfigRepo, repo)
	}
	fail := func(err error) error {
		var he *hub.Error
		switch {
		case errors.Is(err, hub.ErrForbidden), errors.Is(err, hub.ErrUnauthorized):
			return fmt.Errorf("%w %s: it is gated or private: accept its terms on https://huggingface.co/%s while logged in, then log in to modelpub (modelpub login) or set HF_TOKEN: %w",
				ErrConfigRepo, repo, repo, err)
		case errors.Is(err, hub.ErrRepoNotFound):
			return fmt.Errorf("%w %s: no such repository (or it is private and no token can see it): %w", ErrConfigRepo, repo, err)
		case errors.As(err, &he):
			return fmt.Errorf("%w %s: %w", ErrConfigRepo, repo, err)
		}
		return err
	}
	index, err := h.ReadFile(ctx, id, rev, "model_index.json")
	if err != nil {
		if errors.Is(err, hub.ErrEntryNotFound) {
			return nil, fmt.Errorf("%w %s: it has no model_index.json (not a Diffusers pipeline repository)", ErrConfigRepo, repo)
		}
		return nil, fail(err)
	}
	var mi map[string]any
	if err := json.Unmarshal(index, &mi); err != nil {
		return nil, fmt.Errorf("%w %s: model_index.json: %w", ErrConfigRepo, repo, err)
	}
	var dirs []string
	for k, v := range mi {
		if l, ok := v.([]any); ok && len(l) == 2 && l[0] != nil && !strings.HasPrefix(k, "_") {
			dirs = append(dirs, k)
		}
	}
	tree, err := h.ListTree(ctx, id, rev, "", true)
	if err != nil {
		return nil, fail(err)
	}
	out := fstest.MapFS{"model_index.json": &fstest.MapFile{Data: index, Mode: 0o644}}
	for _, e := range tree {
		dir, _, nested := strings.Cut(e.Path, "/")
		if e.Type != "file" || !nested || strings.Count(e.Path, "/") != 1 || !slices.Contains(dirs, dir) || !isRepoConfigFile(e.Path) {
			continue
		}
		if e.Size > maxConfigFile {
			return nil, fmt.Errorf("%w %s: %s is %d bytes, more than a config or tokenizer file holds", ErrConfigRepo, repo, e.Path, e.Size)
		}
		data, err := h.ReadFile(ctx, id, rev, e.Path)
		if err != nil {
			return nil, fail(err)
		}
		out[e.Path] = &fstest.MapFile{Data: data, Mode: 0o644, ModTime: time.Time{}}
	}
	return out, nil
}
