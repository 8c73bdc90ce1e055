// Package publish is the publish job shared by the desktop app and the CLI:
// check the token and read the target as the Hub holds it (ReadRemote),
// stage the folder (save), validate the staged copy against the source,
// write the model card (checked by the Hub's validate-yaml), plan the
// upload as a diff with the Hub (new, changed, unchanged, deleted, kept),
// then create the repository and upload, as one commit or one pull request
// that also deletes the weight files of any other layout, so the Hub holds
// exactly the published one.
//
// Every step takes the job's context, reports Events, and leaves something a
// re-run reuses: a staged folder whose inputs did not change is not rebuilt,
// a validation of an unchanged staged folder is not redone, and files the Hub
// already holds are not sent again.
package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"modelpub/core/card"
	"modelpub/core/hub"
	"modelpub/core/pipeline"
	"modelpub/core/tensors"
)

// Step names a stage of the job, in the order they run.
type Step string

// The steps of a publish.
const (
	StepCheck    Step = "check"    // token and write access to the namespace
	StepCard     Step = "card"     // README.md from the card, merged with the Hub's
	StepStage    Step = "stage"    // save into the staging folder (or reuse it)
	StepValidate Step = "validate" // each staged file against the plan and the source, as it is written
	StepUpload   Step = "upload"   // create the repo; preupload and LFS uploads of each checked file
	StepCommit   Step = "commit"   // the commit or pull request, once every file is uploaded
	StepDone     Step = "done"     // the final event, with the URL
)

// Steps lists the steps in the order they start, for progress displays;
// stage, validate and upload then run at the same time.
var Steps = []Step{StepCheck, StepCard, StepStage, StepValidate, StepUpload, StepCommit}

// Errors of the job, tested with errors.Is. Hub errors (hub.ErrUnauthorized,
// hub.ErrNetwork, …) and pipeline errors come through wrapped as they are.
var (
	ErrNoToken       = errors.New("no Hub token")
	ErrReadOnlyToken = errors.New("the token is read-only: publishing needs a token with the write role")
	ErrNamespace     = errors.New("the token cannot write to this namespace")
	ErrInvalid       = errors.New("the staged folder did not validate against the source")
	ErrCard          = errors.New("the model card has invalid metadata")
	ErrBusy          = errors.New("another modelpub is publishing this folder")
	ErrDeleteOptions = errors.New("choose either --delete-extra or --no-delete, not both")
)

// Options describe one publish. Source and Repo are required; Token is
// required unless DryRun.
type Options struct {
	Source string // the Diffusers folder; only ever read
	// Pipeline is Source already opened (the app's): it is not opened
	// again. nil → Run opens Source.
	Pipeline *pipeline.Pipeline
	Repo     string // "ns/name", or "name" for the token's own namespace
	// AllowOutsideLinks follows symbolic links of Source that lead outside
	// it (see core/folder); without it such a folder is refused.
	AllowOutsideLinks bool

	Private           bool   // create the repository private (an existing one keeps its visibility)
	CreatePR          bool   // open a pull request instead of committing
	Branch            string // branch to commit to (created from main when missing); "" → main
	CommitMessage     string // "" → "Upload {PipelineClass}", as diffusers writes it
	CommitDescription string

	MaxShardSize int64  // 0 → each library's default
	Variant      string // "", "fp16" or "bf16"

	// The Hub ends holding one layout: weight files (any variant, shards,
	// index files) on the Hub at the root and in the folder of every
	// component the published model_index.json lists, that the published
	// layout does not contain, are deleted in the same commit. Other files
	// only on the Hub are kept, unless DeleteExtra (.gitattributes always
	// is). NoDelete deletes nothing and warns about what would then load.
	DeleteExtra bool
	NoDelete    bool

	// Card is the model card to publish. nil → the source's README.md with
	// generated metadata added, or a generated card. It is merged with a
	// README.md already on the Hub: the Hub's unknown metadata keys are
	// kept always, and its body unless ReplaceBody.
	Card *card.Card
	// ReplaceBody makes Card's body replace the body of the README.md on
	// the Hub: the user wrote it (modelpub publish --card, or edited in the
	// app), rather than it being generated.
	ReplaceBody bool
	License     string // license id for the card ("" → leave as is)
	LicenseName string // with License "other"
	BaseModel   string // base model repo id for the card

	Endpoint string // "" → $HF_ENDPOINT → https://huggingface.co
	Token    string // the Hub token; goes only to Endpoint's origin
	// DryRun stages, validates and writes the card, then plans: what would
	// be sent, left unchanged and deleted. It writes nothing remote; with a
	// Token it reads the target to compare with (else the remote is
	// unknown), and a Hub it cannot read only makes a warning.
	DryRun bool
	// KeepStaging keeps the staged folder after a successful publish (it
	// is always kept after a dry run or a failure, for the next run).
	KeepStaging bool

	// Transfer chooses how large files reach the Hub: hub.TransferAuto
	// (Xet when the Hub answers it, else Git LFS), hub.TransferXet or
	// hub.TransferLFS; "" → auto. A dry run that may use Xet estimates the
	// new bytes from the local Xet shard cache.
	Transfer hub.Transfer

	CacheDir   string       // staging, upload views, hashes; "" → $XDG_CACHE_HOME/modelpub
	Version    string       // modelpub's version, for the User-Agent and the staging key
	HTTPClient *http.Client // nil → the hub client's default
	Retry      hub.RetryPolicy
	Events     func(Event)          // progress; called from one goroutine at a time
	Logf       func(string, ...any) // hub notices (retries, skips); nil → none
}

