package gui

import (
	"context"
	"errors"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"modelpub/core/publish"
)

// stepState is how far a step of the job got.
type stepState int

const (
	stepPending stepState = iota
	stepRunning
	stepDone
	stepFailed
	stepSkipped // not part of this run (a dry run commits nothing; without an account it reads nothing on the Hub)
)

// stepTitles describe the steps of publish.Steps.
var stepTitles = map[publish.Step]string{
	publish.StepCheck:    "Check the token and the namespace",
	publish.StepStage:    "Save the folder in the chosen form",
	publish.StepValidate: "Validate the saved copy against the folder",
	publish.StepCard:     "Write the model card",
	publish.StepUpload:   "Upload the files",
	publish.StepCommit:   "Commit",
}

// stepTitle is the title of step s in a run: a dry run compares with the
// Hub instead of uploading, a pull request is opened instead of a commit.
func stepTitle(s publish.Step, dry, pr bool) string {
	switch {
	case s == publish.StepUpload && dry:
		return "Compare with the Hub"
	case s == publish.StepCommit && pr:
		return "Open the pull request"
	}
	return stepTitles[s]
}

// skips says whether a run leaves out step s: a dry run commits nothing,
// and without a token (compared false) it reads nothing on the Hub.
func skips(s publish.Step, dry, compared bool) bool {
	switch s {
	case publish.StepCommit:
		return dry
	case publish.StepCheck, publish.StepUpload:
		return dry && !compared
	}
	return false
}

// publishProgress is the state of a running job, as shown.
type publishProgress struct {
	states       []stepState // one per publish.Steps
	current      int         // index of the running (or last) step; -1 before the first
	phase        string      // the upload's sub-phase: scan, preupload, hash, upload, commit
	message      string
	file         string
	bytes, total int64
	deduped      int64 // the upload's bytes not sent: the Hub already held them (Xet)
	rate         float64
	eta          time.Duration
	cancelled    bool
	dry          bool // a dry run
	compared     bool // with the Hub: a publish, or a dry run with a token
}

// phaseTexts describe the upload's sub-phases.
var phaseTexts = map[string]string{
	"scan":      "Listing the files to upload",
	"preupload": "Asking the Hub which files it needs",
	"hash":      "Hashing the files",
	"upload":    "Uploading",
	"commit":    "Committing",
	"estimate":  "Estimating the new bytes from this computer's Xet cache",
	"compare":   "Comparing the files with the Hub's",
	"plan":      "Planning the commit",
}

// publishTracker folds the job's events into a publishProgress. The job
// calls it one event at a time, from its goroutine.
type publishTracker struct{ p publishProgress }

// newPublishTracker tracks a publish, or a dry run (dry) that compares with
// the Hub when it has a token (compared).
func newPublishTracker(dry, compared bool) *publishTracker {
	t := &publishTracker{p: publishProgress{states: make([]stepState, len(publish.Steps)), current: -1,
		dry: dry, compared: compared || !dry}}
	for i, s := range publish.Steps {
		if skips(s, dry, t.p.compared) {
			t.p.states[i] = stepSkipped
		}
	}
	return t
}

// overlaps reports the steps that run at the same time as the others of
// the one pass: stage, validate, upload.
func overlaps(s publish.Step) bool {
	return s == publish.StepStage || s == publish.StepValidate || s == publish.StepUpload
}

// snapshot returns a copy the UI goroutine may keep.
func (t *publishTracker) snapshot() publishProgress {
	p := t.p
	p.states = append([]stepState(nil), t.p.states...)
	return p
}

// event records e and returns the new state.
func (t *publishTracker) event(e publish.Event) publishProgress {
	p := &t.p
	if e.Step == publish.StepDone {
		for i, s := range p.states {
			if s == stepRunning || s == stepPending {
				p.states[i] = stepDone
			}
		}
		p.message, p.file, p.rate, p.eta = e.Message, "", 0, 0
		p.bytes = max(0, p.total-p.deduped)
		return t.snapshot()
	}
	idx := stepIndex(e.Step)
	if idx < 0 {
		return t.snapshot()
	}
	if idx != p.current {
		// Stage, validate and upload run at the same time (each file is
		// uploaded as soon as it is checked): a later one starting does not
		// end an earlier one; their Done does, or the commit starting.
		for i := 0; i < idx; i++ {
			if overlaps(publish.Steps[i]) && e.Step != publish.StepCommit {
				continue
			}
			if p.states[i] == stepRunning || p.states[i] == stepPending {
				p.states[i] = stepDone
			}
		}
		if idx < p.current && overlaps(e.Step) && e.Message == "" {
			// A byte count of an earlier step still running: the bar keeps
			// showing the later one.
			p.states[idx] = stepRunning
			return t.snapshot()
		}
		p.current = idx
		p.phase, p.message, p.file, p.bytes, p.total, p.deduped, p.rate, p.eta = "", "", "", 0, 0, 0, 0, 0
	}
	if e.Phase != "" && e.Phase != p.phase {
		p.phase = e.Phase
		if text, ok := phaseTexts[e.Phase]; ok && e.Message == "" {
			p.message = text
		}
	}
	// A step the run leaves out stays so: a dry run without an account
	// still estimates the new bytes, under the upload, from this
	// computer's Xet cache.
	if p.states[idx] != stepSkipped {
		p.states[idx] = stepRunning
		if e.Done {
			p.states[idx] = stepDone
		}
	}
	if e.Message != "" {
		p.message = e.Message
	}
	if e.File != "" {
		p.file = e.File
	}
	if e.Total > 0 || e.Bytes > 0 {
		p.bytes, p.total, p.deduped, p.rate, p.eta = e.Bytes, e.Total, e.Deduped, e.Rate, e.ETA
	}
	return t.snapshot()
}

