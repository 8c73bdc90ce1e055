package gui

import (
	"os"
	"path/filepath"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/pipeline"
)

// newTestSaveJob returns a save job in a test window whose folder picker
// answers dir at once.
func newTestSaveJob(t *testing.T, dir string) (*saveJob, fyne.Window) {
	t.Helper()
	test.NewTempApp(t)
	e := jobTestEnv()
	w := test.NewTempWindow(t, test.NewWindow(nil).Content())
	w.Resize(fyne.NewSize(1000, 700))
	e.win = w
	s := newSaveJob(e)
	s.pick = func(start string, done func(string, error)) { done(dir, nil) }
	return s, w
}

func TestSaveJobWritesTheVariant(t *testing.T) {
	dst := t.TempDir() // empty: saved into it
	s, w := newTestSaveJob(t, dst)
	p := jobPipeline(t, 7)
	s.e.choices.set(1_000_000, "fp16")

	var picked string
	pick := s.pick
	s.pick = func(start string, done func(string, error)) { picked = start; pick(start, done) }
	s.Run(p)

	assert.Equal(t, filepath.Dir(p.Dir), picked, "the picker starts beside the folder")
	assert.False(t, s.Busy())
	for _, f := range []string{
		"model_index.json",
		"unet/diffusion_pytorch_model.safetensors.index.fp16.json", // sharded at 1 MB
		"unet/diffusion_pytorch_model.fp16-00001-of-00002.safetensors",
		"vae/diffusion_pytorch_model.fp16.safetensors",
		"text_encoder/model.fp16.safetensors",
		"unet/diffusion_pytorch_model.safetensors.index.json",
	} {
		assert.FileExists(t, filepath.Join(dst, filepath.FromSlash(f)))
	}
	saved, err := pipeline.Open(t.Context(), dst)
	require.NoError(t, err)
	assert.Contains(t, saved.Component("unet").Variants(), "fp16")
	markup := topDialog(w)
	assert.Contains(t, markup, "Saved to "+dst)
	assert.Contains(t, markup, "lost values in 1 tensor", "the synthetic UNet has one fp16-unsafe tensor")
}

func TestSaveJobMakesAFolderInsideANonEmptyOne(t *testing.T) {
	p := jobPipeline(t, 7)
	parent := filepath.Dir(p.Dir) // holds sd15 itself
	s, w := newTestSaveJob(t, parent)

	s.Run(p)
	s.Run(p)

	assert.FileExists(t, filepath.Join(parent, "sd15-2", "model_index.json"), "never over the source")
	assert.FileExists(t, filepath.Join(parent, "sd15-3", "model_index.json"), "nor over an earlier save")
	s.e.choices.set(0, "bf16")
	dismissDialogs(w)
	s.Run(p)
	assert.FileExists(t, filepath.Join(parent, "sd15-bf16", "unet", "diffusion_pytorch_model.bf16.safetensors"))
	assert.Contains(t, topDialog(w), "Saved to "+filepath.Join(parent, "sd15-bf16"))
}

func TestSaveJobRefusesTheSourceFolder(t *testing.T) {
	p := jobPipeline(t, 7)
	s, w := newTestSaveJob(t, filepath.Join(p.Dir, "unet"))

	s.Run(p)

	markup := topDialog(w)
	assert.Contains(t, markup, "Choose a folder outside the one being saved")
	assert.Contains(t, markup, "only ever read")
	assert.NoDirExists(t, filepath.Join(p.Dir, "unet", "sd15"))
}

func TestSaveJobPickerCancelled(t *testing.T) {
	p := jobPipeline(t, 7)
	s, w := newTestSaveJob(t, "")
	s.Run(p)
	assert.Nil(t, w.Canvas().Overlays().Top(), "nothing to say")
	assert.False(t, s.Busy())
}

func TestSaveJobCancel(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "out")
	s, w := newTestSaveJob(t, dst)
	p := jobPipeline(t, 7)
	// The first progress update stands for the user pressing Cancel while
	// the save runs.
	do := s.e.do
	tapped := false
	s.e.do = func(f func()) {
		do(f)
		if s.running && !tapped && s.bar != nil && s.bar.Value > 0 {
			tapped = true
			test.Tap(s.cancelBtn)
		}
	}
	idle := false

	s.Run(p)
	s.OnIdle(func() { idle = true })

	require.True(t, tapped)
	assert.False(t, s.Busy())
	assert.True(t, idle)
	assert.NoDirExists(t, dst, "a cancelled save leaves nothing behind")
	assert.Nil(t, w.Canvas().Overlays().Top(), "the progress dialog is gone; a cancel needs no message")
	entries, err := os.ReadDir(filepath.Dir(dst))
	require.NoError(t, err)
	assert.Empty(t, entries)
}
