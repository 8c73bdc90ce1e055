package cli

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"modelpub/core/advice"
	"modelpub/core/auth"
	"modelpub/core/card"
	"modelpub/core/folder"
	"modelpub/core/hub"
	"modelpub/core/publish"
	"modelpub/core/tensors"
)

func init() {
	register(command{
		name: "publish",
		args: "SRC --repo NS/NAME [--private] [--create-pr | --branch B] [--message M] [--description D] " +
			"[--max-shard-size S] [--variant fp16|bf16] [--card FILE] [--license ID] [--base-model ID] " +
			"[--delete-extra | --no-delete] [--transfer auto|xet|lfs] [--endpoint URL] [--token-stdin] [--dry-run] " +
			"[--keep-staging] [--allow-outside-links] [--json]",
		summary: "save, validate, write the model card and upload a folder to the Hub",
		help:    publishHelp,
		run:     runPublish,
	})
}

const publishHelp = `Publishes the Diffusers folder SRC to the Hugging Face Hub repository
NS/NAME (NAME alone: your own namespace), in six steps:

  check     the token (whoami) and that it may write to NS; then the
            repository as the Hub holds it: new or existing, visibility,
            last commit, every file with its size and hash
  stage     save SRC into a staging folder in the user cache, as
            "modelpub save" would (skipped when SRC is already safetensors in
            the wanted layout: its files are then uploaded as they are); a
            staging whose inputs have not changed is reused
  validate  the staged folder against SRC, tensor by tensor
  card      README.md: --card FILE, else SRC's README.md, else one generated
            from the pipeline; merged with the README.md already on the Hub
            (its unknown metadata keys are kept, and its text unless --card)
  upload    the plan: each published file is new, changed or unchanged
            (same content on the Hub: not sent), each file only on the Hub
            is deleted or kept; create the repository if needed and send
            only what differs: through Xet when the Hub takes it (files cut
            into chunks, and only chunks the Hub does not hold yet are sent,
            from any repository), else Git LFS (multipart); retried
  commit    one commit, or one pull request with --create-pr, holding the
            new files and the deletions together

The Hub ends holding one layout of the weights: at the root and in the
folder of every component model_index.json lists, weight files on the Hub
that the published layout does not contain (other shards, their index, any
variant, .bin files) are deleted in the same commit, so diffusers never
loads an old index or variant. To keep a variant, publish it again
(identical files are not sent again). Other files only on the Hub (sample
images, other folders) are kept and listed; .gitattributes always is.

Running it again after a failure, a kill or Ctrl-C resumes: nothing already
staged is rebuilt, nothing already uploaded is sent again.

  --repo NS/NAME         the model repository
  --private              create the repository private
  --create-pr            open a pull request instead of committing to main
  --branch B             commit to branch B (created from main if missing)
  --message M            commit title (default "Upload <PipelineClass>")
  --description D        commit description
  --max-shard-size S     5GB, 500MB, 2GiB, … (default: each library's own)
  --variant fp16|bf16    add the weights converted to float16/bfloat16
  --card FILE            the model card (README.md with YAML front matter)
  --license ID           license id for the card (apache-2.0, mit, other, …)
  --license-name N       with --license other
  --base-model ID        base model repo id for the card
  --delete-extra         also delete the files only on the Hub that are not
                         weights of the layout (never .gitattributes)
  --no-delete            delete nothing; warns what diffusers would then load
  --transfer auto|xet|lfs
                         how large files are sent (default auto): auto uses
                         Xet when the Hub answers it and Git LFS otherwise;
                         xet fails if the Hub refuses Xet; lfs never uses it
  --endpoint URL         the Hub (default $HF_ENDPOINT or https://huggingface.co)
  --token-stdin          read the token from standard input
  --dry-run              write nothing remote; print the plan: every file
                         new, changed, unchanged, deleted or kept, and the
                         bytes to send (compared with the Hub when a token
                         is available, else the Hub is not asked); unless
                         --transfer lfs, the files to send are cut into Xet
                         chunks and looked up in the local Xet cache, for an
                         estimate of the new bytes
  --keep-staging         keep the staged folder after a successful publish
                         (by default it is removed then; it is always kept
                         after a dry run or a failure, for the next run)
  --json                 print events and the result as JSON lines on stdout
  --allow-outside-links  follow symbolic links that lead outside the folder
                         (refused by default: a downloaded folder is untrusted)

The token comes from --token-stdin, else HF_TOKEN, else the OS keyring
("modelpub login"), else the token file of "hf auth login".
Progress goes to stderr: bytes sent and, through Xet, bytes the Hub already
held ("sent 12 MB of 4.2 GB — 4.19 GB already on the Hub"), ending with what
was done ("1 file sent (1.28 KB), 18 unchanged, 6 deleted"); the commit or
pull request URL to stdout. With --json every event is a JSON line, the
upload's with "bytes" sent and "deduped" bytes.

Exit status: 0 published, 1 failed (the reason is printed), 2 usage.
`

