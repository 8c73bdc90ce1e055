package gui

import (
	"context"
	"errors"
	"io/fs"
	"syscall"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"modelpub/core/advice"
	"modelpub/core/auth"
	"modelpub/core/hub"
	"modelpub/core/pipeline"
	"modelpub/core/publish"
)

// publishErrorText names a failure of the job and says what to do next:
// core/advice's sentence for the token and the account (the one place for
// it, shared with the command line), the app's own words for the rest.
func publishErrorText(err error, endpoint string) (title, next string) {
	title, next = publishErrorTitle(err)
	if a := advice.For(err, endpoint); a != "" {
		next = a
	}
	return title, next
}

// fixAndRetry is the advice on a failure the app has no words for: the
// error's own hint (kept in the cause) says more.
const fixAndRetry = "Fix the cause above and publish again: steps already done are reused."

// publishErrorCause is what went wrong, to show above publishErrorText's
// advice: without the Hub's request id, and without the Hub client's hint
// where the app says what to do in its own words.
func publishErrorCause(err error, endpoint string) string {
	if _, next := publishErrorTitle(err); next != "" && next != fixAndRetry && advice.For(err, endpoint) == "" {
		return advice.Bare(err)
	}
	return advice.Message(err, endpoint)
}

// publishErrorTitle names a failure and, where core/advice has nothing to
// say, says what to do in the app.
func publishErrorTitle(err error) (title, next string) {
	switch {
	case errors.Is(err, publish.ErrReadOnlyToken):
		return "The token cannot write", ""
	case errors.Is(err, publish.ErrNamespace):
		return "The token cannot write to this namespace", ""
	case errors.Is(err, publish.ErrNoToken), errors.Is(err, auth.ErrNoToken):
		return "Not logged in", "Use Log in… with a token that has the write role."
	case errors.Is(err, hub.ErrUnauthorized):
		return "The Hub refused the token", ""
	case errors.Is(err, hub.ErrForbidden):
		return "The Hub refused the write", "Check on the repository's page on the Hub whether you may use it."
	case errors.Is(err, publish.ErrCard):
		return "The model card has invalid metadata", "Fix the metadata in the Model card tab (problems show " +
			"in red under the form), then publish again."
	case errors.Is(err, publish.ErrInvalid):
		return "The saved copy did not match the folder", "Nothing was uploaded. Open the folder again to check " +
			"it for warnings, try Save locally… to inspect the output, and report the problem if it stays."
	case errors.Is(err, publish.ErrBusy):
		return "The folder is being published already", "Another Modelpub (or the command line) is publishing " +
			"this folder. Wait for it to finish, then publish again."
	case errors.Is(err, hub.ErrInvalidRepoID):
		return "The repository name is not valid", "Use letters, digits, '-', '_' and '.' (at most 96), " +
			"without '--' or '..'."
	case errors.Is(err, hub.ErrRateLimited):
		return "The Hub is limiting requests", "Wait a minute and publish again: files already uploaded are not sent again."
	case errors.Is(err, hub.ErrNetwork), errors.Is(err, context.DeadlineExceeded):
		return "Cannot reach the Hub", "Check the connection (and HF_ENDPOINT, if set) and publish again: " +
			"files already uploaded are not sent again."
	case errors.Is(err, hub.ErrServer):
		return "The Hub had an error", "Try again in a few minutes: files already uploaded are not sent again."
	case errors.Is(err, hub.ErrTooLarge):
		return "The Hub refused a file as too large", "Choose a smaller maximum shard size in the Shards tab and publish again."
	case errors.Is(err, hub.ErrConflict):
		return "The branch changed during the upload", "Publish again: the commit is made on the new head."
	case errors.Is(err, hub.ErrRevisionNotFound):
		return "The branch does not exist", "Check the branch name, or commit to main or open a pull request instead."
	case errors.Is(err, pipeline.ErrUnreadableWeights), errors.Is(err, pipeline.ErrUnsupportedVariant):
		return "The folder cannot be saved", "Check the folder's weights in the tree (a file may be damaged " +
			"or incomplete), download it again if needed, and publish again."
	case errors.Is(err, pipeline.ErrNoSpace), errors.Is(err, syscall.ENOSPC):
		return "The disk is full", "Modelpub stages a copy in its cache folder before uploading. Free some " +
			"space (or set XDG_CACHE_HOME to a larger disk) and publish again."
	case errors.Is(err, fs.ErrPermission):
		return "Permission denied", "Check that Modelpub may read the folder and write its cache folder, then publish again."
	}
	return "Publishing failed", fixAndRetry
}

// showFailure shows a failure in a dialog: what went wrong (cause, without
// the Hub's request id, see advice.Message), then what to do (next), said
// once. When details holds more than cause (the full error, with the
// request id for a bug report), a Details… button shows it.
func (pp *publishPanel) showFailure(title, cause, next, details string) {
	text := widget.NewLabel(cause + "\n\n" + next)
	text.Wrapping = fyne.TextWrapWord
	icon := widget.NewIcon(theme.ErrorIcon())
	body := fyne.CanvasObject(text)
	if details != "" && details != cause {
		more := widget.NewButton("Details…", func() { pp.showDetails(title, details) })
		body = container.NewVBox(text, container.NewHBox(more))
	}
	d := dialog.NewCustom(title, "OK", container.NewBorder(nil, nil, container.NewVBox(icon), nil, body), pp.e.win)
	width := min(560, pp.e.win.Canvas().Size().Width*0.9)
	text.Resize(fyne.NewSize(width-icon.MinSize().Width-4*theme.Padding(), text.MinSize().Height))
	d.Resize(fyne.NewSize(width, d.MinSize().Height))
	pp.failureDialog = d
	d.Show()
}

// showDetails shows the whole text of an error, wrapped and selectable
// (to copy into a bug report), in a dialog that scrolls when it is long.
func (pp *publishPanel) showDetails(title, details string) {
	text := widget.NewLabel(details)
	text.Wrapping = fyne.TextWrapBreak // an error may be one long path: break it anywhere
	text.Selectable = true
	size := pp.e.win.Canvas().Size()
	width, height := min(640, size.Width*0.9), min(420, size.Height*0.8)
	scroll := container.NewVScroll(text)
	scroll.SetMinSize(fyne.NewSize(width-4*theme.Padding(), min(height, 120)))
	d := dialog.NewCustom(title+": details", "Close", scroll, pp.e.win)
	text.Resize(fyne.NewSize(width-6*theme.Padding(), text.MinSize().Height))
	d.Resize(fyne.NewSize(width, min(height, d.MinSize().Height+text.MinSize().Height)))
	pp.detailsDialog = d
	d.Show()
}
