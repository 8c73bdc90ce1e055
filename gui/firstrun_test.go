package gui

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zalando/go-keyring"

	"modelpub/core/auth"
	"modelpub/core/card"
	"modelpub/core/convert/converttest"
	"modelpub/core/demo"
	"modelpub/core/hub"
	"modelpub/core/tensors"
)

// findButton finds the button labelled text in o's widget tree.
func findButton(o fyne.CanvasObject, text string) *widget.Button {
	switch v := o.(type) {
	case *widget.Button:
		if v.Text == text {
			return v
		}
	case *fyne.Container:
		for _, c := range v.Objects {
			if b := findButton(c, text); b != nil {
				return b
			}
		}
		return nil
	}
	if w, ok := o.(fyne.Widget); ok {
		for _, c := range test.WidgetRenderer(w).Objects() {
			if b := findButton(c, text); b != nil {
				return b
			}
		}
	}
	return nil
}

// tapDialogButton taps the button labelled text of the dialog on top.
func tapDialogButton(t *testing.T, w fyne.Window, text string) {
	t.Helper()
	top := w.Canvas().Overlays().Top()
	require.NotNil(t, top, "no dialog")
	b := findButton(top, text)
	require.NotNil(t, b, "no button %q in %s", text, test.RenderObjectToMarkup(top))
	test.Tap(b)
}

// testDemoScale keeps the demo a few MB in tests.
const testDemoScale = 0.002

func TestTryDemoWritesItOnceAndOpensIt(t *testing.T) {
	u, w := newTestUI(t)
	dir := filepath.Join(t.TempDir(), "data", "modelpub", "sd15-demo")
	u.demoDir = func() (string, error) { return dir, nil }
	writes := 0
	var reported []float64
	u.writeDemo = func(ctx context.Context, d string, progress func(done, total int64)) (*demo.Result, error) {
		writes++
		return demo.Write(ctx, d, testDemoScale, func(done, total int64) {
			reported = append(reported, float64(done)/float64(total))
			progress(done, total)
		})
	}
	require.True(t, u.welcome.demo.Visible())
	assert.Equal(t, "Try with a demo model", u.welcome.demo.Text)

	test.Tap(u.welcome.demo)

	require.NotNil(t, u.pipeline, "the demo opens once written")
	assert.Equal(t, dir, u.pipeline.Dir)
	assert.Equal(t, "Modelpub — sd15-demo", w.Title())
	assert.Equal(t, "StableDiffusionPipeline", u.pipeline.Index.ClassName)
	assert.NotEmpty(t, reported, "with progress")
	assert.Equal(t, 1.0, reported[len(reported)-1])
	assert.False(t, u.demoJob.Busy())
	assert.Nil(t, w.Canvas().Overlays().Top(), "the progress dialog is gone")
	readme, err := os.ReadFile(filepath.Join(dir, card.FileName))
	require.NoError(t, err)
	assert.Contains(t, string(readme), "license: "+demo.License)
	assert.Equal(t, "creativeml-openrail-m", u.cards.license.Text, "its card in the Model card tab")

	u.setPipeline(nil)
	u.tryDemo()
	assert.Equal(t, 1, writes, "written once")
	require.NotNil(t, u.pipeline)
	assert.Equal(t, dir, u.pipeline.Dir)
}

func TestTryDemoCancelledOrFailed(t *testing.T) {
	u, w := newTestUI(t)
	dir := filepath.Join(t.TempDir(), "sd15-demo")
	u.demoDir = func() (string, error) { return dir, nil }
	u.writeDemo = func(ctx context.Context, _ string, progress func(done, total int64)) (*demo.Result, error) {
		progress(10, 100)
		assert.True(t, u.demoJob.Busy())
		tapDialogButton(t, w, "Cancel") // the window's goroutine is this one in tests
		assert.ErrorIs(t, ctx.Err(), context.Canceled, "Cancel stops the writing")
		return nil, ctx.Err()
	}
	u.tryDemo()
	assert.Nil(t, u.pipeline)
	assert.Nil(t, w.Canvas().Overlays().Top(), "a cancel is not an error")
	assert.False(t, u.demoJob.Busy())

	u.writeDemo = func(context.Context, string, func(int64, int64)) (*demo.Result, error) {
		return nil, errors.New("disk on fire")
	}
	u.tryDemo()
	assert.Nil(t, u.pipeline)
	assert.Contains(t, overlayText(w), "disk on fire")
	assert.Contains(t, overlayText(w), "The demo model could not be written")
}