func runPublish(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("publish", stderr)
	var o publish.Options
	fs.StringVar(&o.Repo, "repo", "", "")
	fs.BoolVar(&o.Private, "private", false, "")
	fs.BoolVar(&o.CreatePR, "create-pr", false, "")
	fs.StringVar(&o.Branch, "branch", "", "")
	fs.StringVar(&o.CommitMessage, "message", "", "")
	fs.StringVar(&o.CommitDescription, "description", "", "")
	maxSize := fs.String("max-shard-size", "", "")
	fs.StringVar(&o.Variant, "variant", "", "")
	cardFile := fs.String("card", "", "")
	fs.StringVar(&o.License, "license", "", "")
	fs.StringVar(&o.LicenseName, "license-name", "", "")
	fs.StringVar(&o.BaseModel, "base-model", "", "")
	fs.BoolVar(&o.DeleteExtra, "delete-extra", false, "")
	fs.BoolVar(&o.NoDelete, "no-delete", false, "")
	transfer := fs.String("transfer", "auto", "")
	fs.StringVar(&o.Endpoint, "endpoint", "", "")
	tokenStdin := fs.Bool("token-stdin", false, "")
	fs.BoolVar(&o.DryRun, "dry-run", false, "")
	fs.BoolVar(&o.KeepStaging, "keep-staging", false, "")
	fs.BoolVar(&o.AllowOutsideLinks, "allow-outside-links", false, "")
	asJSON := fs.Bool("json", false, "")
	pos, ok := parseArgs(fs, args, 1)
	if !ok {
		return ExitUsage
	}
	o.Source = pos[0]
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "modelpub publish: "+format+"\n", a...)
		return ExitUsage
	}
	if o.Repo == "" {
		return usageErr("--repo NS/NAME is required")
	}
	if o.CreatePR && o.Branch != "" {
		return usageErr("--create-pr and --branch exclude each other")
	}
	if o.DeleteExtra && o.NoDelete {
		return usageErr("--delete-extra and --no-delete exclude each other")
	}
	var err error
	if o.Transfer, err = hub.ParseTransfer(*transfer); err != nil {
		return usageErr("--transfer must be auto, xet or lfs, not %q", *transfer)
	}
	if *maxSize != "" {
		if o.MaxShardSize, err = tensors.ParseSize(*maxSize); err != nil {
			return usageErr("--max-shard-size: %v", err)
		}
	}
	if o.License == "other" && o.LicenseName == "" {
		return usageErr("--license other needs --license-name (a short id for your license)")
	}
	if o.License != "" && !card.IsLicense(o.License) {
		return usageErr("--license %q is not a license id the Hub knows (%s); use \"other\" with --license-name", o.License, card.LicensesURL)
	}
	if o.Variant != "" && o.Variant != "fp16" && o.Variant != "bf16" {
		return usageErr("--variant must be fp16 or bf16, not %q", o.Variant)
	}
	if *cardFile != "" {
		data, err := folder.ReadFile(*cardFile, 0)
		if err != nil {
			return usageErr("--card: %s", errMessage(err))
		}
		if o.Card, err = card.Parse(data); err != nil {
			return usageErr("--card %s: %v", *cardFile, err)
		}
		o.ReplaceBody = true
	}
	// A dry run uses a token when there is one, to compare with the Hub
	// (reading only); without one it plans against an unknown remote.
	ao := auth.Options{Endpoint: o.Endpoint}
	if *tokenStdin {
		ao.Stdin = stdin
	}
	tok, err := auth.Resolve(ao)
	if err != nil && !o.DryRun {
		fmt.Fprintf(stderr, "modelpub publish: %s\n", errText(err))
		return ExitProblems
	}
	o.Token = tok.Value()
	o.Version = Version

	ctx, stop := interruptible()
	defer stop()
	out := newPublishOutput(stdout, stderr, *asJSON)
	o.Events = out.event
	res, err := publish.Run(ctx, o)
	out.finish()
	if err != nil {
		if *asJSON {
			out.writeJSON(map[string]any{"step": "error", "error": err.Error()})
		}
		msg := errText(err)
		if se := (*publish.StepError)(nil); errors.As(err, &se) {
			msg = fmt.Sprintf("%s: %s", se.Step, errText(se.Err)) // "check: whoami: …", not "publish: check: hub: …"
		}
		fmt.Fprintf(stderr, "modelpub publish: %s\n", msg)
		if a := advice.For(err, o.Endpoint); a != "" {
			fmt.Fprintf(stderr, "modelpub publish: %s\n", a)
		}
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "modelpub publish: interrupted; run the same command again to resume")
		}
		return ExitProblems
	}
	switch {
	case *asJSON:
		out.writeJSON(map[string]any{"step": "result", "result": res})
	case res.DryRun:
		printPlan(stdout, res)
	default:
		if res.NoChanges {
			fmt.Fprintf(stderr, "The Hub already has every file of %s: no commit made.\n", res.Repo)
		}
		fmt.Fprintln(stdout, res.URL)
	}
	return ExitOK
}

