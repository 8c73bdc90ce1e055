package publish

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"modelpub/core/hub"
)

// lfsThreshold is the size from which the Hub stores any file in Git LFS.
const lfsThreshold = 10 << 20

// lfsExtensions are the patterns of the Hub's default .gitattributes that
// a model folder meets.
var lfsExtensions = []string{".bin", ".safetensors", ".ckpt", ".pt", ".pth", ".onnx", ".msgpack", ".h5",
	".pkl", ".pickle", ".npy", ".npz", ".model", ".gguf", ".zip", ".tar", ".gz", ".xz", ".zst", ".ot", ".tflite", ".pb"}

func isLFS(path string, size int64) bool {
	if size >= lfsThreshold {
		return true
	}
	ext := strings.ToLower(filepath.Ext(path))
	for _, e := range lfsExtensions {
		if ext == e {
			return size > 0
		}
	}
	return false
}

// plan compares the published files with remote (nil: not read) and fills
// in the result's files, plan and summary.
func (j *job) plan(ctx context.Context, files []localFile, sc scope, remote *Remote) error {
	j.res.Files, j.res.Bytes = nil, 0
	for i := range files {
		f := &files[i]
		f.LFS = isLFS(f.Path, f.Size)
		j.res.Files = append(j.res.Files, f.FileInfo)
		j.res.Bytes += f.Size
	}
	plan, err := j.diff(ctx, files, remote, sc, j.hashes)
	if err != nil {
		return err
	}
	j.res.Plan, j.res.Summary = plan, summarize(plan)
	j.res.Summary.Sent = j.res.Summary.New + j.res.Summary.Changed + j.res.Summary.Unknown
	if remote == nil {
		return nil // the Hub was not read: nothing to compare, nothing to delete
	}
	against := remote.Base + " (new)"
	if remote.Head != nil {
		against = remote.Base + " at " + shortID(remote.Head.ID)
	}
	j.ev.emit(Event{Step: StepUpload, Phase: "plan", Message: "compared with " + against + ": " + planString(j.res.Summary)})
	for _, e := range plan {
		if e.Change == ChangeDeleted {
			j.ev.emit(Event{Step: StepUpload, Phase: "plan", File: e.Path, Message: "delete " + e.Path + ": " + e.Why})
		}
	}
	return nil
}

// warnAmbiguities warns about weight files the final plan keeps beside
// the published layout.
func (j *job) warnAmbiguities(sc scope) {
	for _, w := range ambiguities(j.res.Plan, sc) {
		j.warn(StepUpload, w+" (publish without --no-delete to remove them)")
	}
}

// prepare creates the repository and the branch if needed and reads the
// head the upload is made against: when the branch moved since it was
// read, its files are read again, so the plan compares with its new head;
// the upload then refuses to commit over any later move.
func (j *job) prepare(ctx context.Context) (string, error) {
	if !j.remote.Exists {
		url, err := j.client.CreateRepo(ctx, j.id, hub.CreateRepoOptions{Private: j.opts.Private, ExistOK: true})
		if err != nil {
			return "", err
		}
		j.ev.emit(Event{Step: StepUpload, Message: "created the repository " + url})
	}
	branch := j.opts.Branch
	if branch != "" && branch != "main" && !j.remote.BranchExists {
		err := j.client.CreateBranch(ctx, j.id, branch, "")
		switch {
		case err == nil:
			j.ev.emit(Event{Step: StepUpload, Message: "created branch " + branch})
		case errors.Is(err, hub.ErrConflict):
		default:
			return "", err
		}
	}
	rev := j.revision()
	now, err := j.client.Revision(ctx, j.id, rev)
	if err != nil {
		return "", err
	}
	if j.remote.Head == nil || now.Head.ID != j.remote.Head.ID {
		if j.remote.Head != nil {
			j.ev.emit(Event{Step: StepUpload, Message: fmt.Sprintf("%s moved since it was read (now at %s %q): comparing again",
				rev, shortID(now.Head.ID), now.Head.Title)})
		}
		moved := &Remote{Repo: j.remote.Repo, URL: j.remote.URL, Exists: true, Private: now.Private,
			Revision: rev, BranchExists: true, Base: rev}
		if err := j.readTree(ctx, moved, now.Head); err != nil {
			return "", err
		}
		j.remote = moved
	}
	return now.Head.ID, nil
}

