package gui

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"modelpub/core/auth"
	"modelpub/core/convert"
	"modelpub/core/demo"
	"modelpub/core/folder"
	"modelpub/core/hub"
)

// This file holds the two ways in for someone without a Diffusers folder:
// the welcome view's "Try with a demo model", and a single-file checkpoint
// dropped on the window, offered for conversion.

// demoFolderName is the demo's folder in the user's data folder.
const demoFolderName = "sd15-demo"

// userDataDir is where the app keeps what the user may open again:
// $XDG_DATA_HOME/modelpub, else ~/.local/share/modelpub on Linux and the
// BSDs, else the user's config folder (Application Support on macOS,
// AppData on Windows).
func userDataDir() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "modelpub"), nil
	}
	if runtime.GOOS != "darwin" && runtime.GOOS != "windows" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		return filepath.Join(home, ".local", "share", "modelpub"), nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "modelpub"), nil
}

// defaultDemoDir is where "Try with a demo model" writes the demo.
func defaultDemoDir() (string, error) {
	d, err := userDataDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, demoFolderName), nil
}

// tryDemo opens the demo model, writing it first (off the UI goroutine,
// with progress and Cancel) unless an earlier run did: it appears only
// once complete.
func (u *UI) tryDemo() {
	if u.demoJob.Busy() {
		return
	}
	dir, err := u.demoDir()
	if err != nil {
		u.e.showProblem("No folder for the demo model", folder.Reason(err), "Set XDG_DATA_HOME to a folder you can "+
			"write, or write the demo from a terminal: modelpub demo ~/sd15-demo")
		return
	}
	write := u.writeDemo
	var res *demo.Result
	u.demoJob.start("Writing a small Stable Diffusion 1.5–shaped model to "+shortPath(dir)+"…",
		func(ctx context.Context, report func(jobState)) error {
			if st, err := os.Stat(dir); err == nil && st.IsDir() {
				res = &demo.Result{Dir: dir} // written before: open it
				return nil
			}
			var err error
			res, err = write(ctx, dir, func(done, total int64) {
				report(jobState{frac: float64(done) / float64(max(total, 1)), detail: byteProgress(done, total, 0, 0)})
			})
			return err
		},
		func(err error) {
			switch {
			case errors.Is(err, context.Canceled):
			case err != nil:
				u.e.showProblem("The demo model could not be written", folder.Reason(err), "Check that "+
					shortPath(filepath.Dir(dir))+" can be written and has about 220 MB free, then try again.")
			default:
				u.OpenPath(res.Dir)
			}
		})
}

// checkpointExts are the file name endings of single-file checkpoints.
var checkpointExts = []string{".safetensors", ".ckpt", ".pt", ".pth", ".bin"}

// looksLikeCheckpoint reports a path whose name ends as a checkpoint's.
func looksLikeCheckpoint(path string) bool {
	ext := strings.ToLower(filepath.Ext(path))
	for _, e := range checkpointExts {
		if ext == e {
			return true
		}
	}
	return false
}

// offerConvert is told of a file that opened no Diffusers folder but is
// named like a checkpoint: it reads what kind of model it holds (off the
// UI goroutine: a pickle takes a moment) and offers to convert it.
func (u *UI) offerConvert(path string) {
	u.cancelPrehash()
	u.e.spawn(func() {
		det, err := detectCheckpoint(path)
		u.e.do(func() {
			if err == nil {
				u.prehash(path)
			}
			u.askConvert(path, det, err)
		})
	})
}

// prehash starts the checkpoint's sha256 (which the converted folder's card
// records) while the user reads the offer and picks a folder: the
// conversion, through the same hash cache, waits for it instead of reading
// the checkpoint once more, so it takes the time of a copy. Declining the
// offer, or another drop, cancels it.
func (u *UI) prehash(path string) {
	hc := u.hashCache()
	if hc == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	u.stopPrehash = cancel
	u.e.spawn(func() {
		defer cancel()
		if _, err := hub.HashFile(ctx, hc, path, true, nil); err == nil {
			_ = hc.Save()
		}
	})
}

// cancelPrehash stops the hash prehash started, if it still runs.
func (u *UI) cancelPrehash() {
	if u.stopPrehash != nil {
		u.stopPrehash()
		u.stopPrehash = nil
	}
}

// hashCache is the hash cache the publish uses, opened on first use; nil
// when the user cache folder cannot be found (then nothing is cached).
func (u *UI) hashCache() *hub.HashCache {
	if u.hashes == nil {
		u.hashes, _ = hub.OpenHashCache("")
	}
	return u.hashes
}

