package gui

import (
	"fmt"
	"path/filepath"
	"strings"

	"modelpub/core/folder"
	"modelpub/core/pipeline"
)

// A folder problem is what stops Save locally and Publish on the open
// folder: a model component whose weights cannot be read (a truncated or
// damaged file, a Git LFS pointer, a shard its index names but the folder
// lacks) or that has none. Both jobs would fail on it part-way; the window
// says so before, marks the component in the tree, opens on the Overview,
// and keeps the two actions off until File ▸ Reload finds the folder fixed.

// folderProblem is one component that cannot be saved as it is.
type folderProblem struct {
	component string // its name ("" for a single-model folder)
	label     string // what the window calls it (componentLabel)
	dir       string // the pipeline's folder, left out of the paths shown
	// sets names the weight sets that cannot be read: "main weights",
	// "fp16 variant"; empty when the component has no weights at all.
	sets []string
	err  error // the first set's error; nil when there are no weights
}

// short is "unet cannot be read", "unet has no weights file".
func (fp folderProblem) short() string {
	if fp.err == nil {
		return fp.label + " has no weights file"
	}
	return fp.label + " cannot be read"
}

// long is the full text: which weights and why.
func (fp folderProblem) long() string {
	if fp.err == nil {
		return fp.label + " is a model component without a weights file: Save and Publish need its weights."
	}
	return fmt.Sprintf("%s: its %s cannot be read: %s", fp.label, strings.Join(fp.sets, " and "), relativeText(fp.err, fp.dir))
}

// folderProblems lists the model components of p that Save and Publish
// cannot read, in the order of p.Components; none for a nil p.
func folderProblems(p *pipeline.Pipeline) []folderProblem {
	if p == nil {
		return nil
	}
	var out []folderProblem
	for _, c := range p.Components {
		if c.Null || c.Missing || c.Role != pipeline.RoleModel {
			continue
		}
		fp := folderProblem{component: c.Name, label: componentLabel(p, c), dir: p.Dir}
		if c.Main() == nil {
			out = append(out, fp)
			continue
		}
		for _, ws := range unreadableSets(c) {
			fp.sets = append(fp.sets, lowerFirst(weightSetLabel(ws)))
			if fp.err == nil {
				fp.err = ws.Err
			}
		}
		if fp.err != nil {
			out = append(out, fp)
		}
	}
	return out
}

// unreadableSets are the weight sets of c a save reads (per variant, the
// one its loader reads) that cannot be read.
func unreadableSets(c *pipeline.Component) []*pipeline.WeightSet {
	var out []*pipeline.WeightSet
	for _, ws := range c.Weights {
		if ws.Err != nil && c.WeightSet(ws.Variant, "") == ws {
			out = append(out, ws)
		}
	}
	return out
}

// blockerOf says why Save locally and Publish cannot run on p, in one
// line ("unet cannot be read"), or "" when nothing stops them. The Publish
// panel reads it too.
func blockerOf(p *pipeline.Pipeline) string {
	problems := folderProblems(p)
	switch len(problems) {
	case 0:
		return ""
	case 1:
		return problems[0].short()
	}
	return fmt.Sprintf("%s (and %s)", problems[0].short(), plural(len(problems)-1, "other component", "other components"))
}

// blocker says why Save locally and Publish cannot run on the open folder,
// "" when they can.
func (u *UI) blocker() string { return blockerOf(u.pipeline) }

// lowerFirst is s with its first letter in lower case: "Main weights"
// inside a sentence.
func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// relativeText is err's message with the paths inside dir written
// relative to it: "unet/diffusion_pytorch_model.safetensors: file is
// truncated", not the whole path, which says nothing more.
func relativeText(err error, dir string) string {
	if err == nil {
		return ""
	}
	return strings.ReplaceAll(folder.Reason(err), dir+string(filepath.Separator), "")
}

// namesFile reports whether an error's text names the file called name (a
// bare file name), as a whole name, not as the start of a longer one.
func namesFile(text, name string) bool {
	for i := 0; ; {
		j := strings.Index(text[i:], name)
		if j < 0 {
			return false
		}
		end := i + j + len(name)
		if end == len(text) || !isNameByte(text[end]) {
			return true
		}
		i = end
	}
}

func isNameByte(b byte) bool {
	return b == '.' || b == '-' || b == '_' || '0' <= b && b <= '9' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z'
}
