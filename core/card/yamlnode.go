package card

import (
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxDepth bounds the recursion over node trees. It is above go-yaml's own
// nesting limit (10000), so every tree Parse returns is walked whole.
const maxDepth = 10100

// maxExpanded bounds the nodes a detacher creates by expanding aliases: a
// small document can name an anchor that names an anchor... ("billion
// laughs"). The budget is shared by every node one Merge detaches, not
// given to each key. Nodes copied as they are need no budget: there are no
// more of them than the parse limits let in.
const maxExpanded = 20_000

// deref follows aliases to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// copyNode deep-copies a node tree; aliases point into the copy.
func copyNode(n *yaml.Node) *yaml.Node {
	memo := map[*yaml.Node]*yaml.Node{}
	var cp func(*yaml.Node) *yaml.Node
	cp = func(n *yaml.Node) *yaml.Node {
		if n == nil {
			return nil
		}
		if c, ok := memo[n]; ok {
			return c
		}
		c := new(yaml.Node)
		memo[n] = c
		*c = *n
		if n.Content != nil {
			c.Content = make([]*yaml.Node, len(n.Content))
			for i, ch := range n.Content {
				c.Content[i] = cp(ch)
			}
		}
		c.Alias = cp(n.Alias)
		return c
	}
	return cp(n)
}

// shallowCopy copies a document and its top-level mapping, the node and its
// Content slice; the nodes under the mapping are shared with doc. That is
// enough for a copy that changes independently of doc, because a Card only
// ever changes its metadata at that level: it replaces a key's value node,
// adds and removes pairs, and never edits a node it did not just create
// (Set detaches what it is given). A deep copy of a million keys would
// cost hundreds of megabytes each time a card is parsed or cloned.
func shallowCopy(doc *yaml.Node) *yaml.Node {
	if doc == nil {
		return nil
	}
	d := *doc
	d.Content = slices.Clone(doc.Content)
	if len(d.Content) == 1 && d.Content[0] != nil {
		m := *d.Content[0]
		m.Content = slices.Clone(m.Content)
		d.Content[0] = &m
	}
	return &d
}

// detach deep-copies a node tree for use in another document: aliases are
// replaced by copies of what they name and anchors are dropped, so the copy
// refers to nothing outside itself. Past maxExpanded nodes made by
// expanding aliases (an alias bomb) the rest of the expansion is null.
func detach(n *yaml.Node) *yaml.Node { return newDetacher().detach(n) }

// detacher detaches several trees with one budget for expanded aliases.
type detacher struct{ budget int }

func newDetacher() *detacher { return &detacher{budget: maxExpanded} }

func (d *detacher) detach(n *yaml.Node) *yaml.Node {
	null := func() *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"} }
	var cp func(n *yaml.Node, depth int, expanding bool) *yaml.Node
	cp = func(n *yaml.Node, depth int, expanding bool) *yaml.Node {
		if n == nil {
			return nil
		}
		if depth > maxDepth {
			return null()
		}
		if expanding {
			if d.budget--; d.budget < 0 {
				return null()
			}
		}
		if n.Kind == yaml.AliasNode {
			t := cp(n.Alias, depth+1, true)
			if t == nil {
				return null()
			}
			t.HeadComment, t.LineComment, t.FootComment = n.HeadComment, n.LineComment, n.FootComment
			return t
		}
		c := new(yaml.Node)
		*c = *n
		c.Anchor, c.Alias = "", nil
		if n.Content != nil {
			c.Content = make([]*yaml.Node, len(n.Content))
			for i, ch := range n.Content {
				c.Content[i] = cp(ch, depth+1, expanding)
			}
		}
		if n.Kind == yaml.DocumentNode {
			if len(c.Content) == 1 {
				return c.Content[0]
			}
			return null()
		}
		return c
	}
	return cp(n, 0, false)
}

// nodesEqual reports two trees that encode the same way: same kinds, tags,
// values, styles, anchors and comments; positions are ignored. Aliases
// compare by the anchor they name, so a cycle ends the walk.
func nodesEqual(a, b *yaml.Node) bool {
	var eq func(a, b *yaml.Node, depth int) bool
	eq = func(a, b *yaml.Node, depth int) bool {
		if a == nil || b == nil {
			return a == b
		}
		if a == b {
			return true
		}
		if depth > maxDepth || a.Kind != b.Kind || a.Style != b.Style || a.Tag != b.Tag || a.Value != b.Value ||
			a.Anchor != b.Anchor || a.HeadComment != b.HeadComment || a.LineComment != b.LineComment ||
			a.FootComment != b.FootComment || len(a.Content) != len(b.Content) {
			return false
		}
		if a.Kind == yaml.AliasNode {
			return a.Alias != nil && b.Alias != nil && a.Alias.Anchor == b.Alias.Anchor
		}
		for i := range a.Content {
			if !eq(a.Content[i], b.Content[i], depth+1) {
				return false
			}
		}
		return true
	}
	return eq(a, b, 0)
}

// spliceable reports a document whose top-level keys Bytes can rewrite one
// at a time: a block mapping of plain keys on increasing lines, no anchors
// or aliases anywhere (a kept key could name an anchor in a rewritten one),
// no key twice.
func spliceable(doc *yaml.Node) bool {
	m := doc.Content[0]
	if m.Style&yaml.FlowStyle != 0 {
		return false
	}
	seen := map[string]bool{}
	last := 0
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		if k.Kind != yaml.ScalarNode || k.Line <= last || seen[k.Value] {
			return false
		}
		seen[k.Value], last = true, k.Line
	}
	clean := true
	var walk func(*yaml.Node, int)
	walk = func(n *yaml.Node, depth int) {
		if n == nil || !clean {
			return
		}
		if depth > maxDepth || n.Kind == yaml.AliasNode || n.Anchor != "" {
			clean = false
			return
		}
		for _, c := range n.Content {
			walk(c, depth+1)
		}
	}
	walk(doc, 0)
	return clean
}

// yaml11Special matches plain words that YAML 1.1 (PyYAML, which
// huggingface_hub uses) reads as booleans, null or numbers although YAML
// 1.2 (go-yaml) reads them as strings; strNode quotes them.
var yaml11Special = regexp.MustCompile(`(?i)^(y|n|yes|no|on|off|true|false|null|~|[-+]?(\.[0-9]|[0-9])[0-9_:.e+-]*|[-+]?0[xob][0-9a-f_]+|[-+]?\.(inf|nan))$`)

// strNode returns a string scalar, quoted when YAML 1.1 or 1.2 would read
// it as something else.
func strNode(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	if yaml11Special.MatchString(s) {
		n.Style = yaml.DoubleQuotedStyle
	}
	return n
}

// scalarText is the text of a non-null scalar; ok is false for anything
// else.
func scalarText(n *yaml.Node) (string, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		return "", false
	}
	return n.Value, true
}

// isString reports a scalar that YAML reads as a string.
func isString(n *yaml.Node) bool {
	n = deref(n)
	return n != nil && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str"
}

// isNull reports a missing value or an explicit null.
func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// isCommentLine reports a line that holds only a comment starting in the
// first column.
func isCommentLine(l string) bool { return strings.HasPrefix(l, "#") }

// isBlankLine reports a line of only spaces, tabs and a line break.
func isBlankLine(l string) bool { return strings.TrimSpace(l) == "" }
