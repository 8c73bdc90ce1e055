package publish_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/pipeline/pipelinetest"
	"modelpub/core/publish"
)

// requireTool skips without the tool, but fails under CI=true, where the
// official client must run.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found in PATH (CI=true: the @huggingface/hub check must run; `make deps-node` installs it)", name)
		}
		t.Skipf("%s not found in PATH (`make deps-node` installs node and npm)", name)
	}
	return p
}

// A published pipeline, seen through @huggingface/hub (the client pinned
// by core/hub/conformance): listFiles shows every staged file and nothing
// else, also after a re-publish with another layout, and downloadFile
// returns the staged bytes.
func TestPublishedRepoThroughOfficialClient(t *testing.T) {
	if testing.Short() {
		t.Skip("installs the npm client")
	}
	node, npm := requireTool(t, "node"), requireTool(t, "npm")
	js := t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json", "fetch.mjs"} {
		b, err := os.ReadFile(filepath.Join("..", "hub", "conformance", f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(js, f), b, 0o644))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=warn")
	install.Dir = js
	out, err := install.CombinedOutput()
	require.NoError(t, err, "npm ci:\n%s", out)

	srv := startHub(t)
	src := sd15(t, pipelinetest.Options{Seed: 11})
	o := options(t, srv, src, "alice/seen-by-js", nil)
	o.MaxShardSize, o.Variant, o.License, o.KeepStaging = 1<<20, "fp16", "mit", true

	// Layout A on main, a pull request with bf16 instead of fp16, then
	// layout B (one file per model, no variant) on main: each time the
	// official client lists exactly the published files, nothing stale.
	steps := []struct {
		name   string
		modify func(o *publish.Options)
	}{
		{"sharded fp16 on main", func(o *publish.Options) {}},
		{"bf16 as a pull request", func(o *publish.Options) { o.CreatePR, o.Variant = true, "bf16" }},
		{"one file, no variant, on main", func(o *publish.Options) { o.CreatePR, o.Variant, o.MaxShardSize = false, "", 0 }},
	}
	for _, step := range steps {
		step.modify(&o)
		res, err := publish.Run(ctx, o)
		require.NoError(t, err, step.name)
		rev := "main"
		if o.CreatePR {
			rev = "refs/pr/1"
		}
		cmd := exec.CommandContext(ctx, node, "fetch.mjs", "--repo", "alice/seen-by-js", "--revision", rev)
		cmd.Dir = js
		cmd.Env = append(os.Environ(), "HUB_ENDPOINT="+srv.URL(), "HUB_TOKEN="+aliceTok)
		var stderr []byte
		stdout, err := cmd.Output()
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		require.NoError(t, err, "fetch.mjs at %s:\n%s", rev, stderr)
		var report struct {
			Listed  map[string]int64 `json:"listed"`
			Fetched map[string]struct {
				Size   int64  `json:"size"`
				SHA256 string `json:"sha256"`
			} `json:"fetched"`
		}
		require.NoError(t, json.Unmarshal(stdout, &report), "%s", stdout)
		want := map[string]bool{".gitattributes": true}
		for _, f := range res.Files {
			want[f.Path] = true
			b := res.Card
			if f.Path != "README.md" {
				b, err = os.ReadFile(filepath.Join(res.Folder, filepath.FromSlash(f.Path)))
				require.NoError(t, err)
			}
			sum := sha256.Sum256(b)
			require.Contains(t, report.Fetched, f.Path, "%s: at %s", step.name, rev)
			assert.Equal(t, int64(len(b)), report.Listed[f.Path], "%s: %s at %s", step.name, f.Path, rev)
			assert.Equal(t, hex.EncodeToString(sum[:]), report.Fetched[f.Path].SHA256, "%s: %s at %s", step.name, f.Path, rev)
		}
		for p := range report.Listed {
			assert.True(t, want[p], "%s: the official client lists %s at %s, which was not published", step.name, p, rev)
		}
	}
}
