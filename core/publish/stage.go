package publish

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"modelpub/core/pipeline"
	"modelpub/core/tensors"
)

// stagingFormat changes when Save's output for the same inputs changes, so
// stagings made by an older Modelpub are not reused.
const stagingFormat = "1"

// staging is the folder the upload is made from.
type staging struct {
	dir    string // the staged folder, or the source itself when asIs
	asIs   bool
	reused bool   // a complete staging of the same inputs is there
	key    string // the staging's inputs: the source's fingerprint and the options
	stamp  string // where the checked files of dir are recorded
}

// sourceKey names a source folder in the cache: a hash of its absolute path.
func sourceKey(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	sum := sha256.Sum256([]byte(abs))
	return hex.EncodeToString(sum[:6])
}

// derive names inputs made of the run's fingerprint and other strings.
func derive(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%s\x00", p)
	}
	return hex.EncodeToString(h.Sum(nil)[:10])
}

// stage decides the folder the upload is made from: the source itself when
// it is already in the wanted form, else the staging folder of these
// inputs, reused when complete. Nothing is written here: the producer
// saves while the upload runs.
func (j *job) stage(src *pipeline.Pipeline) (*staging, error) {
	if ok, why := inWantedForm(src, j.opts); ok {
		j.res.Folder, j.res.AsIs = src.Dir, true
		j.ev.emit(Event{Step: StepStage, Done: true, Message: "the folder is already safetensors in the wanted layout: its files are uploaded as they are"})
		return &staging{dir: src.Dir, asIs: true}, nil
	} else {
		j.ev.emit(Event{Step: StepStage, Message: "staging: " + why})
	}
	key := derive(j.fingerprint, "staged", stagingFormat, j.opts.Version, fmt.Sprint(j.opts.MaxShardSize), j.opts.Variant)
	root := filepath.Join(j.cache, "staging")
	skey := sourceKey(src.Dir)
	dst := filepath.Join(root, skey+"-"+key)
	cleanStagings(root, skey, filepath.Base(dst))
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	s := &staging{dir: dst, key: key, stamp: dst + ".valid.json"}
	s.reused = pipeline.Complete(dst)
	j.res.Folder = dst
	return s, nil
}

// cleanStagings removes the other stagings of the same source (older
// inputs) and the temporary folders of interrupted saves, keeping keep.
func cleanStagings(root, skey, keep string) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if name == keep || name == keep+".valid.json" {
			continue
		}
		if strings.HasPrefix(name, skey+"-") || strings.HasPrefix(name, "."+skey+"-") {
			os.RemoveAll(filepath.Join(root, name))
		}
	}
}

// inWantedForm reports whether src can be uploaded as it is: every model's
// weights in safetensors with format "pt" metadata, current file names,
// the wanted variant present, and every file within the wanted shard size.
// If not, it says why.
func inWantedForm(src *pipeline.Pipeline, opts Options) (bool, string) {
	for _, c := range src.Components {
		if c.Null || c.Role != pipeline.RoleModel {
			continue
		}
		name := c.Name
		if name == "" {
			name = "the model"
		}
		for _, f := range c.Files {
			if f.LFSPointer {
				return false, f.Path + " is a Git LFS pointer"
			}
		}
		if c.Main() == nil {
			return false, name + " has no main weights in safetensors"
		}
		if len(c.Ambiguous()) > 0 {
			return false, name + " holds two layouts of the same weights"
		}
		if opts.Variant != "" && c.WeightSet(opts.Variant, "safetensors") == nil {
			return false, name + " has no " + opts.Variant + " variant yet"
		}
		for _, ws := range c.Weights {
			switch {
			case ws.Err != nil:
				return false, ws.Err.Error()
			case ws.Format != "safetensors":
				return false, name + " has " + ws.Format + " weights to convert to safetensors"
			case ws.LegacyNames:
				return false, name + " uses the deprecated variant file names"
			}
			for i, f := range ws.Files {
				if ws.Formats[i] != "pt" {
					return false, fmt.Sprintf("%s/%s lacks the {\"format\": \"pt\"} metadata transformers needs", c.Name, f)
				}
			}
		}
	}
	if opts.MaxShardSize > 0 {
		// The wanted layout is the one Save would write: same files, same names.
		plan, err := pipeline.Plan(src, pipeline.SaveOptions{MaxShardSize: opts.MaxShardSize, Variant: opts.Variant})
		if err != nil {
			return false, err.Error()
		}
		for _, cp := range plan.Components {
			c := src.Component(cp.Name)
			if c == nil {
				continue
			}
			for _, set := range cp.Sets {
				cur := pipeline.CurrentLayout(c, set.Variant)
				if cur == nil || !sameFiles(cur.Files, set.Files) {
					return false, fmt.Sprintf("%s is not split as %s shards would be", displayName(cp.Name), tensors.FormatSize(opts.MaxShardSize))
				}
			}
		}
	}
	return true, ""
}

func sameFiles(a, b []pipeline.PlannedFile) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name {
			return false
		}
	}
	return true
}

func displayName(component string) string {
	if component == "" {
		return "the model"
	}
	return component
}

// dropStaging removes the staged folder, its validation stamp and the
// upload view once the Hub has everything: a model's worth of disk is not
// kept in the cache for nothing. The source itself (as-is) is never touched.
func (j *job) dropStaging(s *staging) {
	if s.asIs {
		return
	}
	size, _ := dirSize(s.dir)
	if err := os.RemoveAll(s.dir); err != nil {
		j.ev.emit(Event{Step: StepDone, Message: "could not remove the staging folder: " + err.Error()})
		return
	}
	os.Remove(s.stamp)
	j.res.StagingRemoved = true
	j.ev.emit(Event{Step: StepDone, Message: fmt.Sprintf("removed the staging folder (%s); keep it next time with --keep-staging", tensors.FormatSize(size))})
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return nil
	})
	return n, err
}