// writeCheckpoint writes a small SD 1.5 checkpoint as a download leaves
// it: alone in a folder.
func writeCheckpoint(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "Downloads", "v1-5-pruned.safetensors")
	require.NoError(t, os.MkdirAll(filepath.Dir(src), 0o755))
	converttest.WriteSafetensors(t, src, converttest.SD15(converttest.Options{}))
	return src
}

func TestDroppedCheckpointIsConvertedAndOpened(t *testing.T) {
	u, w := newTestUI(t)
	src := writeCheckpoint(t)
	out := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(out, "notes.txt"), []byte("x"), 0o644))
	var started string
	u.pickConvertDir = func(start string, done func(string, error)) {
		started = start
		done(out, nil)
	}

	u.dropped(fyne.NewPos(10, 10), []fyne.URI{storage.NewFileURI(src)})

	require.NotNil(t, u.convertAsk, "the window offers to convert it")
	assert.Contains(t, overlayText(w), "Stable Diffusion 1.x")
	assert.Nil(t, u.pipeline)
	raw, err := os.ReadFile(src)
	require.NoError(t, err)
	sum := sha256.Sum256(raw)
	wantSum := hex.EncodeToString(sum[:])
	cachePath, err := hub.DefaultHashCachePath()
	require.NoError(t, err)
	cached, err := os.ReadFile(cachePath)
	require.NoError(t, err, "the checkpoint is hashed while the offer is shown")
	assert.Contains(t, string(cached), wantSum)
	tapDialogButton(t, w, "Convert…")

	assert.Equal(t, filepath.Dir(src), started, "the folder picker starts beside the checkpoint")
	require.NotNil(t, u.pipeline, "the result opens")
	assert.Equal(t, filepath.Join(out, "v1-5-pruned"), u.pipeline.Dir, "a folder named after it, in the folder chosen (it has files)")
	assert.Equal(t, "StableDiffusionPipeline", u.pipeline.Index.ClassName)
	assert.Empty(t, u.blocker())
	assert.False(t, u.convertJob.Busy())
	kept, err := os.ReadFile(filepath.Join(out, "notes.txt"))
	require.NoError(t, err)
	assert.Equal(t, "x", string(kept))
	readme, err := os.ReadFile(filepath.Join(u.pipeline.Dir, "README.md"))
	require.NoError(t, err)
	assert.Contains(t, string(readme), wantSum, "the card names the checkpoint's sha256")
}

func TestDroppedFilesThatCannotBeConverted(t *testing.T) {
	u, w := newTestUI(t)
	dir := t.TempDir()
	lora := filepath.Join(dir, "style-lora.safetensors")
	converttest.WriteSafetensors(t, lora, []converttest.Tensor{
		converttest.Float("lora_unet_down_blocks_0.lora_up.weight", tensors.F32, []int64{4, 4})})
	u.pickConvertDir = func(string, func(string, error)) { t.Error("nothing to convert: no folder to ask for") }

	u.OpenPath(lora)
	assert.Contains(t, overlayText(w), "Modelpub cannot convert this checkpoint")
	assert.Contains(t, overlayText(w), "style-lora.safetensors")
	w.Canvas().Overlays().Top().Hide()

	notes := filepath.Join(dir, "notes.txt")
	require.NoError(t, os.WriteFile(notes, []byte("x"), 0o644))
	u.OpenPath(notes)
	assert.Contains(t, overlayText(w), "Not a Diffusers folder", "any other file: the usual answer")
	assert.Nil(t, u.convertAsk)
}