// Event reports progress. Bytes/Total are this step's; Rate is bytes per
// second and ETA the estimated time left, both zero when unknown.
type Event struct {
	Step    Step          `json:"step"`
	Phase   string        `json:"phase,omitempty"` // upload sub-phase: scan, preupload, hash, upload, commit
	Message string        `json:"message,omitempty"`
	File    string        `json:"file,omitempty"`
	Bytes   int64         `json:"bytes,omitempty"`
	Total   int64         `json:"total,omitempty"`
	Deduped int64         `json:"deduped,omitempty"` // upload: bytes of Total not sent, the Hub already held them (Xet chunks); Bytes counts those sent
	Rate    float64       `json:"rate,omitempty"`
	ETA     time.Duration `json:"-"`                 // in JSON: eta_seconds
	Done    bool          `json:"done,omitempty"`    // the step is finished
	Warning bool          `json:"warning,omitempty"` // Message is a warning (also in Result.Warnings)
	URL     string        `json:"url,omitempty"`     // StepDone: the commit or pull request
}

// MarshalJSON writes the event with its ETA as "eta_seconds", for
// `modelpub publish --json` and other programs reading the events.
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event
	return json.Marshal(struct {
		plain
		ETASeconds float64 `json:"eta_seconds,omitempty"`
	}{plain(e), e.ETA.Seconds()})
}

// Result is the outcome of a publish (or a dry run).
type Result struct {
	Repo           string     `json:"repo"`                       // "ns/name"
	URL            string     `json:"url,omitempty"`              // the pull request's URL, else the commit's
	CommitURL      string     `json:"commit_url,omitempty"`       //
	PullRequestURL string     `json:"pull_request_url,omitempty"` //
	NoChanges      bool       `json:"no_changes,omitempty"`       // the Hub already had every file: no commit made
	Folder         string     `json:"folder"`                     // the folder uploaded (staged, or the source as it is)
	AsIs           bool       `json:"as_is,omitempty"`            // the source was already in the wanted form
	Reused         bool       `json:"reused,omitempty"`           // a previous staging was reused
	StagingRemoved bool       `json:"staging_removed,omitempty"`  // the staged folder was removed after the publish
	Files          []FileInfo `json:"files"`                      // the published layout: what the repo holds after, README.md included
	Bytes          int64      `json:"bytes"`                      // their total size
	// Remote is the target as it was before the publish (nil when it was
	// not read: a dry run without a token or with an unreadable Hub).
	Remote *Remote `json:"remote,omitempty"`
	// Plan lists every path: each published file (new, changed, unchanged)
	// and each file only on the Hub (deleted or kept). After a publish it
	// says what the upload did; after a dry run, what it would do.
	Plan     []PlanEntry      `json:"plan"`
	Summary  Summary          `json:"summary"`            // Plan counted; after a publish, from what was sent
	Warnings []string         `json:"warnings,omitempty"` // what the Hub will hold that a loader may trip on (NoDelete), the Hub's card warnings
	Report   *pipeline.Report `json:"validation"`
	Card     []byte           `json:"-"` // the README.md written
	DryRun   bool             `json:"dry_run,omitempty"`
}

// FileInfo is one file of the upload.
type FileInfo struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	LFS  bool   `json:"lfs"` // uploaded through Git LFS (large or binary)
}

// StepError is a failure of one step.
type StepError struct {
	Step Step
	Err  error
}

func (e *StepError) Error() string { return fmt.Sprintf("publish: %s: %v", e.Step, e.Err) }
func (e *StepError) Unwrap() error { return e.Err }

// Run publishes opts.Source. It returns after every goroutine it started has
// ended; cancelling ctx stops it at the next buffer, request or part.
func Run(ctx context.Context, opts Options) (*Result, error) {
	j, err := newJob(opts)
	if err != nil {
		return nil, err
	}
	return j.run(ctx)
}

