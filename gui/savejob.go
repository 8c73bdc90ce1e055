package gui

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"modelpub/core/card"
	"modelpub/core/drafts"
	"modelpub/core/folder"
	"modelpub/core/pipeline"
)

// saveJob is Save locally… (Ctrl+S): it asks for a destination folder, then
// writes the open folder there with the window's choices (shard size,
// variant), as pipeline.Save does, with a progress dialog and a Cancel
// button; once the save is complete it writes the model card into it as
// README.md, and says where it went and what the variant lost; a cancelled
// save leaves no partial folder behind. Every method runs on the UI
// goroutine.
type saveJob struct {
	e *env
	// pick asks for a folder and calls done on the UI goroutine with it,
	// with "" when the user cancelled. Fyne's folder dialog by default; the
	// window may put the native picker here, tests answer at once.
	pick func(start string, done func(dir string, err error))
	// card is the model card as the Model card tab shows it, as
	// README.md; nil bytes (or a nil card) when there is none yet: the
	// save then writes the card modelpub card writes for the saved folder.
	card func() ([]byte, error)

	jobRun
	lastDir string // the folder chosen last, where the picker starts next

	// The progress dialog of the running save (with jobRun's heading and
	// Cancel button).
	progress  *dialog.CustomDialog
	bar       *widget.ProgressBar
	bytesText *widget.Label
	fileText  *widget.Label
}

func newSaveJob(e *env) *saveJob {
	s := &saveJob{e: e}
	s.pick = s.pickWithFyne
	return s
}

// Run asks where to save p, then saves it there.
func (s *saveJob) Run(p *pipeline.Pipeline) {
	if p == nil || s.running {
		return
	}
	start := s.lastDir
	if start == "" {
		start = filepath.Dir(p.Dir)
	}
	s.pick(start, func(dir string, err error) {
		switch {
		case err != nil:
			s.e.showProblem("Cannot choose a folder", err.Error(), "Try again, or type the folder's path in the dialog.")
		case dir != "":
			s.lastDir = dir
			s.saveTo(p, dir)
		}
	})
}

// saveTo saves p into chosen, or into a new folder inside it when chosen
// is not empty (see pipeline.SaveDestination), off the UI goroutine.
func (s *saveJob) saveTo(p *pipeline.Pipeline, chosen string) {
	if s.running {
		return
	}
	opts := pipeline.SaveOptions{}
	if s.e.choices != nil {
		opts.MaxShardSize, opts.Variant = s.e.choices.MaxShardSize, s.e.choices.Variant
	}
	var readme []byte
	var readmeErr error
	if s.card != nil {
		readme, readmeErr = s.card()
	}
	ctx, stop, gen := s.begin()
	s.showProgressDialog(p, chosen)

	type state struct {
		p    pipeline.Progress
		rate float64
		eta  time.Duration
	}
	bridge := newProgressBridge(s.e.do, func(st state) {
		if gen == s.gen && s.running {
			s.bar.SetValue(float64(st.p.Done) / float64(max(st.p.Total, 1)))
			s.bytesText.SetText(byteProgress(st.p.Done, st.p.Total, st.rate, st.eta))
			s.fileText.SetText(st.p.File)
		}
	})
	began := time.Now()
	opts.Progress = func(pr pipeline.Progress) {
		st := state{p: pr}
		if el := time.Since(began).Seconds(); el > 0.2 && pr.Done > 0 {
			st.rate = float64(pr.Done) / el
			if pr.Total > pr.Done {
				st.eta = time.Duration(float64(pr.Total-pr.Done) / st.rate * float64(time.Second))
			}
		}
		bridge.set(st)
	}
	s.e.spawn(func() {
		dst, err := pipeline.SaveDestination(p, chosen, opts.Variant)
		var res *pipeline.SaveResult
		var cardNote string
		if err == nil {
			s.e.do(func() {
				if gen == s.gen {
					s.heading.SetText("Saving to " + shortPath(dst) + "…")
				}
			})
			res, err = pipeline.Save(ctx, p, dst, opts)
		}
		if err == nil {
			// The save is complete and a Cancel no longer undoes it: the
			// card goes in whatever ctx says, or the folder would keep
			// the source's README.md.
			cardNote = writeReadme(context.WithoutCancel(ctx), res.Dir, readme, readmeErr)
		}
		stop()
		bridge.flush()
		s.e.do(func() {
			if gen == s.gen {
				s.finish(res, err, opts.Variant, cardNote)
			}
		})
	})
}

func (s *saveJob) showProgressDialog(p *pipeline.Pipeline, chosen string) {
	s.heading = widget.NewLabel("Saving " + filepath.Base(p.Dir) + " to " + shortPath(chosen) + "…")
	s.heading.Wrapping = fyne.TextWrapBreak
	s.bar = widget.NewProgressBar()
	s.bytesText = widget.NewLabel("")
	s.fileText = widget.NewLabel("")
	s.fileText.Truncation = fyne.TextTruncateEllipsis
	s.cancelBtn = widget.NewButtonWithIcon("Cancel", theme.CancelIcon(), s.Cancel)
	content := container.NewVBox(s.heading, s.bar, s.bytesText, s.fileText,
		container.NewHBox(layout.NewSpacer(), s.cancelBtn))
	s.progress = dialog.NewCustomWithoutButtons("Save locally", content, s.e.win)
	s.progress.Resize(fyne.NewSize(min(520, s.e.win.Canvas().Size().Width*0.9), s.progress.MinSize().Height))
	s.progress.Show()
}