// detectCheckpoint names the model type of the checkpoint at path.
func detectCheckpoint(path string) (*convert.Detection, error) {
	c, err := convert.OpenCheckpoint(path)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return convert.Detect(c)
}

// askConvert says what the checkpoint is and asks whether to convert it,
// or says why it cannot be.
func (u *UI) askConvert(path string, det *convert.Detection, err error) {
	name := filepath.Base(path)
	if err != nil {
		title, next := convertErrorText(err)
		u.e.showProblem(title, fmt.Sprintf("%s is not a Diffusers folder, nor a checkpoint Modelpub can convert:\n%v", name, err), next)
		return
	}
	text := widget.NewLabel(fmt.Sprintf("%s is a single-file checkpoint of %s, not a Diffusers folder.\n\n"+
		"Modelpub can convert it into one, as diffusers' from_single_file and save_pretrained would, then open "+
		"it. The checkpoint is only read, and every tensor of the result is checked against it before the "+
		"folder appears.%s", name, det.Name, configNote(det.Type)))
	text.Wrapping = fyne.TextWrapWord
	d := dialog.NewCustomConfirm("Convert this checkpoint?", "Convert…", "Cancel", text, func(ok bool) {
		if ok {
			u.chooseConvertDir(path)
		} else {
			u.cancelPrehash()
		}
	}, u.e.win)
	width := min(560, u.e.win.Canvas().Size().Width*0.9)
	text.Resize(fyne.NewSize(width, text.MinSize().Height))
	d.Resize(fyne.NewSize(width, d.MinSize().Height))
	u.convertAsk = d
	d.Show()
}

// configNote says where a type without embedded configs takes them from.
func configNote(t convert.Type) string {
	if !convert.NeedsConfigs(t) {
		return ""
	}
	return "\n\nIts configs and tokenizer files are read from " + convert.DefaultConfigRepo(t) +
		" on the Hugging Face Hub (never the weights), as diffusers does."
}

// chooseConvertDir asks where the converted folder goes, then converts.
func (u *UI) chooseConvertDir(src string) {
	u.pickConvertDir(filepath.Dir(src), func(dir string, err error) {
		switch {
		case err != nil:
			u.e.showProblem("Cannot choose a folder", err.Error(), "Try again, or convert from a terminal: "+
				"modelpub convert CHECKPOINT OUT")
		case dir != "":
			u.runConvert(src, dir)
		default:
			u.cancelPrehash()
		}
	})
}

// EnvConvertTo, for scripted runs such as make screenshots, is the folder
// a checkpoint is converted into without showing the folder picker.
const EnvConvertTo = "MODELPUB_CONVERT_TO"

// pickConvertDirDefault asks with the native folder picker, or Fyne's
// (EnvConvertTo, when set, answers instead).
func (u *UI) pickConvertDirDefault(start string, done func(string, error)) {
	if dir := os.Getenv(EnvConvertTo); dir != "" {
		done(dir, nil)
		return
	}
	dir, err := u.callBrowse(titleConvert, start)
	switch {
	case errors.Is(err, errPickCancelled):
		done("", nil)
	case err != nil:
		showFyneFolderDialog(u.e.win, titleConvert, start, "Convert here", done)
	default:
		done(dir, nil)
	}
}

// runConvert converts the checkpoint src into chosen, or into a new folder
// named after the checkpoint inside it when chosen has files, with
// progress and Cancel, then opens the result.
func (u *UI) runConvert(src, chosen string) {
	var res *convert.Result
	cfg := hubConfig{}
	if u.e.hub != nil {
		cfg = *u.e.hub
	}
	reader := &configHub{cfg: cfg}
	hc := u.hashCache()
	u.convertJob.start("Converting "+filepath.Base(src)+" into a Diffusers folder in "+shortPath(chosen)+"…",
		func(ctx context.Context, report func(jobState)) error {
			dst, err := convertDestination(src, chosen)
			if err != nil {
				return err
			}
			// The hash cache gives the checkpoint's sha256 without reading
			// it when it was converted or published before, or waits for
			// the hash prehash started.
			if hc != nil {
				defer hc.Save()
			}
			res, err = convert.Convert(ctx, src, dst, convert.Options{Hub: reader, HashCache: hc, Progress: func(p convert.Progress) {
				step := "Writing"
				switch p.Step {
				case "verify":
					step = "Checking against the checkpoint"
				case "hash":
					step = "Hashing the checkpoint for its card"
				}
				detail := step + " · " + byteProgress(p.Done, p.Total, 0, 0)
				if p.File != "" {
					detail += " · " + p.File
				}
				report(jobState{frac: float64(p.Done) / float64(max(p.Total, 1)), detail: detail})
			}})
			return err
		},
		func(err error) {
			u.cancelPrehash()
			switch {
			case errors.Is(err, context.Canceled): // nothing was left behind
			case err != nil:
				title, next := convertErrorText(err)
				u.e.showProblem(title, folder.Reason(err), next)
			default:
				u.OpenPath(res.Dir)
			}
		})
}

