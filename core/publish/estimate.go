package publish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"modelpub/core/folder"
	"modelpub/core/hub"
	"modelpub/core/hub/xet"
	"modelpub/core/tensors"
)

// estimateCacheBudget is the budget the dry run opens the shard cache
// with: larger than any the upload keeps, so opening it never evicts a
// shard the next upload would use.
const estimateCacheBudget = 1 << 40

// estimate fills the summary's Cached for a dry run that may use Xet: the
// large files the plan would send are cut into chunks as an upload cuts
// them, and each chunk is looked up in the local Xet shard cache (what
// this computer uploaded or learnt before). The files are streamed through
// the chunker's fixed buffer. Without a cache holding anything, nothing is
// read. A
// cache or a file that cannot be read only leaves the estimate out, with
// a message: it is an estimate.
func (j *job) estimate(ctx context.Context, files []localFile) error {
	if j.opts.Transfer == hub.TransferLFS {
		return nil
	}
	byPath := make(map[string]*localFile, len(files))
	for i := range files {
		byPath[files[i].Path] = &files[i]
	}
	var send []*localFile
	var total int64
	for _, e := range j.res.Plan {
		switch e.Change {
		case ChangeNew, ChangeChanged, ChangeUnknown:
		default:
			continue
		}
		if f := byPath[e.Path]; f != nil && e.LFS && f.abs != "" {
			send = append(send, f)
			total += f.Size
		}
	}
	caches, err := openEstimateCaches()
	if err != nil {
		j.ev.emit(Event{Step: StepUpload, Phase: "estimate", Message: "no estimate of the new bytes: " + err.Error()})
		return nil
	}
	if len(caches) == 0 || len(send) == 0 {
		j.res.Summary.Estimated = true // nothing cached, or nothing large to send: nothing is known
		return nil
	}
	j.ev.emit(Event{Step: StepUpload, Phase: "estimate", Total: total,
		Message: fmt.Sprintf("estimating the new bytes of %s (%s) from the local Xet cache", plural(len(send), "file"), tensors.FormatSize(total))})
	est := xet.NewEstimate(caches...)
	var done int64
	for _, f := range send {
		if err := j.estimateFile(ctx, est, f, &done, total); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			j.ev.emit(Event{Step: StepUpload, Phase: "estimate", Message: "no estimate of the new bytes: " + err.Error()})
			return nil
		}
	}
	j.res.Summary.Estimated = true
	j.res.Summary.Cached = est.Total - est.New
	j.ev.emit(Event{Step: StepUpload, Phase: "estimate", Bytes: total, Total: total,
		Message: fmt.Sprintf("≈ %s new of %s (%s already in the local Xet cache)", tensors.FormatSize(est.New),
			tensors.FormatSize(est.Total), tensors.FormatSize(est.Total-est.New))})
	return nil
}

// estimateFile adds one file to est, reporting the bytes read.
func (j *job) estimateFile(ctx context.Context, est *xet.Estimate, f *localFile, done *int64, total int64) error {
	r, err := folder.OpenRegular(f.abs)
	if err != nil {
		return err
	}
	defer r.Close()
	cr := &countingReader{r: r, add: func(n int64) {
		*done += n
		j.ev.progress(Event{Step: StepUpload, Phase: "estimate", File: f.Path, Bytes: *done, Total: total})
	}}
	_, err = est.Add(ctx, cr)
	return err
}

// openEstimateCaches opens the local Xet shard caches uploads keep:
// core/hub keeps one per CAS under xet.DefaultShardCacheDir, and which CAS
// the Hub names is known only from a write token, which a dry run does not
// ask for; so every one is asked (a computer publishes to one Hub, as a
// rule). Empty ones are left out; a dry run creates none.
func openEstimateCaches() ([]*xet.ShardCache, error) {
	root, err := xet.DefaultShardCacheDir()
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*xet.ShardCache
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		c, err := xet.OpenShardCache(filepath.Join(root, e.Name()), estimateCacheBudget, nil)
		if err != nil {
			return nil, err
		}
		if c.Size() > 0 {
			out = append(out, c)
		}
	}
	return out, nil
}

// countingReader reports the bytes read through it.
type countingReader struct {
	r   io.Reader
	add func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.add(int64(n))
	}
	return n, err
}
