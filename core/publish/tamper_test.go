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
// Hub refuses the LFS object whose bytes are not the sha256 it was
// announced with, and the Xet upload, which computes the sha256 in the pass
// that chunks the file, refuses to name it. Either way nothing is
// committed, and the next run after the damage is repaired publishes.
func TestTamperedStagingIsNeverCommitted(t *testing.T) {
	for _, tt := range []struct {
		hidden   bool
		transfer hub.Transfer
	}{{false, hub.TransferAuto}, {true, hub.TransferLFS}, {true, hub.TransferAuto}} {
		hidden := tt.hidden
		name := "changed openly"
		if hidden {
			name = "changed behind the stamp's back, " + string(tt.transfer)
		}
		t.Run(name, func(t *testing.T) {
			srv := startHub(t)
			src := sd15(t, pipelinetest.Options{Seed: 51})
			o := options(t, srv, src, "alice/tampered", nil)
			o.Variant, o.DryRun, o.Transfer = "fp16", true, tt.transfer
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
			switch {
			case hidden && tt.transfer == hub.TransferLFS:
				assert.ErrorIs(t, err, hub.ErrBadRequest, "the Hub checks the object against its sha256")
				assert.Contains(t, err.Error(), "BadDigest")
			case hidden:
				// core/hub's error here has no sentinel: its text is what
				// there is to check.
				assert.Contains(t, err.Error(), "unet/diffusion_pytorch_model.fp16.safetensors changed since it was hashed")
				assert.Zero(t, countClass(srv, hubemu.ClassLFSUpload), "through Xet")
			default:
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
