package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/pipeline"
)

// modelpub demo writes a pipeline every command accepts, with a card that
// says what it is; it never writes into a folder that has files.
func TestDemoWritesAPipelineToTry(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	var out, errOut bytes.Buffer
	require.Equal(t, ExitOK, Run([]string{"demo", dir, "--scale", "0.002"}, &out, &errOut), errOut.String())
	assert.Empty(t, errOut.String())
	assert.Contains(t, out.String(), "wrote a demo Stable Diffusion 1.5 pipeline to")

	p, err := pipeline.Open(context.Background(), dir)
	require.NoError(t, err)
	assert.Equal(t, "StableDiffusionPipeline", p.Index.ClassName)
	for _, c := range []string{"unet", "vae", "text_encoder"} {
		require.NotNil(t, p.Component(c).Main(), c)
		require.NoError(t, p.Component(c).Main().Err, c)
	}
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	require.NoError(t, err)
	assert.Contains(t, string(readme), "it does not generate images")
	assert.Contains(t, string(readme), "license: creativeml-openrail-m")

	out.Reset()
	errOut.Reset()
	require.Equal(t, ExitOK, Run([]string{"validate", dir}, &out, &errOut), out.String()+errOut.String())

	errOut.Reset()
	assert.Equal(t, ExitUsage, Run([]string{"demo", dir}, &out, &errOut))
	assert.Contains(t, errOut.String(), "is not empty")
	assert.Equal(t, ExitUsage, Run([]string{"demo", t.TempDir() + "/x", "--scale", "2"}, &out, &errOut))
}