// startUpload starts the upload every produced file joins as soon as it
// is checked; Commit waits for them all.
func (j *job) startUpload(ctx context.Context, parent string) (*hub.Upload, error) {
	seen := map[string]bool{}
	return j.client.StartUpload(ctx, j.id, hub.UploadOptions{
		Revision: j.opts.Branch, CreatePR: j.opts.CreatePR, CommitMessage: j.commitMessage, CommitDescription: j.opts.CommitDescription,
		HashCache: j.hashes, ParentCommit: parent,
		Progress: func(p hub.Progress) {
			step := StepUpload
			if p.Phase == "commit" || p.Phase == "done" {
				step = StepCommit
			}
			e := Event{Step: step, Phase: p.Phase, File: p.File, Bytes: p.Bytes, Total: p.Total, Deduped: p.Deduped, Rate: p.Rate}
			if !seen[p.Phase] && p.File == "" {
				seen[p.Phase] = true
				if e.Message = phaseMessage(p, j.opts.Transfer); e.Message != "" {
					j.ev.emit(e)
					return
				}
			}
			if p.Total > 0 && (p.Phase == "upload" || p.Phase == "hash") || step == StepCommit {
				j.ev.progress(e)
			}
		},
	})
}

// commit makes the upload's one commit (or pull request) with the
// deletions of the plan.
func (j *job) commit(ctx context.Context, u *hub.Upload) error {
	info, err := u.Commit(ctx, deletions(j.res.Plan))
	if err != nil {
		if errors.Is(err, hub.ErrConflict) && !j.opts.CreatePR {
			return &StepError{StepCommit, fmt.Errorf("%w (the branch moved while uploading; run publish again: nothing already uploaded is sent twice)", err)}
		}
		return err
	}
	j.res.CommitURL, j.res.PullRequestURL, j.res.NoChanges = info.URL, info.PullRequestURL, info.NoChanges
	j.head = info.OID
	j.res.URL = info.URL
	if info.PullRequestURL != "" {
		j.res.URL = info.PullRequestURL
	}
	j.applyReport(info.Upload)
	return nil
}

// applyReport makes the plan say what the upload did: what it sent, what
// the Hub already had, what it deleted.
func (j *job) applyReport(r *hub.UploadReport) {
	if r == nil {
		return
	}
	files := make(map[string]hub.FileResult, len(r.Files))
	for _, f := range r.Files {
		files[f.Path] = f
	}
	deleted := make(map[string]bool, len(r.Deleted))
	for _, p := range r.Deleted {
		deleted[p] = true
	}
	sent, stored := 0, 0
	for i := range j.res.Plan {
		e := &j.res.Plan[i]
		f, ok := files[e.Path]
		if !ok {
			if e.Change == ChangeDeleted && !deleted[e.Path] {
				e.Change, e.Why = ChangeKept, "not deleted"
			}
			continue
		}
		e.LFS, e.Bytes = f.LFS, f.Sent
		e.Change = ChangeNew
		if f.Remote != "" {
			e.Change = ChangeChanged
		}
		switch f.Outcome {
		case hub.FileSent:
			sent++
		case hub.FileStored:
			stored++
		case hub.FileUnchanged:
			e.Change = ChangeUnchanged
		case hub.FileIgnored:
			e.Change = ChangeIgnored
		}
	}
	j.res.Summary = summarize(j.res.Plan)
	j.res.Summary.Sent, j.res.Summary.Stored = sent, stored
	j.res.Summary.Deduped = r.Deduped
}

// phaseMessage says what an upload phase is about to do.
func phaseMessage(p hub.Progress, transfer hub.Transfer) string {
	switch p.Phase {
	case "scan":
		return "listing the files"
	case "preupload":
		return "asking the Hub about each file as it is ready"
	case "hash":
		return "hashing the files whose digests are not known"
	case "upload":
		switch transfer {
		case hub.TransferLFS:
			return "uploading each file through Git LFS as soon as it is checked"
		case hub.TransferXet:
			return "uploading each file through Xet as soon as it is checked (chunks the Hub holds are not sent)"
		}
		return "uploading each file as soon as it is checked: through Xet when the Hub takes it (chunks it holds are not sent), else Git LFS"
	case "commit":
		// One operation per file sent and per file deleted.
		return fmt.Sprintf("committing %s", plural(p.FilesTotal, "change"))
	case "done":
		return ""
	}
	return p.Phase
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