// planVerbs are the plan's changes as the dry run prints them.
var planVerbs = map[publish.Change]string{
	publish.ChangeNew: "new", publish.ChangeChanged: "changed", publish.ChangeUnchanged: "unchanged",
	publish.ChangeDeleted: "delete", publish.ChangeKept: "keep", publish.ChangeIgnored: "ignored",
	publish.ChangeUnknown: "send",
}

// printPlan prints a dry run's plan: the target, every path with what
// would happen to it, the totals and the warnings.
func printPlan(w io.Writer, res *publish.Result) {
	switch r := res.Remote; {
	case r == nil:
		fmt.Fprintf(w, "Dry run: %s, not read (no token, or the Hub could not be read): every file is listed to send.\n", res.Repo)
	default:
		fmt.Fprintf(w, "Dry run: %s.\n", safeText(r.Describe()))
	}
	fmt.Fprintf(w, "It would hold %d files, %s (from %s):\n", len(res.Files), tensors.FormatSize(res.Bytes), folder.Printable(res.Folder))
	for _, e := range res.Plan {
		mode := "regular"
		if e.LFS {
			mode = "LFS"
		}
		line := fmt.Sprintf("  %-9s %-64s %10s  %-7s", planVerbs[e.Change], folder.Printable(e.Path), tensors.FormatSize(e.Size), mode)
		if e.Why != "" {
			line += "  " + safeText(e.Why)
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
	s := res.Summary
	if res.Remote == nil {
		fmt.Fprintf(w, "Plan: %d files, %s to send unless the Hub has them.\n", s.Unknown, tensors.FormatSize(s.Bytes))
	} else {
		fmt.Fprintf(w, "Plan: %d new, %d changed (%s to send), %d unchanged, %d to delete, %d only on the Hub (kept).\n",
			s.New, s.Changed, tensors.FormatSize(s.Bytes), s.Unchanged, s.Deleted, s.Kept)
	}
	if s.Estimated {
		fmt.Fprintf(w, "Xet: ≈ %s new of %s (%s already in the local Xet cache).\n",
			tensors.FormatSize(s.Bytes-s.Cached), tensors.FormatSize(s.Bytes), tensors.FormatSize(s.Cached))
	}
	for _, warning := range res.Warnings {
		fmt.Fprintf(w, "Warning: %s\n", safeText(warning))
	}
}

// publishOutput renders events: a line per step message and, on a
// terminal, one status line with the progress of every step running (the
// save, the check and the upload overlap), or JSON lines. It is the one
// throttle of a publish's progress: the status line is drawn, and a byte
// count written as JSON, at most every progressInterval per step.
type publishOutput struct {
	mu       sync.Mutex
	stdout   io.Writer
	stderr   io.Writer
	raw      io.Writer // stderr without escaping, for \r and erase-line
	json     bool
	term     bool
	active   []publish.Event // the latest progress of each running step, in the order they started
	lastJSON map[publish.Step]time.Time
	lastDraw time.Time
	drawn    bool
}

const progressInterval = 100 * time.Millisecond

func newPublishOutput(stdout, stderr io.Writer, asJSON bool) *publishOutput {
	return &publishOutput{stdout: stdout, stderr: stderr, raw: rawWriter(stderr), json: asJSON, term: isTerminal(stderr),
		lastJSON: map[publish.Step]time.Time{}}
}

func (p *publishOutput) writeJSON(v any) {
	b, err := marshalJSON(v)
	if err != nil {
		return
	}
	p.stdout.Write(append(b, '\n'))
}

// isProgress reports an event that only counts bytes.
func isProgress(e publish.Event) bool {
	return e.Message == "" && !e.Done && e.Total > 0 && e.Bytes+e.Deduped < e.Total
}

func (p *publishOutput) event(e publish.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.json {
		if isProgress(e) && now.Sub(p.lastJSON[e.Step]) < progressInterval {
			return
		}
		p.lastJSON[e.Step] = now
		p.writeJSON(e)
		return
	}
	if e.Message != "" {
		p.clear()
		fmt.Fprintf(p.stderr, "%-8s %s\n", e.Step, safeText(e.Message))
	}
	if e.Step == publish.StepCommit || e.Step == publish.StepDone {
		p.active = p.active[:0] // the commit starts once every file is saved, checked and uploaded
	}
	i := slices.IndexFunc(p.active, func(a publish.Event) bool { return a.Step == e.Step })
	switch {
	case e.Done || e.Step == publish.StepDone:
		if i >= 0 {
			p.active = slices.Delete(p.active, i, i+1)
		}
	case e.Total > 0 && i >= 0:
		p.active[i] = e
	case e.Total > 0:
		p.active = append(p.active, e)
	}
	if p.term && (e.Message != "" || now.Sub(p.lastDraw) >= progressInterval) {
		p.draw(now)
	}
}

// draw writes the status line: a bar when one step runs, one segment per
// step when several do.
func (p *publishOutput) draw(now time.Time) {
	p.lastDraw = now
	if len(p.active) == 0 {
		p.clear()
		return
	}
	var line string
	if len(p.active) == 1 {
		e := p.active[0]
		if e.Deduped > 0 {
			line = fmt.Sprintf("%-8s %s%s", e.Step, renderDeduped(e, 30), rateETA(e))
		} else {
			line = fmt.Sprintf("%-8s %s%s", e.Step, renderBar(e.Bytes, e.Total, 30), rateETA(e))
		}
	} else {
		parts := make([]string, len(p.active))
		for i, e := range p.active {
			parts[i] = fmt.Sprintf("%s %3.0f%% of %s%s%s", e.Step, 100*float64(min(e.Total, e.Bytes+e.Deduped))/float64(e.Total),
				tensors.FormatSize(e.Total), dedupedOnly(e), rateOnly(e))
		}
		line = strings.Join(parts, " · ")
	}
	fmt.Fprint(p.raw, "\r"+line+"\x1b[K")
	p.drawn = true
}

// clear erases the status line, so a message takes its place.
func (p *publishOutput) clear() {
	if p.drawn {
		fmt.Fprint(p.raw, "\r\x1b[K")
		p.drawn = false
	}
}

func (p *publishOutput) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.active = nil
	p.clear()
}

// renderDeduped draws the upload's bar when the Hub already held some of
// its bytes: "[####......]  99%  sent 12 MB of 4.2 GB — 4.19 GB already on
// the Hub". The bar counts both: held bytes are done.
func renderDeduped(e publish.Event, width int) string {
	done := min(e.Total, e.Bytes+e.Deduped)
	frac := float64(done) / float64(e.Total)
	n := int(frac * float64(width))
	return fmt.Sprintf("[%s%s] %3.0f%%  sent %s of %s — %s already on the Hub", strings.Repeat("#", n), strings.Repeat(".", width-n),
		frac*100, tensors.FormatSize(e.Bytes), tensors.FormatSize(e.Total), tensors.FormatSize(e.Deduped))
}

// dedupedOnly renders " (4.19 GB already on the Hub)" for a segment of the
// status line, when the Hub held some of the step's bytes.
func dedupedOnly(e publish.Event) string {
	if e.Deduped > 0 {
		return fmt.Sprintf(" (%s already on the Hub)", tensors.FormatSize(e.Deduped))
	}
	return ""
}

// rateOnly renders "  12.3 MB/s" for a segment of the status line.
func rateOnly(e publish.Event) string {
	if e.Rate > 0 {
		return fmt.Sprintf(" %s/s", tensors.FormatSize(int64(e.Rate)))
	}
	return ""
}

// rateETA renders "  12.3 MB/s  ETA 4m10s" for a bar's tail.
func rateETA(e publish.Event) string {
	var b strings.Builder
	if e.Rate > 0 {
		fmt.Fprintf(&b, "  %s/s", tensors.FormatSize(int64(e.Rate)))
	}
	if e.ETA > 0 {
		fmt.Fprintf(&b, "  ETA %s", e.ETA)
	}
	return b.String()
}
