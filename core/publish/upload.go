package publish

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"modelpub/core/folder"
	"modelpub/core/hub"
	"modelpub/core/tensors"
)

// lfsThreshold is the size from which the Hub stores any file in Git LFS.
const lfsThreshold = 10 << 20

// lfsExtensions are the patterns of the Hub's default .gitattributes that
// a model folder meets.
var lfsExtensions = []string{".bin", ".safetensors", ".ckpt", ".pt", ".pth", ".onnx", ".msgpack", ".h5",
	".pkl", ".pickle", ".npy", ".npz", ".model", ".gguf", ".zip", ".tar", ".gz", ".xz", ".zst", ".ot", ".tflite", ".pb"}

// view builds the folder UploadFolder sends: symbolic links to every file
// of the staged folder (or the source), hidden folders aside, and README.md
// written from the card. Its path is stable per folder so the hash cache,
// keyed by path, finds the files of an earlier run.
func (j *job) view(ctx context.Context, s *staging, readme []byte) (string, error) {
	root := filepath.Join(j.cache, "upload")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	dir := filepath.Join(root, sourceKey(s.dir))
	tmp, err := os.MkdirTemp(root, ".view-*")
	if err != nil {
		return "", err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	var files []FileInfo
	// The source (uploaded as it is) or the staging, reached through the
	// file policy as the source was opened: no link leads outside.
	srcFiles, err := folder.New(s.dir, folder.Options{AllowOutsideLinks: j.opts.AllowOutsideLinks})
	if err != nil {
		return "", err
	}
	err = srcFiles.Walk(ctx, func(rel string, e folder.Entry) error {
		if e.IsDir() {
			return os.MkdirAll(filepath.Join(tmp, filepath.FromSlash(rel)), 0o755)
		}
		if rel == "README.md" {
			return nil
		}
		abs := filepath.Join(srcFiles.Dir(), filepath.FromSlash(rel))
		if err := os.Symlink(abs, filepath.Join(tmp, filepath.FromSlash(rel))); err != nil {
			return err
		}
		files = append(files, FileInfo{Path: rel, Size: e.Info.Size(), LFS: isLFS(rel, e.Info.Size())})
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("list %s: %w", s.dir, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "README.md"), readme, 0o644); err != nil {
		return "", err
	}
	files = append(files, FileInfo{Path: "README.md", Size: int64(len(readme))})
	sort.Slice(files, func(a, b int) bool { return files[a].Path < files[b].Path })
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	ok = true
	j.res.Files = files
	j.res.Bytes = 0
	for _, f := range files {
		j.res.Bytes += f.Size
	}
	return dir, nil
}

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

// plan compares the view with remote (nil: not read) and fills in the
// result's plan and summary.
func (j *job) plan(ctx context.Context, s *staging, view string, remote *Remote) error {
	plan, err := j.diff(ctx, viewFiles(view, j.res.Files), remote, layoutScope(s.p), j.hashes)
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
func (j *job) warnAmbiguities(s *staging) {
	for _, w := range ambiguities(j.res.Plan, layoutScope(s.p)) {
		j.warn(StepUpload, w+" (publish without --no-delete to remove them)")
	}
}

// upload creates the repository and the branch if needed and uploads the
// view as one commit or pull request, with the deletions of the plan. When
// the branch moved since it was read, the plan is made again against its
// new head first; the upload then refuses to commit over any later move.
func (j *job) upload(ctx context.Context, s *staging, view string) error {
	if !j.remote.Exists {
		url, err := j.client.CreateRepo(ctx, j.id, hub.CreateRepoOptions{Private: j.opts.Private, ExistOK: true})
		if err != nil {
			return err
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
			return err
		}
	}
	rev := j.revision()
	now, err := j.client.Revision(ctx, j.id, rev)
	if err != nil {
		return err
	}
	if j.remote.Head == nil || now.Head.ID != j.remote.Head.ID {
		if j.remote.Head != nil {
			j.ev.emit(Event{Step: StepUpload, Message: fmt.Sprintf("%s moved since it was read (now at %s %q): comparing again",
				rev, shortID(now.Head.ID), now.Head.Title)})
		}
		moved := &Remote{Repo: j.remote.Repo, URL: j.remote.URL, Exists: true, Private: now.Private,
			Revision: rev, BranchExists: true, Base: rev}
		if err := j.readTree(ctx, moved, now.Head); err != nil {
			return err
		}
		if err := j.plan(ctx, s, view, moved); err != nil {
			return err
		}
	}
	j.warnAmbiguities(s)

	msg := j.opts.CommitMessage
	if msg == "" {
		msg = DefaultCommitMessage(s.p)
	}
	phase := ""
	info, err := j.client.UploadFolder(ctx, j.id, view, hub.UploadOptions{
		Revision: branch, CreatePR: j.opts.CreatePR, CommitMessage: msg, CommitDescription: j.opts.CommitDescription,
		HashCache: j.hashes, Delete: deletions(j.res.Plan), ParentCommit: now.Head.ID,
		Progress: func(p hub.Progress) {
			step := StepUpload
			if p.Phase == "commit" || p.Phase == "done" {
				step = StepCommit
			}
			e := Event{Step: step, Phase: p.Phase, File: p.File, Bytes: p.Bytes, Total: p.Total, Rate: p.Rate}
			if p.Phase != phase {
				phase = p.Phase
				e.Message = phaseMessage(p)
				j.ev.emit(e)
				return
			}
			if p.Total > 0 && (p.Phase == "upload" || p.Phase == "hash") {
				j.ev.progress(e)
			}
		},
	})
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
}

// phaseMessage says what an upload phase is about to do.
func phaseMessage(p hub.Progress) string {
	switch p.Phase {
	case "scan":
		return "listing the files"
	case "preupload":
		return fmt.Sprintf("asking the Hub which of %s it needs", plural(p.FilesTotal, "file"))
	case "hash":
		if p.FilesTotal == 0 {
			return ""
		}
		return fmt.Sprintf("hashing %s (%s; cached hashes are reused)", plural(p.FilesTotal, "file"), tensors.FormatSize(p.Total))
	case "upload":
		return fmt.Sprintf("uploading %s (%s) through Git LFS", plural(p.FilesTotal, "object"), tensors.FormatSize(p.Total))
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
