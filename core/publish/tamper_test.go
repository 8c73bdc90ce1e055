package publish_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/hub"
	"modelpub/core/hub/hubemu"
	"modelpub/core/pipeline/pipelinetest"
	"modelpub/core/publish"
)

// A staged weights file that changed after a dry run checked it never
// reaches a commit: changed openly, the check reads it again and finds the
// difference; changed behind the stamp's back (same size and time), the
// Hub refuses the object whose bytes are not the sha256 it was announced
// with. Either way nothing is committed, and the next run after the damage
// is repaired publishes.
func TestTamperedStagingIsNeverCommitted(t *testing.T) {
	for _, hidden := range []bool{false, true} {
		name := "changed openly"
		if hidden {
			name = "changed behind the stamp's back"
		}
		t.Run(name, func(t *testing.T) {
			srv := startHub(t)
			src := sd15(t, pipelinetest.Options{Seed: 51})
			o := options(t, srv, src, "alice/tampered", nil)
			o.Variant, o.DryRun = "fp16", true
			dry, err := publish.Run(context.Background(), o)
			require.NoError(t, err)
			staged := filepath.Join(dry.Folder, "unet", "diffusion_pytorch_model.fp16.safetensors")
			st, err := os.Stat(staged)
			require.NoError(t, err)
			b, err := os.ReadFile(staged)
			require.NoError(t, err)
			b[len(b)-5] ^= 0x10 // a value of the last tensor
			require.NoError(t, os.WriteFile(staged, b, 0o644))
			if hidden {
				require.NoError(t, os.Chtimes(staged, st.ModTime(), st.ModTime()))
			}

			o.DryRun = false
			o.Retry.MaxRetries = -1
			_, err = publish.Run(context.Background(), o)
			require.Error(t, err)
			if hidden {
				assert.ErrorIs(t, err, hub.ErrBadRequest, "the Hub checks the object against its sha256")
				assert.Contains(t, err.Error(), "BadDigest")
			} else {
				assert.ErrorIs(t, err, publish.ErrInvalid)
				assert.Contains(t, err.Error(), "unet/diffusion_pytorch_model.fp16.safetensors")
				assert.Contains(t, err.Error(), "is not the exact conversion of the source")
			}
			assert.Zero(t, countClass(srv, hubemu.ClassCommit), "nothing committed")

			b[len(b)-5] ^= 0x10
			require.NoError(t, os.WriteFile(staged, b, 0o644)) // repaired (a new time: checked again)
			res, err := publish.Run(context.Background(), o)
			require.NoError(t, err)
			assert.NotEmpty(t, res.CommitURL)
		})
	}
}