// writeReadme writes the model card into the saved folder dir as
// README.md, atomically: data, the card as shown, or when data is nil (and
// dataErr too) the card modelpub card writes for dir. It returns what the
// summary says about it.
func writeReadme(ctx context.Context, dir string, data []byte, dataErr error) string {
	what := "the model card as the Model card tab shows it"
	if data == nil && dataErr == nil {
		what = "the generated model card"
		saved, err := pipeline.Open(ctx, dir)
		if err != nil {
			dataErr = err
		} else {
			l := loadCard(saved, card.GenerateOptions{})
			data, dataErr = l.card.Bytes()
		}
	}
	if dataErr == nil {
		dataErr = drafts.WriteFile(filepath.Join(dir, card.FileName), data, 0o644)
	}
	if dataErr != nil {
		return fmt.Sprintf("The model card could not be written as README.md (%v): the folder has the "+
			"source's README.md, if it had one.", dataErr)
	}
	note := "README.md is " + what + "."
	c, err := card.Parse(data)
	if err != nil {
		return note
	}
	if problems := c.Validate(); len(problems) > 0 {
		note += fmt.Sprintf(" The Hub would refuse its metadata as it is (%s): fix it in the Model card tab "+
			"before publishing.", problemText(problems[0]))
	}
	return note
}

// finish closes the progress dialog and says how the save went.
func (s *saveJob) finish(res *pipeline.SaveResult, err error, variant, cardNote string) {
	s.ended()
	s.progress.Hide()
	defer s.runIdle()
	switch {
	case errors.Is(err, context.Canceled):
		return // the user asked; nothing was left behind
	case err != nil:
		title, next := saveErrorText(err)
		s.e.showProblem(title, folder.Reason(err), next)
		return
	}
	summary := saveSummary(res, variant)
	if cardNote != "" {
		summary += "\n\n" + cardNote
	}
	s.e.showMessage("Saved", theme.ConfirmIcon(), summary)
}

// saveSummary says where a save went and what its variant lost.
func saveSummary(res *pipeline.SaveResult, variant string) string {
	text := fmt.Sprintf("Saved to %s: %s.", res.Dir, formatSize(res.Bytes))
	if variant == "" {
		return text
	}
	if len(res.Lossy) == 0 {
		return text + fmt.Sprintf("\n\nEvery value converted to %s without overflow or underflow.", variant)
	}
	var over, under int64
	for _, l := range res.Lossy {
		over += l.Overflow
		under += l.Underflow
	}
	return text + fmt.Sprintf("\n\nConverting to %s lost values in %s: %s became ±Inf and %s became 0. "+
		"The Variant tab's scan lists the tensors, worst first; the full-precision weights are saved beside "+
		"the variant, unchanged.", variant, plural(len(res.Lossy), "tensor", "tensors"),
		valuesText(over), valuesText(under))
}

// valuesText is "1 value", "34 values".
func valuesText(n int64) string {
	if n == 1 {
		return "1 value"
	}
	return strconv.FormatInt(n, 10) + " values"
}

// saveErrorText names a failed save and says what to do next.
func saveErrorText(err error) (title, next string) {
	switch {
	case errors.Is(err, pipeline.ErrInsideSource):
		return "Choose a folder outside the one being saved", "The folder being saved is only ever read. " +
			"Choose a folder beside it, or anywhere else, and save again."
	case errors.Is(err, pipeline.ErrDestinationNotEmpty):
		return "The destination is not empty", "Choose an empty folder, or a new one, and save again."
	case errors.Is(err, pipeline.ErrUnreadableWeights):
		return "A weights file cannot be read", "Select the component in the tree to see which file is damaged " +
			"or incomplete, download it again, and save again."
	case errors.Is(err, pipeline.ErrUnsupportedVariant):
		return "That variant cannot be written", "Choose fp16 or bf16 (or none) in the Variant tab, and save again."
	case errors.Is(err, pipeline.ErrNoSpace), errors.Is(err, syscall.ENOSPC):
		return "The disk is full", "Free some space, or choose a folder on another disk, and save again. " +
			"Nothing was left behind."
	case errors.Is(err, fs.ErrPermission):
		return "Permission denied", "Choose a folder you may write to, and save again."
	}
	return "Saving failed", "Fix the cause above and save again. A failed save leaves no partial folder behind."
}

// pickWithFyne asks for a folder with Fyne's folder dialog, drawn inside
// the window.
func (s *saveJob) pickWithFyne(start string, done func(string, error)) {
	showFyneFolderDialog(s.e.win, titleSave, start, "Save here", done)
}

// showProblem shows a modal dialog: the title names the problem, cause is
// what went wrong (the error), next what to do about it.
func (e *env) showProblem(title, cause, next string) {
	e.showMessage(title, theme.ErrorIcon(), cause+"\n\n"+next)
}

// showMessage shows a modal dialog with an icon beside a wrapped text.
func (e *env) showMessage(title string, icon fyne.Resource, message string) {
	text := widget.NewLabel(message)
	text.Wrapping = fyne.TextWrapWord
	ic := widget.NewIcon(icon)
	d := dialog.NewCustom(title, "OK", container.NewBorder(nil, nil, container.NewVBox(ic), nil, text), e.win)
	width := min(560, e.win.Canvas().Size().Width*0.9)
	text.Resize(fyne.NewSize(width-ic.MinSize().Width-4*theme.Padding(), text.MinSize().Height))
	d.Resize(fyne.NewSize(width, d.MinSize().Height))
	d.Show()
}