func TestConvertDestination(t *testing.T) {
	dir := t.TempDir()
	src := "/downloads/model.ckpt"
	got, err := convertDestination(src, filepath.Join(dir, "new"))
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "new"), got, "a folder to make")

	require.NoError(t, os.Mkdir(filepath.Join(dir, "empty"), 0o755))
	got, err = convertDestination(src, filepath.Join(dir, "empty"))
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "empty"), got, "an empty folder")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "x"), nil, 0o644))
	got, err = convertDestination(src, dir)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "model"), got, "a new folder inside one with files")
	require.NoError(t, os.Mkdir(filepath.Join(dir, "model"), 0o755))
	got, err = convertDestination(src, dir)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "model-2"), got, "never an existing one")
}

func TestLooksLikeCheckpoint(t *testing.T) {
	for name, want := range map[string]bool{
		"a.safetensors": true, "b.CKPT": true, "c.pt": true, "d.pth": true, "e.bin": true,
		"model_index.json": false, "notes.txt": false, "folder": false,
	} {
		assert.Equal(t, want, looksLikeCheckpoint(name), name)
	}
}

// sd2Hub serves converttest.SD2Reference as stabilityai/stable-diffusion-2-1
// from the Hub emulator, gated when gated is set, and returns the window's
// Hub settings for it: no token anywhere (an empty mock keyring, no
// HF_TOKEN).
func sd2Hub(t *testing.T, gated bool) *hubConfig {
	t.Helper()
	const repo = "stabilityai/stable-diffusion-2-1"
	opts := converttest.HubOptions{}
	if gated {
		opts.Gated = []string{repo}
	}
	url := converttest.ServeRepos(t, map[string]fs.FS{repo: converttest.SD2Reference()}, opts)
	keyring.MockInit()
	return &hubConfig{Endpoint: url, Keyring: auth.OSKeyring(), Getenv: func(string) string { return "" }, Home: t.TempDir(),
		CacheDir: t.TempDir(), Version: "test", Retry: hub.RetryPolicy{MaxRetries: 1, BaseWait: time.Millisecond, MaxWait: time.Millisecond}}
}

// An SD 2.x checkpoint is offered saying its configs come from the Hub,
// converted with them and opened; a reference repository it cannot read
// (gated, no token) is named as the problem and nothing is written.
func TestDroppedSD2CheckpointTakesItsConfigsFromTheHub(t *testing.T) {
	for _, gated := range []bool{false, true} {
		t.Run(fmt.Sprintf("gated=%v", gated), func(t *testing.T) {
			u, w := newTestUIWithHub(t, sd2Hub(t, gated))
			src := filepath.Join(t.TempDir(), "v2-1_768-ema-pruned.safetensors")
			converttest.WriteSafetensors(t, src, converttest.SD2(converttest.Options{}))
			out := filepath.Join(t.TempDir(), "sd21")
			u.pickConvertDir = func(_ string, done func(string, error)) { done(out, nil) }

			u.dropped(fyne.NewPos(10, 10), []fyne.URI{storage.NewFileURI(src)})
			require.NotNil(t, u.convertAsk)
			assert.Contains(t, overlayText(w), "Stable Diffusion 2.x")
			assert.Contains(t, overlayText(w), "stabilityai/stable-diffusion-2-1 on the Hugging Face Hub")
			tapDialogButton(t, w, "Convert…")
			assert.False(t, u.convertJob.Busy())
			if gated {
				assert.Nil(t, u.pipeline)
				assert.Contains(t, overlayText(w), "Cannot read the reference configs")
				assert.Contains(t, overlayText(w), "gated")
				assert.NoDirExists(t, out)
				return
			}
			require.NotNil(t, u.pipeline, "the result opens")
			assert.Equal(t, out, u.pipeline.Dir)
			assert.Equal(t, "StableDiffusionPipeline", u.pipeline.Index.ClassName)
			assert.Empty(t, u.blocker())
			assert.FileExists(t, filepath.Join(out, "scheduler", "scheduler_config.json"))
		})
	}
}

// MODELPUB_CONVERT_TO answers the folder picker (scripted runs).
func TestConvertToFromTheEnvironment(t *testing.T) {
	u, _ := newTestUI(t)
	dir := t.TempDir()
	t.Setenv(EnvConvertTo, dir)
	var got string
	u.pickConvertDirDefault(t.TempDir(), func(d string, err error) {
		require.NoError(t, err)
		got = d
	})
	assert.Equal(t, dir, got)
}
