package publish

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"

	"modelpub/core/hub"
	"modelpub/core/pipeline"
	"modelpub/core/tensors"
)

// Change is what a publish does to one path of the repository.
type Change string

// The changes of a path.
const (
	ChangeNew       Change = "new"       // not on the Hub: sent
	ChangeChanged   Change = "changed"   // on the Hub with other content: sent
	ChangeUnchanged Change = "unchanged" // the same content is on the Hub: nothing sent
	ChangeDeleted   Change = "deleted"   // on the Hub, not published: deleted in the same commit
	ChangeKept      Change = "kept"      // only on the Hub: left as it is
	ChangeIgnored   Change = "ignored"   // excluded by the repository's .gitignore: not sent
	// ChangeUnknown: the Hub was not read (a dry run without a token), so
	// the file is sent unless the Hub turns out to hold it.
	ChangeUnknown Change = "unknown"
)

// PlanEntry is one path of the plan: a file of the published layout or a
// file only on the Hub.
type PlanEntry struct {
	Path   string `json:"path"`
	Change Change `json:"change"`
	Size   int64  `json:"size"`          // the published file's size; the Hub's for deleted and kept files
	LFS    bool   `json:"lfs,omitempty"` // stored through Git LFS
	// Bytes is what is sent for it: in a plan, its size when new, changed
	// or unknown; after the upload, the bytes actually sent (0 when the
	// Hub already stored the object).
	Bytes int64  `json:"bytes"`
	Why   string `json:"why,omitempty"` // deleted and kept files: why
}

// Summary counts a plan, or after a publish what the upload did.
type Summary struct {
	New       int   `json:"new"`
	Changed   int   `json:"changed"`
	Unchanged int   `json:"unchanged"`
	Deleted   int   `json:"deleted"`
	Kept      int   `json:"kept"`
	Ignored   int   `json:"ignored,omitempty"`
	Unknown   int   `json:"unknown,omitempty"`
	Sent      int   `json:"sent"`             // files whose content is (or would be) sent
	Stored    int   `json:"stored,omitempty"` // new or changed files whose content the Hub already stored: committed, not sent
	Bytes     int64 `json:"bytes"`            // bytes sent (or to send)
	// Deduped, after a publish, is the bytes of the files sent that were
	// not sent because the Hub already held them (Xet chunks).
	Deduped int64 `json:"deduped,omitempty"`
	// Estimated says a dry run chunked the files to send and looked their
	// chunks up in the local Xet shard cache (not with --transfer lfs);
	// Cached is the bytes it found there: an upload would send about
	// Bytes - Cached.
	Estimated bool  `json:"estimated,omitempty"`
	Cached    int64 `json:"cached,omitempty"`
}

func summarize(plan []PlanEntry) Summary {
	var s Summary
	for _, e := range plan {
		switch e.Change {
		case ChangeNew:
			s.New++
		case ChangeChanged:
			s.Changed++
		case ChangeUnchanged:
			s.Unchanged++
		case ChangeDeleted:
			s.Deleted++
		case ChangeKept:
			s.Kept++
		case ChangeIgnored:
			s.Ignored++
		case ChangeUnknown:
			s.Unknown++
		}
		s.Bytes += e.Bytes
	}
	return s
}

// String says it the way the CLI prints it: "1 file sent (1.28 KB), 18
// unchanged, 6 deleted".
func (s Summary) String() string {
	var parts []string
	if s.Unknown > 0 {
		parts = append(parts, fmt.Sprintf("%s (%s) to send unless the Hub has them", plural(s.Unknown, "file"), tensors.FormatSize(s.Bytes)))
	} else if s.Deduped > 0 {
		parts = append(parts, fmt.Sprintf("%s sent (%s; %s already on the Hub)", plural(s.Sent, "file"),
			tensors.FormatSize(s.Bytes), tensors.FormatSize(s.Deduped)))
	} else {
		parts = append(parts, fmt.Sprintf("%s sent (%s)", plural(s.Sent, "file"), tensors.FormatSize(s.Bytes)))
	}
	if s.Stored > 0 {
		parts = append(parts, fmt.Sprintf("%d committed that the Hub already stored", s.Stored))
	}
	parts = append(parts, fmt.Sprintf("%d unchanged", s.Unchanged), fmt.Sprintf("%d deleted", s.Deleted))
	if s.Kept > 0 {
		parts = append(parts, fmt.Sprintf("%d only on the Hub (kept)", s.Kept))
	}
	if s.Ignored > 0 {
		parts = append(parts, fmt.Sprintf("%d ignored by the repository's .gitignore", s.Ignored))
	}
	return strings.Join(parts, ", ")
}

