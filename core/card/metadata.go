package card

import (
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Metadata is a typed view of the metadata keys Modelpub reads and writes.
// Other keys (datasets, widget, instance_prompt, …) are reached with Get
// and Set.
type Metadata struct {
	LibraryName string   // library_name: "diffusers", "transformers", …
	PipelineTag string   // pipeline_tag: the Hub task, e.g. "text-to-image"
	License     string   // license: an id from Licenses, or "other"
	LicenseName string   // license_name: a short id for an "other" license
	LicenseLink string   // license_link: "LICENSE", "LICENSE.md" or a URL, for an "other" license
	BaseModel   []string // base_model: repo ids; a scalar in YAML when one
	Tags        []string // tags
	Language    []string // language: a scalar or a list in YAML
}

// ModelCardDataOrder is the order of huggingface_hub's ModelCardData
// fields, in which new keys are appended.
var ModelCardDataOrder = []string{"base_model", "datasets", "eval_results", "language", "library_name", "license",
	"license_name", "license_link", "metrics", "model_name", "pipeline_tag", "tags"}

// metadataKeys are the keys Metadata covers.
var metadataKeys = []string{"base_model", "language", "library_name", "license", "license_name", "license_link", "pipeline_tag", "tags"}

func isMetadataKey(k string) bool { return slices.Contains(metadataKeys, k) }

// Metadata returns the typed view of the known keys. A scalar that is not
// a string (license: 2) is read as its text; a null is empty; list entries
// that are not scalars are left out (Validate reports them).
func (c *Card) Metadata() Metadata {
	return Metadata{
		LibraryName: c.str("library_name"),
		PipelineTag: c.str("pipeline_tag"),
		License:     c.str("license"),
		LicenseName: c.str("license_name"),
		LicenseLink: c.str("license_link"),
		BaseModel:   c.list("base_model"),
		Tags:        c.list("tags"),
		Language:    c.list("language"),
	}
}

func (c *Card) str(key string) string {
	s, _ := scalarText(c.lookup(key))
	return s
}

func (c *Card) list(key string) []string {
	n := c.lookup(key)
	if s, ok := scalarText(n); ok {
		return []string{s}
	}
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	var out []string
	for _, item := range n.Content {
		if s, ok := scalarText(item); ok {
			out = append(out, s)
		}
	}
	return out
}

// SetMetadata sets the known keys from m. Only fields that differ from
// Metadata() change anything, so SetMetadata(c.Metadata()) changes nothing
// and a key whose value reads the same is kept as written (style, comments).
// A key whose field became empty is removed (a key the typed view reads as
// empty, such as "license:" or a mapping under tags, is left alone: use
// Delete); others are set in place, and new ones appended in
// ModelCardDataOrder. Unknown keys and the order of existing keys are kept.
// Lists reuse the entries (and their comments) that stay.
func (c *Card) SetMetadata(m Metadata) {
	c.setList("base_model", m.BaseModel, true)
	c.setList("language", m.Language, false)
	c.setString("library_name", m.LibraryName)
	c.setString("license", m.License)
	c.setString("license_name", m.LicenseName)
	c.setString("license_link", m.LicenseLink)
	c.setString("pipeline_tag", m.PipelineTag)
	c.setList("tags", m.Tags, false)
}

func (c *Card) setString(key, want string) {
	if c.str(key) == want {
		return
	}
	if want == "" {
		c.Delete(key)
		return
	}
	c.setNode(key, strNode(want))
}

// setList sets a list key; scalarWhenOne writes a single entry as a
// scalar (as for base_model). An existing scalar stays a scalar while it
// holds one entry, an existing list stays a list.
func (c *Card) setList(key string, want []string, scalarWhenOne bool) {
	old := c.lookup(key)
	if slices.Equal(c.list(key), want) {
		return
	}
	if len(want) == 0 {
		c.Delete(key)
		return
	}
	oldScalar := old != nil && old.Kind == yaml.ScalarNode && !isNull(old)
	if len(want) == 1 && (oldScalar || (scalarWhenOne && (old == nil || old.Kind != yaml.SequenceNode))) {
		c.setNode(key, strNode(want[0]))
		return
	}
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	// The old entries that are plain scalars, by text, in order: each
	// wanted value reuses the first one left with its text.
	unused := map[string][]*yaml.Node{}
	if old != nil && old.Kind == yaml.SequenceNode {
		seq.Style = old.Style
		for _, u := range old.Content {
			if s, ok := scalarText(u); ok && u.Kind == yaml.ScalarNode {
				unused[s] = append(unused[s], u)
			}
		}
	}
	for _, w := range want {
		item := strNode(w)
		if us := unused[w]; len(us) > 0 {
			item, unused[w] = us[0], us[1:]
		}
		seq.Content = append(seq.Content, item)
	}
	c.setNode(key, seq)
}

// Merge combines a card already in place (remote: the README.md on the Hub,
// or the one in the folder) with a newer one (local: generated or given):
// the result has remote's keys, order, comments and unknown keys; each
// known key (see Metadata) that local sets overrides remote's; tags are the
// union, remote's first, then local's new ones, without duplicates; unknown
// keys that only local has are appended. The body is remote's when
// keepRemoteBody, unless remote's is blank, and local's otherwise. Neither
// input is changed. A nil remote gives a copy of local.
func Merge(remote, local *Card, keepRemoteBody bool) *Card {
	switch {
	case remote == nil && local == nil:
		return New()
	case remote == nil:
		return local.clone()
	case local == nil:
		return remote.clone()
	}
	out := remote.clone()
	m, l := out.Metadata(), local.Metadata()
	remoteOther := m.License == "other"
	for _, f := range []struct {
		dst *string
		src string
	}{
		{&m.LibraryName, l.LibraryName}, {&m.PipelineTag, l.PipelineTag}, {&m.License, l.License},
		{&m.LicenseName, l.LicenseName}, {&m.LicenseLink, l.LicenseLink},
	} {
		if f.src != "" {
			*f.dst = f.src
		}
	}
	if len(l.BaseModel) > 0 {
		m.BaseModel = l.BaseModel
	}
	if len(l.Language) > 0 {
		m.Language = l.Language
	}
	m.Tags = union(m.Tags, l.Tags)
	if remoteOther && l.License != "" && l.License != "other" && l.LicenseName == "" {
		// A license from the list replaces an "other" one with its name.
		m.LicenseName, m.LicenseLink = "", ""
	}
	out.SetMetadata(m)

	lm, om := local.mapping(), out.mapping()
	have := make(map[string]bool, len(om.Content)/2)
	for i := 0; i+1 < len(om.Content); i += 2 {
		have[om.Content[i].Value] = true
	}
	d := newDetacher()
	for i := 0; i+1 < len(lm.Content); i += 2 {
		k := lm.Content[i].Value
		if isMetadataKey(k) || have[k] {
			continue
		}
		have[k] = true
		om.Content = append(om.Content, d.detach(lm.Content[i]), d.detach(lm.Content[i+1]))
	}
	if !keepRemoteBody || strings.TrimSpace(out.body) == "" {
		out.body = local.body
	}
	return out
}

// union returns a followed by b's entries that a lacks, without duplicates.
func union(a, b []string) []string {
	var out []string
	seen := make(map[string]bool, len(a)+len(b))
	for _, s := range slices.Concat(a, b) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
