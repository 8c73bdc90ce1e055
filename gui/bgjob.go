package gui

import (
	"context"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// bgJob runs one long piece of work at a time off the UI goroutine, with a
// progress dialog (a heading, a bar, a line of detail) and a Cancel button:
// writing the demo model, converting a checkpoint. Every method runs on the
// UI goroutine.
type bgJob struct {
	e     *env
	title string // the dialog's
	jobRun

	dlg    *dialog.CustomDialog
	bar    *widget.ProgressBar
	detail *widget.Label
}

func newBgJob(e *env, title string) *bgJob { return &bgJob{e: e, title: title} }

// jobState is what a job reports: the fraction done and a line saying
// what it is doing.
type jobState struct {
	frac   float64
	detail string
}

// start shows the dialog with heading and runs work off the UI goroutine.
// work calls report as often as it likes, from any goroutine; the dialog
// shows the latest state at most ten times a second. done runs on the UI
// goroutine with work's error once the dialog is closed (a cancelled job's
// error is, or wraps, context.Canceled). A job already running is left
// alone.
func (j *bgJob) start(heading string, work func(ctx context.Context, report func(jobState)) error, done func(error)) {
	if j.running {
		return
	}
	ctx, stop, gen := j.begin()
	j.showDialog(heading)
	bridge := newProgressBridge(j.e.do, func(st jobState) {
		if gen == j.gen && j.running {
			j.bar.SetValue(st.frac)
			j.detail.SetText(st.detail)
		}
	})
	j.e.spawn(func() {
		err := work(ctx, bridge.set)
		stop()
		bridge.flush()
		j.e.do(func() {
			if gen != j.gen {
				return
			}
			j.ended()
			j.dlg.Hide()
			done(err)
			j.runIdle()
		})
	})
}

func (j *bgJob) showDialog(heading string) {
	j.heading = widget.NewLabel(heading)
	j.heading.Wrapping = fyne.TextWrapWord
	j.bar = widget.NewProgressBar()
	j.detail = widget.NewLabel("")
	j.detail.Truncation = fyne.TextTruncateEllipsis
	j.cancelBtn = widget.NewButtonWithIcon("Cancel", theme.CancelIcon(), j.Cancel)
	content := container.NewVBox(j.heading, j.bar, j.detail, container.NewHBox(layout.NewSpacer(), j.cancelBtn))
	j.dlg = dialog.NewCustomWithoutButtons(j.title, content, j.e.win)
	j.dlg.Resize(fyne.NewSize(min(520, j.e.win.Canvas().Size().Width*0.9), j.dlg.MinSize().Height))
	j.dlg.Show()
}

// jobRun is the run state bgJob and saveJob share, kept on the UI
// goroutine: whether a job runs, how to stop it, its generation (what an
// older run reports late is dropped), what waits for it to end, and its
// dialog's heading and Cancel button.
type jobRun struct {
	running bool
	stop    context.CancelFunc
	gen     int
	idle    []func()

	heading   *widget.Label
	cancelBtn *widget.Button
}

// Busy reports whether the job runs.
func (j *jobRun) Busy() bool { return j.running }

// Cancel stops the running job; its end is told once it has stopped.
func (j *jobRun) Cancel() {
	if j.running && j.stop != nil {
		j.stop()
		j.cancelBtn.Disable()
		j.heading.SetText("Cancelling…")
	}
}

// OnIdle runs f once the job does not run: now, or when it ends.
func (j *jobRun) OnIdle(f func()) {
	if !j.running {
		f()
		return
	}
	j.idle = append(j.idle, f)
}

// begin marks a new run started and returns its context, the function
// that stops it, and its generation.
func (j *jobRun) begin() (context.Context, context.CancelFunc, int) {
	ctx, stop := context.WithCancel(context.Background())
	j.running, j.stop = true, stop
	j.gen++
	return ctx, stop, j.gen
}

// ended marks the run stopped; runIdle then runs what waited for it.
func (j *jobRun) ended() { j.running, j.stop = false, nil }

// runIdle runs, once, what OnIdle queued while the job ran.
func (j *jobRun) runIdle() {
	idle := j.idle
	j.idle = nil
	for _, f := range idle {
		f()
	}
}
