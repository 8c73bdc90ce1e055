package gui

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
	native "github.com/sqweek/dialog"

	"modelpub/core/folder"
	"modelpub/core/pipeline"
)

// openState tracks the folder being opened.
type openState struct {
	seq    int                // counts OpenPath calls; a result is used only if it is the latest's
	cancel context.CancelFunc // stops the latest open
	path   string             // what the latest OpenPath was given, "" when idle
}

func (s openState) busy() bool { return s.path != "" }

// OpenPath opens the pipeline at path, or the pipeline a file or folder
// inside it belongs to. Drag and drop, File ▸ Open, the recent folders and
// the tests all come through here. The folder is read off the UI goroutine;
// opening another folder meanwhile cancels this one. The result shows when
// done: the pipeline in the tree and panels, or a dialog saying what is
// wrong.
func (u *UI) OpenPath(path string) {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if u.opening.cancel != nil {
		u.opening.cancel()
	}
	ctx, cancel := context.WithCancel(context.Background())
	u.opening.seq++
	seq := u.opening.seq
	u.opening.cancel, u.opening.path = cancel, path
	u.refresh()
	open, trusted := u.openPipeline, maps.Clone(u.trusted)
	u.e.spawn(func() {
		p, err := openRecovered(ctx, path, func(ctx context.Context, dir string) (*pipeline.Pipeline, error) {
			return open(ctx, dir, pipeline.OpenOptions{AllowOutsideLinks: trusted[dir]})
		})
		u.e.do(func() { u.opened(seq, path, p, err) })
	})
}

// openRecovered finds the pipeline path belongs to and opens it; a panic
// (a bug) becomes an error, so the window shows a dialog instead of dying.
func openRecovered(ctx context.Context, path string,
	open func(context.Context, string) (*pipeline.Pipeline, error)) (p *pipeline.Pipeline, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("gui: reading the folder failed unexpectedly (please report it): %v", r)
		}
	}()
	dir, err := pipeline.FindRoot(path)
	if err != nil {
		return nil, err
	}
	return open(ctx, dir)
}

// opened shows the result of OpenPath number seq.
func (u *UI) opened(seq int, path string, p *pipeline.Pipeline, err error) {
	if seq != u.opening.seq {
		return // a later OpenPath took over
	}
	u.opening.cancel()
	u.opening = openState{seq: seq}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			u.forgetFolder(path)
		}
		u.refresh()
		var pe *pipeline.PolicyError
		if errors.As(err, &pe) && pe.OnlyLinks() {
			u.askOutsideLinks(pe)
			return
		}
		if errors.Is(err, pipeline.ErrNotPipeline) && looksLikeCheckpoint(path) {
			u.offerConvert(path) // a single-file checkpoint outside any Diffusers folder
			return
		}
		if !errors.Is(err, context.Canceled) {
			title, msg := describeOpenError(path, err)
			u.showError(title, msg)
		}
		return
	}
	u.rememberFolder(p.Dir)
	u.setPipeline(p)
	if u.blocker() != "" {
		u.selectTab("Overview") // the problems first
	}
	if u.revealOnOpen != "" {
		u.tree.reveal(u.revealOnOpen)
		u.revealOnOpen = ""
	}
}

