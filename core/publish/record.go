package publish

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"modelpub/core/atomicfile"
	"modelpub/core/pipeline"
)

// record remembers the last publish of a source folder: what went in (a
// fingerprint of the source's files and of every option that shapes the
// upload) and the commit it made. Publishing the same again while the
// branch still points at that commit has nothing to do, and says so at
// once, without staging a model's worth of files again.
type record struct {
	Key  string `json:"key"`
	Repo string `json:"repo"`
	Rev  string `json:"revision"`
	Head string `json:"head"` // the commit the publish left the branch at
	URL  string `json:"url"`
}

func (j *job) recordPath(src *pipeline.Pipeline) string {
	return filepath.Join(j.cache, "published", sourceKey(src.Dir)+".json")
}

// recordKey fingerprints everything that decides what a publish of src
// uploads.
func (j *job) recordKey(src *pipeline.Pipeline) (string, error) {
	o := j.opts
	cardBytes := []byte(nil)
	if o.Card != nil {
		var err error
		if cardBytes, err = o.Card.Bytes(); err != nil {
			return "", err
		}
	}
	sum := sha256.Sum256(cardBytes)
	// The source's README.md counts (the run's fingerprint leaves it out).
	readme, err := src.Files().ReadFile(readmeName, 0)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	own := sha256.Sum256(readme)
	return derive(j.fingerprint, "published", stagingFormat, o.Version, j.id.String(), j.revision(),
		fmt.Sprint(o.MaxShardSize), o.Variant, o.License, o.LicenseName, o.BaseModel,
		fmt.Sprint(o.ReplaceBody), hex.EncodeToString(sum[:]), hex.EncodeToString(own[:]), fmt.Sprint(o.DeleteExtra), fmt.Sprint(o.NoDelete)), nil
}

// revision is the branch the publish commits to.
func (j *job) revision() string {
	if j.opts.Branch != "" {
		return j.opts.Branch
	}
	return "main"
}

// alreadyPublished reports whether the last publish of src had the same
// inputs and its commit is still the head of the branch; it then fills in
// the result.
func (j *job) alreadyPublished(src *pipeline.Pipeline) bool {
	if j.opts.DryRun || j.opts.CreatePR {
		return false
	}
	b, err := os.ReadFile(j.recordPath(src))
	if err != nil {
		return false
	}
	var r record
	if json.Unmarshal(b, &r) != nil {
		return false
	}
	key, err := j.recordKey(src)
	if err != nil || r.Key != key || r.Repo != j.id.String() || r.Rev != j.revision() {
		return false
	}
	// The head read before staging: the branch must still be where the
	// last publish left it.
	if j.remote == nil || !j.remote.BranchExists || j.remote.Head == nil || j.remote.Head.ID != r.Head {
		return false
	}
	j.res.NoChanges, j.res.URL, j.res.CommitURL = true, r.URL, r.URL
	return true
}

// remember records a finished publish (commits only: a pull request
// leaves the branch as it was).
func (j *job) remember(src *pipeline.Pipeline, head string) {
	if j.opts.CreatePR || head == "" {
		return
	}
	key, err := j.recordKey(src)
	if err != nil {
		return
	}
	b, err := json.Marshal(record{Key: key, Repo: j.id.String(), Rev: j.revision(), Head: head, URL: j.res.CommitURL})
	if err != nil {
		return
	}
	if os.MkdirAll(filepath.Dir(j.recordPath(src)), 0o755) == nil {
		atomicfile.WriteFile(j.recordPath(src), b, 0o644)
	}
}