// job is one run of Run.
type job struct {
	opts   Options
	id     hub.RepoID
	client *hub.Client
	ev     *emitter
	cache  string
	res    *Result
	head   string // the commit the upload left the branch at
	remote *Remote
	hashes *hub.HashCache
	// fingerprint is the run's one fingerprint of the source's files: the
	// staging's and the record's keys are made from it.
	fingerprint   string
	commitMessage string
}

func newJob(opts Options) (*job, error) {
	if opts.Source == "" {
		return nil, &StepError{StepCheck, errors.New("no source folder given")}
	}
	id, err := hub.ParseRepoID(strings.TrimSpace(opts.Repo))
	if err != nil {
		return nil, &StepError{StepCheck, err}
	}
	if id.Type != "" && id.Type != hub.Model {
		return nil, &StepError{StepCheck, fmt.Errorf("%w: %q is a %s repository; Modelpub publishes models", hub.ErrInvalidRepoID, opts.Repo, id.Type)}
	}
	if opts.Variant != "" && opts.Variant != "fp16" && opts.Variant != "bf16" {
		return nil, &StepError{StepStage, fmt.Errorf("%w: %q", pipeline.ErrUnsupportedVariant, opts.Variant)}
	}
	if opts.CreatePR && opts.Branch != "" && opts.Branch != "main" {
		return nil, &StepError{StepCheck, errors.New("choose either a pull request or a branch, not both")}
	}
	if opts.DeleteExtra && opts.NoDelete {
		return nil, &StepError{StepCheck, ErrDeleteOptions}
	}
	transfer, err := hub.ParseTransfer(string(opts.Transfer))
	if err != nil {
		return nil, &StepError{StepCheck, err}
	}
	opts.Transfer = transfer
	cache := opts.CacheDir
	if cache == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return nil, &StepError{StepStage, fmt.Errorf("no cache folder for staging (%v): set XDG_CACHE_HOME", err)}
		}
		cache = filepath.Join(base, "modelpub")
	}
	j := &job{opts: opts, id: id, cache: cache, ev: newEmitter(opts.Events),
		res: &Result{DryRun: opts.DryRun}}
	if !opts.DryRun && opts.Token == "" {
		return nil, &StepError{StepCheck, ErrNoToken}
	}
	if opts.Token != "" {
		j.client, err = hub.NewClient(hub.Options{Endpoint: opts.Endpoint, Token: opts.Token, Version: opts.Version,
			HTTPClient: opts.HTTPClient, Retry: opts.Retry, Logf: opts.Logf, Transfer: opts.Transfer})
		if err != nil {
			return nil, &StepError{StepCheck, err}
		}
	}
	return j, nil
}