// describeOpenError says what is wrong with a folder that did not open, and
// what to do about it.
func describeOpenError(path string, err error) (title, message string) {
	name := shortPath(path)
	switch {
	case errors.Is(err, pipeline.ErrNotPipeline):
		return "Not a Diffusers folder", fmt.Sprintf("%s is not a Diffusers folder: it has no model_index.json, "+
			"and no config.json with weights.\n\nChoose the folder that holds model_index.json (the folder "+
			"save_pretrained wrote, or the one a Hub download made), or a single model's folder with its "+
			"config.json and weights.", name)
	case errors.Is(err, pipeline.ErrModelIndex):
		return "model_index.json cannot be used", fmt.Sprintf("%v\n\nFix model_index.json: it must be a JSON "+
			"object with \"_class_name\" and a [library, class] pair per component. Or download the folder again.", err)
	case errors.Is(err, pipeline.ErrMissingComponent):
		return "A component is missing", fmt.Sprintf("%v\n\nThe folder is incomplete: download the missing "+
			"component folder again, or remove its entry from model_index.json if the pipeline does without it.", err)
	case errors.Is(err, fs.ErrNotExist):
		return "Folder not found", fmt.Sprintf("%s does not exist: it may have been moved, renamed or deleted.\n\n"+
			"Choose it again with File ▸ Open… (Ctrl+O).", name)
	case errors.Is(err, folder.ErrNotRegular), errors.Is(err, folder.ErrBrokenLink), errors.Is(err, folder.ErrTooLarge):
		return "The folder holds files Modelpub will not read", fmt.Sprintf("%v\n\nA model folder holds regular "+
			"files only: remove or replace these entries (FIFOs, devices, broken links, oversized JSON), then open "+
			"the folder again.", err)
	case errors.Is(err, fs.ErrPermission):
		return "Permission denied", fmt.Sprintf("Modelpub may not read %s:\n%v\n\nCheck the folder's "+
			"permissions, or copy it somewhere you can read, and open it again.", name, err)
	}
	return "Cannot open the folder", fmt.Sprintf("Modelpub could not open %s:\n%v\n\nCheck that the folder is a "+
		"complete Diffusers download and try again.", name, err)
}

// askOutsideLinks lists the links of a folder that lead outside it and
// offers to open it anyway, following them (for this session).
func (u *UI) askOutsideLinks(pe *pipeline.PolicyError) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s has symbolic links that lead outside it. A downloaded model folder is untrusted: "+
		"such a link can make Modelpub read, save and publish a file that is not part of the model "+
		"(a key, a password file).\n", shortPath(pe.Dir))
	for i, p := range pe.Problems {
		if i == 8 {
			fmt.Fprintf(&b, "\n… and %d more", len(pe.Problems)-8)
			break
		}
		rel, err := filepath.Rel(pe.Dir, p.Path)
		if err != nil {
			rel = p.Path
		}
		fmt.Fprintf(&b, "\n%s → %s", folder.Printable(filepath.ToSlash(rel)), folder.Printable(p.Target))
	}
	b.WriteString("\n\nOpen it anyway only if you trust every target; otherwise copy the files into the folder.")
	text := widget.NewLabel(b.String())
	text.Wrapping = fyne.TextWrapWord
	d := dialog.NewCustomConfirm("Links outside the folder", "Open anyway", "Cancel", text, func(ok bool) {
		if ok {
			u.trusted[pe.Dir] = true
			u.OpenPath(pe.Dir)
		}
	}, u.e.win)
	width := min(620, u.e.win.Canvas().Size().Width*0.9)
	d.Resize(fyne.NewSize(width, d.MinSize().Height))
	d.Show()
}

// showError shows a modal dialog; message says what is wrong and what to do.
func (u *UI) showError(title, message string) {
	text := widget.NewLabel(message)
	text.Wrapping = fyne.TextWrapWord
	icon := widget.NewIcon(theme.ErrorIcon())
	d := dialog.NewCustom(title, "OK", container.NewBorder(nil, nil, container.NewVBox(icon), nil, text), u.e.win)
	width := min(560, u.e.win.Canvas().Size().Width*0.9)
	text.Resize(fyne.NewSize(width-icon.MinSize().Width-4*theme.Padding(), text.MinSize().Height))
	d.Resize(fyne.NewSize(width, d.MinSize().Height))
	d.Show()
}

// Recent folders are kept in the preferences, most recent first.
const (
	prefRecentFolders = "recentFolders"
	maxRecentFolders  = 8
)

