package gui

import (
	"context"
	"errors"
	"io/fs"
	"syscall"

	"modelpub/core/auth"
	"modelpub/core/hub"
	"modelpub/core/pipeline"
	"modelpub/core/publish"
)

// publishErrorText names a failure of the job and says what to do next.
func publishErrorText(err error, endpoint string) (title, next string) {
	tokens := endpoint + "/settings/tokens"
	switch {
	case errors.Is(err, publish.ErrReadOnlyToken):
		return "The token cannot write", "Create a token with the write role at " + tokens +
			", then use Log in… with it and publish again."
	case errors.Is(err, publish.ErrNamespace):
		return "The token cannot write to this namespace", "Pick a namespace you can write to in the list " +
			"(your own, or an organisation where you have the write role), or ask an admin of the organisation for it."
	case errors.Is(err, publish.ErrNoToken), errors.Is(err, auth.ErrNoToken):
		return "Not logged in", "Use Log in… with a token that has the write role, from " + tokens + "."
	case errors.Is(err, hub.ErrUnauthorized):
		return "The Hub refused the token", "Log in again (Log out, then Log in…) with a valid token from " + tokens + "."
	case errors.Is(err, hub.ErrForbidden):
		return "The Hub refused the write", "Check that the token may write to this repository (a fine-grained " +
			"token needs write access to it) at " + tokens + ", or publish as a pull request."
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
	return "Publishing failed", "Fix the cause above and publish again: steps already done are reused."
}