// planString is Summary.String in the future tense, for a plan.
func planString(s Summary) string {
	if s.Unknown > 0 {
		return fmt.Sprintf("the Hub was not read: %s (%s%s) would be sent unless the Hub has them", plural(s.Unknown, "file"),
			tensors.FormatSize(s.Bytes), s.estimate())
	}
	parts := []string{fmt.Sprintf("%d new, %d changed (%s to send%s)", s.New, s.Changed, tensors.FormatSize(s.Bytes), s.estimate()),
		fmt.Sprintf("%d unchanged", s.Unchanged), fmt.Sprintf("%d to delete", s.Deleted)}
	if s.Kept > 0 {
		parts = append(parts, fmt.Sprintf("%d only on the Hub (kept)", s.Kept))
	}
	return strings.Join(parts, ", ")
}

// estimate is "; ≈ 12 MB new, 4.19 GB already in the local Xet cache"
// when the dry run estimated, else "".
func (s Summary) estimate() string {
	if !s.Estimated {
		return ""
	}
	return fmt.Sprintf("; ≈ %s new, %s already in the local Xet cache", tensors.FormatSize(s.Bytes-s.Cached), tensors.FormatSize(s.Cached))
}

// scope is where the published layout decides which weight files belong:
// the root and the folder of every component the published model_index.json
// lists (a single-model folder: the root), with each one's library.
type scope map[string]string // folder ("" for the root) → library

func layoutScope(p *pipeline.Pipeline) scope {
	sc := scope{"": "diffusers"}
	if p.Index == nil {
		if len(p.Components) == 1 && p.Components[0].Library != "" {
			sc[""] = p.Components[0].Library
		}
		return sc
	}
	for _, c := range p.Components {
		if c.Null || c.Name == "" {
			continue
		}
		sc[c.Name] = c.Library
	}
	return sc
}

// weightsFile is a weights or index file name taken apart.
type weightsFile struct {
	dir, name string
	base      string
	variant   string
	ext       string // "safetensors" or "bin"
	index     bool
	shard     bool
}

// parseWeights recognises a weights file (any variant, sharded or not)
// or a shard index, as diffusers and transformers name them.
func parseWeights(p string) (weightsFile, bool) {
	dir, name := path.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	if w, ok := tensors.ParseWeightsFileName(name); ok {
		return weightsFile{dir: dir, name: name, base: w.Base, variant: w.Variant, ext: w.Ext, shard: w.Sharded()}, true
	}
	if ix, ok := tensors.ParseIndexFileName(name); ok {
		return weightsFile{dir: dir, name: name, base: ix.Base, variant: ix.Variant, ext: ix.Ext, index: true}, true
	}
	return weightsFile{}, false
}

// stale reports whether a file only on the Hub is weights of a folder the
// published layout decides.
func (sc scope) stale(p string) (weightsFile, bool) {
	w, ok := parseWeights(p)
	if !ok || !pipeline.IsWeightsBase(w.base) {
		return w, false // a root checkpoint (v1-5-pruned.safetensors) is not a loader's weights
	}
	_, in := sc[w.dir]
	return w, in
}

// diff compares the published files with the Hub's (nil: not read) and
// returns the plan, in path order. Files of the same path and size are
// compared by content: with the digests the producer learnt, else through
// the hash cache.
func (j *job) diff(ctx context.Context, files []localFile, remote *Remote, sc scope, hc *hub.HashCache) ([]PlanEntry, error) {
	var plan []PlanEntry
	published := make(map[string]bool, len(files))
	var toHash []int
	var hashBytes int64
	for _, f := range files {
		published[f.Path] = true
		e := PlanEntry{Path: f.Path, Size: f.Size, LFS: f.LFS, Change: ChangeNew, Bytes: f.Size}
		switch r := remote.file(f.Path); {
		case remote == nil:
			e.Change = ChangeUnknown
		case r == nil:
		case r.Size != f.Size:
			e.Change, e.LFS = ChangeChanged, f.LFS || r.LFSOID != ""
		default:
			e.LFS = r.LFSOID != ""
			toHash = append(toHash, len(plan))
			hashBytes += f.Size
		}
		plan = append(plan, e)
	}
	if len(toHash) > 0 {
		j.ev.emit(Event{Step: StepUpload, Phase: "compare", Total: hashBytes,
			Message: fmt.Sprintf("comparing %s with the Hub's (%s; cached hashes are reused)", plural(len(toHash), "file"), tensors.FormatSize(hashBytes))})
	}
	var done int64
	for _, i := range toHash {
		e := &plan[i]
		r := remote.file(e.Path)
		h, err := files[i].hashes(ctx, hc, e.LFS, func(n int64) {
			done += n
			j.ev.progress(Event{Step: StepUpload, Phase: "compare", File: e.Path, Bytes: done, Total: hashBytes})
		})
		if err != nil {
			return nil, err
		}
		same := h.SHA1 == r.OID
		if e.LFS {
			same = h.SHA256 == r.LFSOID
		}
		if same {
			e.Change, e.Bytes = ChangeUnchanged, 0
		} else {
			e.Change = ChangeChanged
		}
	}
	if remote != nil {
		for _, r := range remote.Files {
			if published[r.Path] {
				continue
			}
			plan = append(plan, j.remoteOnly(r, sc))
		}
	}
	sort.Slice(plan, func(a, b int) bool { return plan[a].Path < plan[b].Path })
	return plan, nil
}