// recentFolders lists the recent folders that still exist.
func (u *UI) recentFolders() []string {
	var dirs []string
	for _, d := range u.e.prefs.StringList(prefRecentFolders) {
		if st, err := os.Stat(d); err == nil && st.IsDir() && !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return dirs[:min(len(dirs), maxRecentFolders)]
}

// rememberFolder puts dir first in the recent folders.
func (u *UI) rememberFolder(dir string) {
	dirs := append([]string{dir}, slices.DeleteFunc(u.recentFolders(), func(d string) bool { return d == dir })...)
	u.e.prefs.SetStringList(prefRecentFolders, dirs[:min(len(dirs), maxRecentFolders)])
}

// forgetFolder removes dir from the recent folders.
func (u *UI) forgetFolder(dir string) {
	dirs := u.e.prefs.StringList(prefRecentFolders)
	if slices.Contains(dirs, dir) {
		u.e.prefs.SetStringList(prefRecentFolders, slices.DeleteFunc(dirs, func(d string) bool { return d == dir }))
	}
}

// dropped opens the first local file or folder dropped on the window.
func (u *UI) dropped(_ fyne.Position, uris []fyne.URI) {
	for _, uri := range uris {
		if uri.Scheme() == "file" {
			u.OpenPath(uri.Path())
			return
		}
	}
}

// errPickCancelled is returned by a folder picker the user closed.
var errPickCancelled = errors.New("gui: folder choice cancelled")

// errNoNativePicker reports a native folder picker that cannot work here.
var errNoNativePicker = errors.New("gui: the native folder picker is not available")

// Titles of the folder pickers.
const (
	titleOpen    = "Open a Diffusers folder"
	titleSave    = "Save to folder"
	titleConvert = "Convert to folder"
)

// nativeBrowse shows the OS folder picker (GTK on Linux) titled title. It
// blocks, so it runs on the UI goroutine like any modal dialog; it panics
// when GTK could not start (no display), which is returned as
// errNoNativePicker.
func nativeBrowse(title, startDir string) (dir string, err error) {
	defer func() {
		if r := recover(); r != nil {
			dir, err = "", fmt.Errorf("%w: %v", errNoNativePicker, r)
		}
	}()
	b := native.Directory().Title(title)
	if startDir != "" {
		b = b.SetStartDir(startDir)
	}
	dir, err = b.Browse()
	if errors.Is(err, native.ErrCancelled) {
		return "", errPickCancelled
	}
	return dir, err
}

// chooseFolder asks for a folder and opens it: with the native picker, or
// Fyne's own folder dialog when the native one cannot work.
func (u *UI) chooseFolder() {
	start := u.startDir()
	dir, err := u.callBrowse(titleOpen, start)
	switch {
	case err == nil && dir != "":
		u.OpenPath(dir)
	case err == nil || errors.Is(err, errPickCancelled):
	default:
		fyne.LogError("native folder picker failed, using Fyne's", err)
		u.showFolderDialog(start)
	}
}

// callBrowse calls u.browse, turning a panic into errNoNativePicker.
func (u *UI) callBrowse(title, start string) (dir string, err error) {
	if u.browse == nil {
		return "", errNoNativePicker
	}
	defer func() {
		if r := recover(); r != nil {
			dir, err = "", fmt.Errorf("%w: %v", errNoNativePicker, r)
		}
	}()
	return u.browse(title, start)
}

// showFolderDialog is Fyne's folder picker, drawn inside the window.
func (u *UI) showFolderDialog(start string) {
	showFyneFolderDialog(u.e.win, titleOpen, start, "", func(path string, err error) {
		switch {
		case err != nil:
			u.showError("Cannot choose a folder", fmt.Sprintf("%v\n\nDrop the folder on the window instead.", err))
		case path != "":
			u.OpenPath(path)
		}
	})
}

// startDir is where the folder pickers start: beside the open folder, or the
// last one opened, or the home folder.
func (u *UI) startDir() string {
	if u.pipeline != nil {
		return filepath.Dir(u.pipeline.Dir)
	}
	if recent := u.recentFolders(); len(recent) > 0 {
		return filepath.Dir(recent[0])
	}
	home, _ := os.UserHomeDir()
	return home
}
