package card

import (
	"bytes"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// encode writes a node as YAML the way huggingface_hub's PyYAML dump lays
// it out: 2-space indentation, list items at their key's indentation.
func encode(n *yaml.Node) (string, error) {
	n = fixForEncoder(n)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	enc.CompactSeqIndent()
	if err := enc.Encode(n); err != nil {
		return "", err
	}
	if err := enc.Close(); err != nil {
		return "", err
	}
	return b.String(), nil
}

// fixForEncoder returns a copy of n with what go-yaml's encoder would get
// wrong written another way: an empty null as a mapping key comes out as
// an empty quoted string, so it is written "~".
func fixForEncoder(n *yaml.Node) *yaml.Node {
	n = copyNode(n)
	seen := map[*yaml.Node]bool{}
	var walk func(*yaml.Node, int)
	walk = func(n *yaml.Node, depth int) {
		if n == nil || seen[n] || depth > maxDepth {
			return
		}
		seen[n] = true
		if n.Kind == yaml.MappingNode {
			for i := 0; i < len(n.Content); i += 2 {
				if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == "" && k.ShortTag() == "!!null" {
					k.Value = "~"
				}
			}
		}
		for _, c := range n.Content {
			walk(c, depth+1)
		}
	}
	walk(n, 0)
	return n
}

// yamlText is the metadata block's YAML for a card whose metadata changed
// (or is new), with eol line breaks and a final line break.
func (c *Card) yamlText(eol string) (string, error) {
	if c.src != nil && !c.src.noSplice {
		if text, ok := c.splice(); ok {
			same, err := c.readsBack(text)
			if err != nil {
				return "", err
			}
			if same {
				return text, nil
			}
		}
	}
	text, err := encode(c.doc)
	if err != nil {
		return "", fmt.Errorf("card: cannot write the metadata: %w", err)
	}
	if eol != "\n" {
		text = strings.ReplaceAll(text, "\n", eol)
	}
	same, err := c.readsBack(text)
	if err != nil {
		return "", err
	}
	if !same {
		return "", fmt.Errorf("card: the metadata does not read back as written")
	}
	return text, nil
}

// readsBack reports that text parses as a mapping with the same values as
// the card's metadata. The error is a text over the limits Parse applies
// (ErrMetadataTooLarge): a card grown past them by Set or Merge.
func (c *Card) readsBack(text string) (bool, error) {
	if err := checkSize(text, -1); err != nil { // no line: the text is not in a file
		return false, fmt.Errorf("card: cannot write the metadata: %w", err)
	}
	doc, _, err := parseYAML(text, 0)
	return err == nil && sameValues(doc, c.doc), nil
}

// sameValues reports two trees that hold the same data: kinds, resolved
// tags, values and order; styles, comments, anchors and positions are
// ignored. Aliases compare by the anchor they name.
func sameValues(a, b *yaml.Node) bool {
	var eq func(a, b *yaml.Node, depth int) bool
	eq = func(a, b *yaml.Node, depth int) bool {
		if a == nil || b == nil {
			return a == b
		}
		if depth > maxDepth || a.Kind != b.Kind || len(a.Content) != len(b.Content) {
			return false
		}
		switch a.Kind {
		case yaml.ScalarNode:
			return a.ShortTag() == b.ShortTag() && (a.Value == b.Value || a.ShortTag() == "!!null")
		case yaml.AliasNode:
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

// splice writes the card's mapping reusing the parsed text of every
// top-level pair that did not change. ok is false when the mapping is not an
// in-order subset of the parsed keys followed by new keys.
//
// The parsed text is cut into one segment per key, from its key's line to
// the next key's; comment lines in the first column at the end of a segment
// (after any blank lines) are the next key's head comment and move to it.
func (c *Card) splice() (string, bool) {
	s := c.src
	orig, cur := s.orig.Content[0], c.mapping()
	n := len(orig.Content) / 2
	starts := make([]int, n)
	for i := range n {
		line := orig.Content[2*i].Line
		if line < 1 || line > len(s.lines) || (i > 0 && line-1 <= starts[i-1]) {
			return "", false
		}
		starts[i] = line - 1
	}
	var prefix []string
	bodies := make([][]string, n)
	leads := make([][]string, n+1) // leads[n] is the text after the last key
	if n == 0 {
		prefix = s.lines
	} else {
		prefix = s.lines[:starts[0]]
		for i := range n {
			end := len(s.lines)
			if i+1 < n {
				end = starts[i+1]
			}
			seg := s.lines[starts[i]:end]
			cut := trailingComments(seg)
			bodies[i], leads[i+1] = seg[:cut], seg[cut:]
		}
	}

	index := map[string]int{}
	for i := range n {
		index[orig.Content[2*i].Value] = i
	}
	var b strings.Builder
	for _, l := range prefix {
		b.WriteString(l)
	}
	next := 0 // the next parsed pair that may be written
	j := 0    // the current pair
	for ; j+1 < len(cur.Content); j += 2 {
		i, ok := index[cur.Content[j].Value]
		if !ok {
			break
		}
		if i < next {
			return "", false
		}
		next = i + 1
		if i > 0 {
			writeLines(&b, leads[i])
		}
		if nodesEqual(orig.Content[2*i], cur.Content[j]) && nodesEqual(orig.Content[2*i+1], cur.Content[j+1]) {
			writeLines(&b, bodies[i])
			continue
		}
		text, err := encodePair(cur.Content[j], cur.Content[j+1], false)
		if err != nil {
			return "", false
		}
		b.WriteString(convertEOL(text, s.crlf))
		// Blank lines that separated the pair from the next one stay.
		k := len(bodies[i])
		for k > 1 && isBlankLine(bodies[i][k-1]) {
			k--
		}
		writeLines(&b, bodies[i][k:])
	}
	if n > 0 {
		writeLines(&b, leads[n])
	}
	for ; j+1 < len(cur.Content); j += 2 {
		if _, ok := index[cur.Content[j].Value]; ok {
			return "", false
		}
		text, err := encodePair(cur.Content[j], cur.Content[j+1], true)
		if err != nil {
			return "", false
		}
		b.WriteString(convertEOL(text, s.crlf))
	}
	return b.String(), true
}

// trailingComments returns where the comment lines that end seg start: the
// first first-column comment line of the run of blank and comment lines at
// its end, or len(seg). Blank lines before that comment stay with the key
// (they may belong to a block scalar kept with "|+").
func trailingComments(seg []string) int {
	k := len(seg)
	for k > 1 && (isBlankLine(seg[k-1]) || isCommentLine(seg[k-1])) {
		k--
	}
	for ; k < len(seg); k++ {
		if isCommentLine(seg[k]) {
			return k
		}
	}
	return len(seg)
}

// encodePair writes one top-level pair. The pair's foot comments are left
// out, and the key's head comment unless keepHead (a new key): they stayed
// in the parsed text around the pair.
func encodePair(k, v *yaml.Node, keepHead bool) (string, error) {
	kc, vc := *k, *v
	if !keepHead {
		kc.HeadComment = ""
	}
	kc.FootComment, vc.FootComment = "", ""
	return encode(&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{&kc, &vc}})
}

func writeLines(b *strings.Builder, lines []string) {
	for _, l := range lines {
		b.WriteString(l)
	}
}

func convertEOL(text string, crlf bool) string {
	if !crlf {
		return text
	}
	return strings.ReplaceAll(text, "\n", "\r\n")
}