// remoteOnly decides what becomes of a file only on the Hub.
func (j *job) remoteOnly(r RemoteFile, sc scope) PlanEntry {
	e := PlanEntry{Path: r.Path, Size: r.Size, LFS: r.LFSOID != "", Change: ChangeKept}
	w, stale := sc.stale(r.Path)
	switch {
	case r.Path == ".gitattributes":
		e.Why = "the repository's own settings"
	case stale && j.opts.NoDelete:
		e.Why = "weights not in the published layout, kept as asked (--no-delete)"
	case stale:
		e.Change, e.Why = ChangeDeleted, "weights of "+folderName(w.dir)+" not in the published layout"
	case j.opts.DeleteExtra:
		e.Change, e.Why = ChangeDeleted, "not published (--delete-extra)"
	default:
		e.Why = "not published; kept (--delete-extra deletes it)"
	}
	return e
}

func folderName(dir string) string {
	if dir == "" {
		return "the root"
	}
	return dir + "/"
}

// deletions are the paths the plan deletes.
func deletions(plan []PlanEntry) []string {
	var out []string
	for _, e := range plan {
		if e.Change == ChangeDeleted {
			out = append(out, e.Path)
		}
	}
	return out
}

// ambiguities says, for weight files the plan keeps beside the published
// layout (--no-delete), what diffusers or transformers would load.
func ambiguities(plan []PlanEntry, sc scope) []string {
	type key struct{ dir, variant, ext string }
	published := map[key][]weightsFile{}
	kept := map[key][]weightsFile{}
	var keys []key
	for _, e := range plan {
		w, ok := sc.stale(e.Path)
		if !ok {
			continue
		}
		k := key{w.dir, w.variant, w.ext}
		switch e.Change {
		case ChangeKept:
			if len(kept[k]) == 0 {
				keys = append(keys, k)
			}
			kept[k] = append(kept[k], w)
		case ChangeDeleted:
		default:
			published[k] = append(published[k], w)
		}
	}
	var out []string
	for _, k := range keys {
		old, pub := kept[k], published[k]
		where := folderName(k.dir)
		loader := sc[k.dir]
		if loader == "" {
			loader = "diffusers"
		}
		oldIndex, pubIndex := findIndex(old), findIndex(pub)
		pubSingle := findSingle(pub)
		switch {
		case len(pub) == 0 && k.variant != "":
			out = append(out, fmt.Sprintf("%s would keep the stale %s weights (%s): variant=%q loads them, not the published weights",
				where, k.variant, names(old), k.variant))
		case len(pub) == 0:
			out = append(out, fmt.Sprintf("%s would keep the stale %s beside the published weights: a loader looking for %s files reads them",
				where, names(old), k.ext))
		case oldIndex != nil && pubIndex == nil && pubSingle != nil:
			if loader == "transformers" {
				out = append(out, fmt.Sprintf("%s would hold both %s and the stale %s: transformers loads %s, other tools may read the stale index",
					where, pubSingle.name, oldIndex.name, pubSingle.name))
			} else {
				out = append(out, fmt.Sprintf("%s would hold both %s and the stale %s: diffusers loads the index",
					where, pubSingle.name, oldIndex.name))
			}
		case oldIndex == nil && pubIndex != nil && findSingle(old) != nil:
			if loader == "transformers" {
				out = append(out, fmt.Sprintf("%s would hold both %s and the stale %s: transformers loads the stale single file",
					where, pubIndex.name, findSingle(old).name))
			} else {
				out = append(out, fmt.Sprintf("%s would hold both %s and the stale %s: diffusers loads the index, transformers and other tools the stale single file",
					where, pubIndex.name, findSingle(old).name))
			}
		case oldIndex != nil && pubIndex != nil:
			out = append(out, fmt.Sprintf("%s would hold both %s and the stale %s: two indexes of one weight set", where, pubIndex.name, oldIndex.name))
		default:
			out = append(out, fmt.Sprintf("%s would keep the stale %s, which the published layout does not name", where, names(old)))
		}
	}
	return out
}

func findIndex(ws []weightsFile) *weightsFile {
	for i := range ws {
		if ws[i].index {
			return &ws[i]
		}
	}
	return nil
}

func findSingle(ws []weightsFile) *weightsFile {
	for i := range ws {
		if !ws[i].index && !ws[i].shard {
			return &ws[i]
		}
	}
	return nil
}

func names(ws []weightsFile) string {
	n := make([]string, len(ws))
	for i, w := range ws {
		n[i] = w.name
	}
	if len(n) > 3 {
		return strings.Join(n[:3], ", ") + fmt.Sprintf(" and %d more", len(n)-3)
	}
	return strings.Join(n, ", ")
}
