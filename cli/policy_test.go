//go:build unix

package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/pipeline/pipelinetest"
)

// A folder with a link leading outside is refused by every command that
// opens it, naming the link; --allow-outside-links lets the user go on.
func TestCommandsRefuseOutsideLinksUnlessAllowed(t *testing.T) {
	src := filepath.Join(t.TempDir(), "sd15")
	_, err := pipelinetest.WriteSD15(context.Background(), src, pipelinetest.Options{Scale: 0.001, Seed: 1})
	require.NoError(t, err)
	secret := filepath.Join(t.TempDir(), "secret.txt")
	require.NoError(t, os.WriteFile(secret, []byte("secret"), 0o600))
	require.NoError(t, os.Symlink(secret, filepath.Join(src, "tokenizer", "added_tokens.txt")))
	dst := filepath.Join(t.TempDir(), "out")

	for _, args := range [][]string{
		{"inspect", src},
		{"validate", src},
		{"card", src},
		{"save", src, dst},
		{"publish", src, "--repo", "me/x", "--dry-run"},
	} {
		var out, errOut bytes.Buffer
		code := Run(args, &out, &errOut)
		want := ExitUsage
		if args[0] == "publish" {
			want = ExitProblems // publish: 1 is "failed, with the reason"
		}
		assert.Equal(t, want, code, "%v", args)
		assert.Contains(t, errOut.String(), "added_tokens.txt", "%v", args)
		assert.Contains(t, errOut.String(), secret, "%v", args)
		assert.NotContains(t, out.String()+errOut.String(), "panic")
	}
	assert.NoDirExists(t, dst)

	var out, errOut bytes.Buffer
	require.Equal(t, ExitOK, Run([]string{"inspect", src, "--allow-outside-links"}, &out, &errOut), errOut.String())
	require.Equal(t, ExitOK, Run([]string{"save", "--allow-outside-links", src, dst}, &out, &errOut), errOut.String())
	b, err := os.ReadFile(filepath.Join(dst, "tokenizer", "added_tokens.txt"))
	require.NoError(t, err)
	assert.Equal(t, "secret", string(b))
}