// finish records the job's end: the failed step, or a cancellation.
func (t *publishTracker) finish(err error) publishProgress {
	p := &t.p
	if err == nil {
		return t.snapshot()
	}
	failed := p.current
	var se *publish.StepError
	if errors.As(err, &se) {
		if i := stepIndex(se.Step); i >= 0 {
			failed = i
		}
	}
	if failed < 0 {
		failed = 0
		for failed < len(p.states)-1 && p.states[failed] == stepSkipped {
			failed++
		}
	}
	for i := range p.states {
		if p.states[i] == stepRunning {
			p.states[i] = stepPending
		}
	}
	p.states[failed] = stepFailed
	p.current = failed
	p.cancelled = errors.Is(err, context.Canceled)
	p.rate, p.eta = 0, 0
	return t.snapshot()
}

func stepIndex(s publish.Step) int {
	for i, st := range publish.Steps {
		if st == s {
			return i
		}
	}
	return -1
}

// showProgress shows a state of the job.
func (pp *publishPanel) showProgress(s publishProgress) {
	pp.shown = s
	for i, st := range s.states {
		pp.stepIcons[i].SetResource(stepIcon(st, s.cancelled))
		step := publish.Steps[i]
		title := stepTitle(step, s.dry, pp.mode.Selected == modePR)
		switch {
		case st == stepSkipped && step == publish.StepCommit:
			title += " (not in a dry run)"
		case st == stepSkipped:
			title += " (not logged in)"
		case st == stepFailed:
			if s.cancelled {
				title += " (cancelled)"
			} else {
				title += " (failed)"
			}
		}
		pp.stepLabels[i].SetText(title)
		imp := widget.MediumImportance
		if st == stepSkipped || st == stepPending {
			imp = widget.LowImportance
		}
		if pp.stepLabels[i].Importance != imp {
			pp.stepLabels[i].Importance = imp
			pp.stepLabels[i].Refresh()
		}
	}
	if s.total > 0 {
		// Bytes the Hub already held are done as much as bytes sent.
		pp.bar.SetValue(min(1, float64(s.bytes+s.deduped)/float64(s.total)))
	} else {
		pp.bar.SetValue(0)
	}
	// Before any job the bar would read "0%" of nothing: it shows once a
	// job runs, and keeps where the last one got.
	if started := s.current >= 0 || pp.running; started != pp.bar.Visible() {
		if started {
			pp.bar.Show()
		} else {
			pp.bar.Hide()
		}
		if pp.right != nil {
			pp.right.Refresh()
		}
	}
	switch {
	case s.deduped > 0:
		pp.bytesText.SetText(dedupProgress(s))
	case s.total > 0 || s.bytes > 0:
		pp.bytesText.SetText(byteProgress(s.bytes, s.total, s.rate, s.eta))
	default:
		pp.bytesText.SetText(s.message)
	}
	if s.file != "" {
		pp.fileText.SetText(s.file)
	} else if s.total > 0 || s.bytes > 0 {
		pp.fileText.SetText(s.message)
	} else {
		pp.fileText.SetText("")
	}
}

// dedupProgress is the upload's byte line when the Hub already held some
// of its bytes: "sent 12 MB of 4.2 GB — 4.19 GB already on the Hub · 3 MB/s
// · 5 s left".
func dedupProgress(s publishProgress) string {
	t := "sent " + formatSize(s.bytes) + " of " + formatSize(s.total) + " — " + formatSize(s.deduped) + " already on the Hub"
	if s.rate > 0 {
		t += " · " + formatSize(int64(s.rate)) + "/s"
	}
	if s.eta > 0 {
		t += " · " + formatETA(s.eta) + " left"
	}
	return t
}

// stepIcon is the icon of a step's state.
func stepIcon(st stepState, cancelled bool) fyne.Resource {
	switch st {
	case stepRunning:
		return theme.NewPrimaryThemedResource(theme.MediaPlayIcon())
	case stepDone:
		return theme.NewSuccessThemedResource(theme.ConfirmIcon())
	case stepFailed:
		if cancelled {
			return theme.NewWarningThemedResource(theme.CancelIcon())
		}
		return theme.NewErrorThemedResource(theme.ErrorIcon())
	case stepSkipped:
		return theme.NewDisabledResource(theme.ContentRemoveIcon())
	}
	return theme.NewDisabledResource(theme.RadioButtonIcon())
}