// convertDestination is the folder a conversion of src into chosen
// writes: chosen itself when it is missing or empty, else a new folder
// inside it named after the checkpoint ("model", then "model-2", …).
func convertDestination(src, chosen string) (string, error) {
	entries, err := os.ReadDir(chosen)
	switch {
	case errors.Is(err, fs.ErrNotExist) || err == nil && len(entries) == 0:
		return chosen, nil
	case err != nil:
		return "", err
	}
	stem := strings.TrimSuffix(filepath.Base(src), filepath.Ext(src))
	for i := 1; ; i++ {
		name := stem
		if i > 1 {
			name += "-" + strconv.Itoa(i)
		}
		dst := filepath.Join(chosen, name)
		if _, err := os.Lstat(dst); errors.Is(err, fs.ErrNotExist) {
			return dst, nil
		}
	}
}

// convertErrorText names a conversion that failed and says what to do.
func convertErrorText(err error) (title, next string) {
	switch {
	case errors.Is(err, convert.ErrNotCheckpoint):
		return "Not a checkpoint", "Drop a Diffusers folder (the one holding model_index.json), or a single-file " +
			"checkpoint (.safetensors or .ckpt) of Stable Diffusion 1.x or 2.x, SDXL, SD 3 or FLUX.1."
	case errors.Is(err, convert.ErrUnknownArchitecture), errors.Is(err, convert.ErrUnsupportedType):
		return "Modelpub cannot convert this checkpoint", "Modelpub converts Stable Diffusion 1.x and 2.x (and " +
			"their inpainting models), SDXL base, inpainting and refiner, and the SD 3, SD 3.5 and FLUX.1 (dev, schnell, Fill, Depth) " +
			"transformers. A " +
			"LoRA, an embedding or a VAE alone is not a model to convert."
	case errors.Is(err, convert.ErrConfigRepo):
		return "Cannot read the reference configs", "This model's configs come from the Hugging Face Hub. Check " +
			"the network; for a gated repository, accept its terms on its page and log in with that account in " +
			"the Publish panel. Nothing was written."
	case errors.Is(err, convert.ErrNoSpace):
		return "The disk is full", "Free some space, or choose a folder on another disk, and convert again. " +
			"Nothing was left behind."
	case errors.Is(err, convert.ErrNotVerified):
		return "The conversion did not check out", "Nothing was kept. The checkpoint may be damaged: download " +
			"it again. If it is whole, please report this with modelpub convert's output."
	case errors.Is(err, fs.ErrPermission):
		return "Permission denied", "Choose a folder you may write to, and convert again."
	}
	return "Converting failed", "Fix the cause above and convert again; a failed conversion leaves nothing behind."
}

// configHub is the Hub a conversion reads a reference repository from
// (SD 2.x's configs): the Publish panel's Hub, with the token found when
// first needed, inside the conversion's job (off the UI goroutine); with
// no token the repository is read anonymously.
type configHub struct {
	cfg  hubConfig
	once sync.Once
	c    *hub.Client
	err  error
}

func (h *configHub) client() (*hub.Client, error) {
	h.once.Do(func() {
		tok, _ := auth.Resolve(h.cfg.authOptions())
		h.c, h.err = hub.NewClient(hub.Options{Endpoint: h.cfg.endpoint(), Token: tok.Value(), Version: h.cfg.Version,
			HTTPClient: h.cfg.HTTPClient, Retry: h.cfg.Retry})
	})
	return h.c, h.err
}

func (h *configHub) ListTree(ctx context.Context, id hub.RepoID, rev, path string, recursive bool) ([]hub.TreeEntry, error) {
	c, err := h.client()
	if err != nil {
		return nil, err
	}
	return c.ListTree(ctx, id, rev, path, recursive)
}

func (h *configHub) ReadFile(ctx context.Context, id hub.RepoID, rev, path string) ([]byte, error) {
	c, err := h.client()
	if err != nil {
		return nil, err
	}
	return c.ReadFile(ctx, id, rev, path)
}

var _ convert.HubReader = (*configHub)(nil)