func (j *job) run(ctx context.Context) (*Result, error) {
	// 1. Token, namespace and the target as the Hub holds it, before any
	// heavy work.
	if err := j.checkAndRead(ctx); err != nil {
		return nil, &StepError{StepCheck, err}
	}
	j.res.Repo = j.id.String()

	src := j.opts.Pipeline
	if src == nil || !samePath(src.Dir, j.opts.Source) {
		var err error
		if src, err = pipeline.OpenWith(ctx, j.opts.Source, pipeline.OpenOptions{AllowOutsideLinks: j.opts.AllowOutsideLinks}); err != nil {
			return nil, &StepError{StepStage, err}
		}
	}
	src, release := src.Hold() // each source file opened once more, whatever reads it
	defer release()
	unlock, err := lockSource(j.cache, src.Dir)
	if err != nil {
		return nil, &StepError{StepStage, err}
	}
	defer unlock()
	// The run's one fingerprint of the source's files (its README.md
	// aside: editing the card never restages a model).
	if j.fingerprint, err = pipeline.Fingerprint(src.Dir, false); err != nil {
		return nil, &StepError{StepStage, fmt.Errorf("read %s: %w", src.Dir, err)}
	}
	if j.alreadyPublished(src) {
		j.ev.emit(Event{Step: StepDone, Done: true, URL: j.res.URL,
			Message: "already published with these inputs, and " + j.revision() + " is still at that commit: nothing to do"})
		return j.res, nil
	}

	// 2. The model card, checked as the Hub checks it, before any upload.
	readme, err := j.card(ctx, src)
	if err != nil {
		return nil, &StepError{StepCard, err}
	}
	j.res.Card = readme

	// 3. What is saved, checked and uploaded: the plan reads nothing.
	plan, err := pipeline.Plan(src, pipeline.SaveOptions{MaxShardSize: j.opts.MaxShardSize, Variant: j.opts.Variant})
	if err != nil {
		return nil, &StepError{StepStage, err}
	}
	s, err := j.stage(src)
	if err != nil {
		return nil, &StepError{StepStage, err}
	}
	if j.hashes, err = hub.OpenHashCache(filepath.Join(j.cache, "hub-hashes.json")); err != nil {
		return nil, &StepError{StepUpload, err}
	}
	defer j.hashes.Save()
	j.commitMessage = j.opts.CommitMessage
	if j.commitMessage == "" {
		j.commitMessage = DefaultCommitMessage(src)
	}
	sc := layoutScope(src)

	// 4. Save, check and upload at once: each file joins the upload as soon
	// as it is written and checked; the commit waits for them all.
	var up *hub.Upload
	if !j.opts.DryRun {
		parent, err := j.prepare(ctx)
		if err != nil {
			return nil, &StepError{StepUpload, err}
		}
		if up, err = j.startUpload(ctx, parent); err != nil {
			return nil, &StepError{StepUpload, err}
		}
		defer up.Abort()
	}
	files := &collector{}
	emit := func(f localFile) error {
		files.add(f)
		if up == nil {
			return nil
		}
		if err := up.Add(f.addition()); err != nil {
			return &StepError{StepUpload, err}
		}
		return nil
	}
	if err := emit(localFile{FileInfo: FileInfo{Path: readmeName, Size: int64(len(readme))}, content: readme, sha256: sha256Hex(readme)}); err != nil {
		return nil, err
	}
	pr := &producer{j: j, src: src, s: s, plan: plan, emit: emit}
	if err := pr.run(ctx); err != nil {
		var se *StepError
		if errors.As(err, &se) {
			return nil, err
		}
		return nil, &StepError{StepStage, err}
	}
	if !s.asIs {
		pr.report.Problems = []pipeline.Finding{}
		if pr.report.Warnings == nil {
			pr.report.Warnings = []pipeline.Finding{}
		}
		j.res.Report = &pr.report
		pr.remember(files.sorted()) // every checked or copied file, and the report
		if !s.reused || pr.report.Tensors > 0 {
			j.ev.emit(Event{Step: StepValidate, Done: true, Bytes: pr.report.Bytes, Total: pr.report.Bytes,
				Message: fmt.Sprintf("valid: %d tensors (%s) match the source", pr.report.Tensors, tensors.FormatSize(pr.report.Bytes))})
		}
	}

	// 5. The plan: what differs from the Hub, what is deleted.
	if err := j.plan(ctx, files.sorted(), sc, j.remote); err != nil {
		return nil, &StepError{StepUpload, err}
	}
	if j.opts.DryRun {
		if err := j.estimate(ctx, files.sorted()); err != nil {
			return nil, &StepError{StepUpload, err}
		}
		if j.remote != nil {
			j.warnAmbiguities(sc) // what --no-delete would leave, said before it is done
		}
		j.ev.emit(Event{Step: StepDone, Done: true, Message: fmt.Sprintf("dry run: %s would hold %d files (%s); %s",
			j.res.Repo, len(j.res.Files), tensors.FormatSize(j.res.Bytes), planString(j.res.Summary))})
		return j.res, nil
	}
	j.warnAmbiguities(sc)

	// 6. One commit or pull request: the files and the deletions.
	if err := j.commit(ctx, up); err != nil {
		var se *StepError
		if errors.As(err, &se) {
			return nil, err
		}
		return nil, &StepError{StepUpload, err}
	}
	j.remember(src, j.head)
	if !j.opts.KeepStaging {
		j.dropStaging(s)
	}
	j.ev.emit(Event{Step: StepDone, Done: true, URL: j.res.URL, Message: j.doneMessage()})
	return j.res, nil
}

// samePath reports whether two folder paths name the same folder.
func samePath(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == bb
}

func (j *job) doneMessage() string {
	switch {
	case j.res.NoChanges:
		return "the Hub already has every file: nothing to commit"
	case j.res.PullRequestURL != "":
		return "pull request opened: " + j.res.Summary.String()
	default:
		return "committed: " + j.res.Summary.String()
	}
}

// DefaultCommitMessage is the commit title used when none is given:
// diffusers' "Upload {PipelineClass}" ("Upload model" for a model class).
func DefaultCommitMessage(p *pipeline.Pipeline) string {
	class := ""
	switch {
	case p.Index != nil:
		class = p.Index.ClassName
	case len(p.Components) == 1:
		class = p.Components[0].Class
	}
	switch {
	case class == "":
		return "Upload model"
	case strings.Contains(class, "Model"):
		return "Upload model"
	case strings.Contains(class, "Scheduler"):
		return "Upload scheduler"
	}
	return "Upload " + class
}
