package gui

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"fyne.io/fyne/v2/widget"

	"modelpub/core/hub"
	"modelpub/core/publish"
)

// The target as the Hub holds it: whether the repository exists, its
// visibility, the last commit of the revision a publish compares with, and
// its files. It is read off the UI goroutine with publish.ReadRemote once
// the target rests for remoteDelay (a name being typed is not read letter
// by letter), again after a publish, and never without an account: an
// answer for a target that is no longer the chosen one is dropped.

// remoteDelay is how long the target must rest before the Hub is read.
const remoteDelay = 600 * time.Millisecond

// remoteTimeout bounds one read of the target.
const remoteTimeout = 30 * time.Second

// targetID names the chosen target: the repository and where the publish
// commits ("alice/sd15 main", "alice/sd15 pr", "alice/sd15 branch dev").
// A plan is for one target.
func (pp *publishPanel) targetID() string {
	switch pp.mode.Selected {
	case modePR:
		return pp.repoID() + " pr"
	case modeBranch:
		return pp.repoID() + " branch " + strings.TrimSpace(pp.branch.Text)
	}
	return pp.repoID() + " main"
}

// remoteKey names what a read of the target depends on: the target and the
// account. It is "" when there is nothing to read: no folder, no account,
// or a target the Hub would refuse.
func (pp *publishPanel) remoteKey() string {
	if pp.p == nil || pp.account == nil || pp.token.IsZero() || pp.namespace.Selected == "" || pp.targetProblem() != "" {
		return ""
	}
	return fmt.Sprintf("%s #%d", pp.targetID(), pp.accountGen)
}

// targetOptions are the options that name the target, for ReadRemote and
// for the job.
func (pp *publishPanel) targetOptions() publish.Options {
	o := publish.Options{
		Source:     pp.p.Dir,
		Repo:       pp.repoID(),
		Private:    pp.private.Checked,
		CreatePR:   pp.mode.Selected == modePR,
		Endpoint:   pp.cfg.endpoint(),
		Version:    pp.cfg.Version,
		HTTPClient: pp.cfg.HTTPClient,
		Retry:      pp.cfg.Retry,
	}
	if pp.mode.Selected == modeBranch {
		o.Branch = strings.TrimSpace(pp.branch.Text)
	}
	return o
}

// scheduleRemote reads the target once it rests, unless what is shown is
// already about it.
func (pp *publishPanel) scheduleRemote() {
	key := pp.remoteKey()
	if key == "" {
		pp.stopRemote()
		pp.remote, pp.remoteFor, pp.remoteErr, pp.remoteReading = nil, "", nil, false
		pp.showRemote()
		return
	}
	if key == pp.remoteFor && (pp.remoteReading || (pp.remoteErr == nil && pp.remote != nil)) {
		return
	}
	pp.stopRemote()
	pp.remote, pp.remoteFor, pp.remoteErr, pp.remoteReading = nil, key, nil, true
	pp.showRemote()
	pp.remoteDebounce.call(pp.readTarget)
}

// refreshRemote reads the target again now (after a publish).
func (pp *publishPanel) refreshRemote() {
	pp.remoteFor = ""
	pp.scheduleRemote()
	pp.remoteDebounce.cancel()
	if pp.remoteReading {
		pp.readTarget()
	}
}

// stopRemote drops a pending or running read: its answer is not shown.
func (pp *publishPanel) stopRemote() {
	pp.remoteDebounce.cancel()
	pp.remoteGen++
	if pp.remoteStop != nil {
		pp.remoteStop()
		pp.remoteStop = nil
	}
}

// readTarget reads the chosen target off the UI goroutine.
func (pp *publishPanel) readTarget() {
	key := pp.remoteKey()
	if key == "" || key != pp.remoteFor {
		return
	}
	pp.stopRemote()
	gen := pp.remoteGen
	ctx, stop := context.WithTimeout(context.Background(), remoteTimeout)
	pp.remoteStop = stop
	opts, read := pp.targetOptions(), pp.readRemote
	opts.Token = pp.token.Value()
	pp.e.spawn(func() {
		r, err := read(ctx, opts)
		stop()
		pp.e.do(func() {
			if gen != pp.remoteGen || key != pp.remoteFor {
				return // an older target's answer
			}
			pp.remoteStop = nil
			pp.setRemote(r, err)
		})
	})
}

// setRemote shows the target as read.
func (pp *publishPanel) setRemote(r *publish.Remote, err error) {
	pp.remote, pp.remoteErr, pp.remoteReading = r, err, false
	if err != nil {
		pp.remote = nil
	}
	pp.showRemote()
	pp.showFiles()
}

// showRemote says what the Hub holds for the target, with a link to it.
func (pp *publishPanel) showRemote() {
	text, imp := pp.remoteText()
	pp.hubText.Importance = imp
	pp.hubText.SetText(text)
	link := ""
	if r := pp.remote; r != nil && r.Exists && !pp.remoteReading && pp.remoteErr == nil {
		link = hub.RedactURL(r.URL)
	}
	if u, err := url.Parse(link); link != "" && err == nil {
		pp.hubLink.SetURL(u)
		pp.hubLink.Show()
	} else {
		pp.hubLink.Hide()
	}
	if pp.left != nil {
		pp.left.Refresh() // the text's height may change
	}
}

// remoteText describes the target as read, or why it is not.
func (pp *publishPanel) remoteText() (string, widget.Importance) {
	host := pp.cfg.host()
	switch {
	case pp.p == nil:
		return "Open a folder to publish it.", widget.MediumImportance
	case pp.account == nil:
		return fmt.Sprintf("Log in to see what %s holds for this repository: the dry run then compares the folder "+
			"with it and names what it would send, keep and delete.", host), widget.MediumImportance
	case pp.namespace.Selected == "" || pp.targetProblem() != "":
		return "Choose the repository above.", widget.MediumImportance
	case pp.remoteReading:
		return fmt.Sprintf("Reading %s on %s…", pp.repoID(), host), widget.MediumImportance
	case pp.remoteErr != nil:
		title, _ := publishErrorText(pp.remoteErr, pp.cfg.pageURL())
		return fmt.Sprintf("%s: %s could not be read on %s (%s). A dry run still works; it cannot compare "+
			"with the Hub.", title, pp.repoID(), host, publishErrorCause(pp.remoteErr, pp.cfg.endpoint())), widget.DangerImportance
	case pp.remote == nil:
		return "", widget.MediumImportance
	}
	return describeRemote(pp.remote, pp.private.Checked, pp.mode.Selected == modePR), widget.MediumImportance
}

// describeRemote says what r is for people: new, or existing with its
// visibility, its last commit and its files. private is the visibility a
// new repository gets.
func describeRemote(r *publish.Remote, private, pr bool) string {
	if !r.Exists {
		return fmt.Sprintf("%s is new: publishing creates it (%s).", r.Repo, visibility(private))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s exists (%s).", r.Repo, visibility(r.Private))
	if r.Head == nil {
		fmt.Fprintf(&b, " %s has no commit yet.", r.Base)
	} else {
		fmt.Fprintf(&b, " Last commit on %s: %s", r.Base, commitLine(r.Head))
		var size int64
		for _, f := range r.Files {
			size += f.Size
		}
		fmt.Fprintf(&b, " It holds %s (%s).", plural(len(r.Files), "file", "files"), formatSize(size))
	}
	switch {
	case pr:
		fmt.Fprintf(&b, " The pull request is opened against %s.", r.Revision)
	case !r.BranchExists:
		fmt.Fprintf(&b, " Branch %s is created from %s.", r.Revision, r.Base)
	}
	return b.String()
}

// commitLine is “title” by author, date (short id).
func commitLine(c *publish.RemoteCommit) string {
	s := fmt.Sprintf("“%s”", c.Title)
	if c.Author != "" {
		s += " by " + c.Author
	}
	if !c.Date.IsZero() {
		s += ", " + c.Date.UTC().Format("2006-01-02 15:04 UTC")
	}
	id := c.ID
	if len(id) > 7 {
		id = id[:7]
	}
	return s + " (" + id + ")."
}

func visibility(private bool) string {
	if private {
		return "private"
	}
	return "public"
}
