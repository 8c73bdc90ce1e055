// Package card reads, writes, generates and validates Hugging Face model
// cards: a README.md that starts with a YAML metadata block between two
// "---" lines, followed by Markdown.
//
// A parsed card keeps its metadata as a YAML node tree, so key order,
// comments and keys Modelpub does not know survive an edit, and a card that
// was not changed is written back byte for byte. When the metadata did
// change, only the top-level keys that changed are written anew; the text of
// the others is kept as it was (see Bytes).
//
// The format follows huggingface_hub's RepoCard (repocard.py) and
// ModelCardData (repocard_data.py); the checks follow what the Hub applies
// to README.md metadata before it accepts a commit.
package card

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// FileName is the name of a model card in a repository.
const FileName = "README.md"

// ErrInvalidYAML reports a metadata block that is not valid YAML, is not a
// mapping, or is never closed. Such errors are *YAMLError values.
var ErrInvalidYAML = errors.New("card: invalid YAML metadata")

// ErrMetadataTooLarge reports a metadata block over MaxMetadataBytes or
// MaxMetadataNodes. It comes as a *YAMLError, which also matches
// ErrInvalidYAML.
var ErrMetadataTooLarge = errors.New("card: metadata block too large")

// Limits on the metadata block Parse reads. A parsed YAML node costs about
// 200 bytes in go-yaml's tree, and writing and checking a changed card
// parses its metadata again, so a block of a million short keys (11 MB)
// took 2.6 GB. Within these limits a card's peak memory stays under 100 MB
// plus eight times its size.
//
// MaxMetadataBytes is the Hub's own limit: it refuses a regular (non-LFS)
// file over 10 MiB, and README.md must be one for its metadata to be read.
// MaxMetadataNodes is counted on the text before it is parsed, as an upper
// bound (see nodeBound) that is about 1.5 times the real count for
// "key: value" lines: 100,000 is some 60,000 real nodes, the metadata of
// over 700 evaluation results (a large model-index is a few thousand
// nodes; a usual card has a few dozen).
const (
	MaxMetadataBytes = 10 << 20
	MaxMetadataNodes = 100_000
)

// YAMLError is a metadata block that cannot be read, at a line of README.md.
type YAMLError struct {
	Line int    // 1-based line of README.md; 0 when unknown
	Msg  string // what is wrong, without the line
	File string // the file's path when known (ForFolder); "" names it README.md
	// Err, when set, says what kind of problem it is beyond
	// ErrInvalidYAML: ErrMetadataTooLarge.
	Err error
}

func (e *YAMLError) Error() string {
	name := FileName
	if e.File != "" {
		name = e.File
	}
	if e.Line > 0 {
		return fmt.Sprintf("%s: line %d: invalid metadata: %s", name, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: invalid metadata: %s", name, e.Msg)
}

// Unwrap makes errors.Is(err, ErrInvalidYAML) true, and errors.Is(err,
// e.Err) when Err is set.
func (e *YAMLError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalidYAML, e.Err}
	}
	return []error{ErrInvalidYAML}
}

// Card is a model card: the metadata block as a YAML mapping and the
// Markdown body after it. The zero value is an empty card, as New returns.
type Card struct {
	doc  *yaml.Node // a DocumentNode holding a MappingNode
	body string
	bom  bool    // the file started with a UTF-8 byte order mark
	src  *source // the metadata block as parsed; nil when there was none
}

// source is the metadata block of a parsed card as it was in the file, so
// that Bytes can write back what did not change.
type source struct {
	open  string     // blank lines before the block and the opening "---" line, with its line break
	lines []string   // the YAML text, one line each, with its line break
	close string     // the closing "---" line, with its line break if it had one
	line0 int        // lines of the file before the YAML text: YAML line n is file line line0+n
	crlf  bool       // the opening line ends with "\r\n"
	orig  *yaml.Node // a copy of the document as parsed, never changed
	// noSplice is set when the YAML's layout is one Bytes cannot safely
	// edit key by key (anchors, flow or complex mappings, duplicate keys);
	// any change is then written as a whole new block.
	noSplice bool
}

const bom = "\uFEFF"

// New returns a card with no metadata and an empty body.
func New() *Card {
	return &Card{doc: newDoc()}
}

func newDoc() *yaml.Node {
	return &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}}
}

// Parse reads a README.md. A file that does not start with a "---" line
// (blank lines before it aside) has no metadata: its whole text is the
// body. A block that is not valid YAML, that is not a mapping, or that has
// no closing "---" line is a *YAMLError naming the line. A UTF-8 byte order
// mark and CRLF line breaks are accepted and kept.
func Parse(data []byte) (c *Card, err error) {
	defer func() {
		// The YAML parser is third-party code fed untrusted bytes: a
		// panic in it is an invalid card, not a crash.
		if r := recover(); r != nil {
			c, err = nil, &YAMLError{Msg: fmt.Sprintf("the YAML parser failed: %v", r)}
		}
	}()
	c = New()
	text := string(data)
	if strings.HasPrefix(text, bom) {
		c.bom, text = true, text[len(bom):]
	}
	open, rest, openLine, ok := cutOpening(text)
	if !ok {
		c.body = text
		return c, nil
	}
	// The block ends at the first line that is exactly "---", as
	// REGEX_YAML_BLOCK's `[\r\n]+---(\r\n|\n|$)` has it.
	s := &source{open: open, line0: openLine, crlf: strings.HasSuffix(open, "\r\n")}
	pos := 0
	for s.close == "" {
		if pos == len(rest) {
			return nil, &YAMLError{Line: openLine, Msg: `the metadata block opened by "---" is never closed; end it with a line "---"`}
		}
		l := rest[pos:]
		if i := strings.IndexByte(l, '\n'); i >= 0 {
			l = l[:i+1]
		}
		pos += len(l)
		if trimEOL(l) == "---" {
			s.close = l
		} else {
			s.lines = append(s.lines, l)
		}
		if s.close == "" && pos > MaxMetadataBytes {
			// Over the limit already: no need to split the rest.
			return nil, tooLarge(openLine, "the metadata block is over the Hub's limit of %d bytes", MaxMetadataBytes)
		}
	}
	c.body = rest[pos:]
	doc, synthetic, err := parseYAML(rest[:pos-len(s.close)], openLine)
	if err != nil {
		return nil, err
	}
	c.doc, c.src = doc, s
	s.orig = shallowCopy(doc)
	s.noSplice = synthetic || !spliceable(doc)
	return c, nil
}

// cutOpening finds the opening "---" line: the first line that is not blank
// must be "---" (leading spaces allowed, as huggingface_hub's
// REGEX_YAML_BLOCK `^(\s*---[\r\n]+)` allows). It returns the text up to and
// including that line, the rest, and the line's number.
func cutOpening(text string) (open, rest string, line int, ok bool) {
	pos := 0
	for n := 1; pos < len(text); n++ {
		l := text[pos:]
		if i := strings.IndexByte(l, '\n'); i >= 0 {
			l = l[:i+1]
		}
		switch strings.TrimLeft(trimEOL(l), " \t") {
		case "---":
			if !strings.HasSuffix(l, "\n") {
				return "", "", 0, false // "---" alone at the end: nothing follows
			}
			return text[:pos+len(l)], text[pos+len(l):], n, true
		case "":
			pos += len(l)
		default:
			return "", "", 0, false
		}
	}
	return "", "", 0, false
}

// looksLikeBlock reports a text that Parse would read as starting with a
// metadata block.
func looksLikeBlock(text string) bool {
	_, _, _, ok := cutOpening(text)
	return ok
}

func trimEOL(l string) string {
	l = strings.TrimSuffix(l, "\n")
	return strings.TrimSuffix(l, "\r")
}

// yamlLine matches the position go-yaml puts in its error messages.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// parserProblem matches go-yaml's parser (not scanner) errors, whose line
// is 0-based (decode.go fail: only scanner errors get one added); for the
// block and flow errors it is the line where the broken construct starts.
var parserProblem = regexp.MustCompile(`^(did not find expected (<stream-start>|<document start>|node content|'-' indicator|key|',' or '[\]}]')|found (undefined tag handle|duplicate %YAML directive|incompatible YAML document|duplicate %TAG directive))$`)

// errorLine turns a go-yaml error into a file line and a message: go-yaml
// leaves the line out when it is the first one.
func errorLine(err error, line0 int) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	k := 1
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		k, _ = strconv.Atoi(m[1])
		msg = err.Error()[len(m[0]):]
		if parserProblem.MatchString(msg) {
			k++
		}
	}
	return line0 + k, msg
}

// parseYAML parses a metadata block into a document holding a mapping.
// An empty block, or one holding only comments or null, is an empty
// mapping; synthetic is then true when the text was not empty, since its
// layout cannot be edited key by key. line0 turns YAML lines into file lines.
func parseYAML(text string, line0 int) (doc *yaml.Node, synthetic bool, err error) {
	fail := func(line int, format string, a ...any) error {
		return &YAMLError{Line: line, Msg: fmt.Sprintf(format, a...)}
	}
	if err := checkSize(text, line0); err != nil {
		return nil, false, err
	}
	dec := yaml.NewDecoder(strings.NewReader(text))
	var n yaml.Node
	if err := dec.Decode(&n); err != nil {
		if errors.Is(err, io.EOF) {
			return newDoc(), strings.TrimSpace(text) != "", nil
		}
		line, msg := errorLine(err, line0)
		return nil, false, fail(line, "%s", msg)
	}
	// PyYAML's safe_load, which huggingface_hub uses, accepts one document
	// only.
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := line0 + extra.Line
		if len(extra.Content) > 0 {
			line = line0 + extra.Content[0].Line
		}
		if err != nil {
			line, _ = errorLine(err, line0)
		}
		return nil, false, fail(line, `a second YAML document starts here, after a "---" or "..." line; the metadata must be one mapping, closed by a line of exactly "---"`)
	}
	if n.Kind != yaml.DocumentNode || len(n.Content) != 1 {
		return newDoc(), true, nil
	}
	top := n.Content[0]
	switch {
	case top.Kind == yaml.MappingNode:
		if top.Tag == "" {
			top.Tag = "!!map"
		}
		return &n, false, nil
	case top.Kind == yaml.ScalarNode && top.ShortTag() == "!!null":
		// huggingface_hub reads a null block as no metadata.
		doc := newDoc()
		doc.HeadComment, doc.FootComment = n.HeadComment, n.FootComment
		return doc, true, nil
	}
	return nil, false, fail(line0+top.Line, "the metadata must be a mapping of keys to values, not %s", kindName(top))
}

// checkSize refuses a metadata block over MaxMetadataBytes or
// MaxMetadataNodes, before go-yaml builds its tree.
func checkSize(text string, line0 int) error {
	if len(text) > MaxMetadataBytes {
		return tooLarge(line0, "the metadata block is %d bytes, over the Hub's limit of %d", len(text), MaxMetadataBytes)
	}
	if n := nodeBound(text); n > MaxMetadataNodes {
		return tooLarge(line0, "the metadata block holds up to %d YAML values, over the %d Modelpub reads", n, MaxMetadataNodes)
	}
	return nil
}

// tooLarge is the ErrMetadataTooLarge error of a block after line line0.
func tooLarge(line0 int, format string, a ...any) error {
	return &YAMLError{Line: line0 + 1, Err: ErrMetadataTooLarge, Msg: fmt.Sprintf(format, a...) +
		"; the metadata block is for short facts (license, tags, base model, evaluation results): move the rest to the Markdown below it"}
}

// nodeBound returns an upper bound of the nodes go-yaml makes of text (the
// document, every mapping, sequence, scalar and alias), in one pass and
// without parsing it. Every node starts a run of non-blank bytes, or is
// charged to an indicator: a flow indicator ",[]{}" can start a
// collection, an entry and an implied null (2); a ':' or '?' a mapping
// and, unless a run follows it on its line, a null value (1 or 2); a '-'
// standing alone is the run that starts a sequence, and a null item when
// nothing follows it on its line (1). Indicators inside plain or quoted
// scalars are counted too, which only makes the bound larger.
func nodeBound(text string) int {
	n := 1 // the document
	restOfLineBlank := func(i int) bool {
		for ; i < len(text) && text[i] != '\n' && text[i] != '\r'; i++ {
			if text[i] != ' ' && text[i] != '\t' {
				return false
			}
		}
		return true
	}
	blank := func(i int) bool {
		return i < 0 || i >= len(text) || text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		if blank(i) {
			continue
		}
		if blank(i - 1) {
			n++ // a run starts
		}
		switch c {
		case ',', '[', ']', '{', '}':
			n += 2
		case ':', '?':
			if i+1 < len(text) && (text[i+1] == ' ' || text[i+1] == '\t') && !restOfLineBlank(i+1) {
				n++
			} else {
				n += 2
			}
		case '-':
			if blank(i-1) && blank(i+1) && restOfLineBlank(i+1) {
				n++
			}
		}
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("the text %q", n.Value)
		case "!!null":
			return "null"
		case "!!bool":
			return "a boolean"
		case "!!int", "!!float":
			return "a number"
		}
		return "a " + strings.TrimPrefix(n.ShortTag(), "!!")
	}
	return "nothing"
}

// mapping is the card's metadata mapping.
func (c *Card) mapping() *yaml.Node {
	if c.doc == nil {
		c.doc = newDoc()
	}
	return c.doc.Content[0]
}

// Body returns the Markdown after the metadata block, exactly as it is in
// the file (usually starting with a blank line).
func (c *Card) Body() string { return c.body }

// SetBody replaces the Markdown after the metadata block.
func (c *Card) SetBody(s string) { c.body = s }

// Keys returns the top-level metadata keys in order.
func (c *Card) Keys() []string {
	m := c.mapping()
	keys := make([]string, 0, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		keys = append(keys, m.Content[i].Value)
	}
	return keys
}

// lookup returns the value node of key's first occurrence, aliases
// resolved, or nil.
func (c *Card) lookup(key string) *yaml.Node {
	m := c.mapping()
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return deref(m.Content[i+1])
		}
	}
	return nil
}

// Get returns the value of a top-level key as Go values (string, int,
// float64, bool, nil, []any, map[string]any). A value that cannot be
// decoded, such as an alias to itself, is returned as nil.
func (c *Card) Get(key string) (any, bool) {
	v := c.lookup(key)
	if v == nil {
		return nil, false
	}
	var out any
	if err := v.Decode(&out); err != nil {
		return nil, true
	}
	return out, true
}

// Set sets a top-level key to v, encoded as YAML (a *yaml.Node is used as
// it is). An existing key keeps its place and its comments; a new key is
// appended. It fails only when v cannot be encoded.
func (c *Card) Set(key string, v any) error {
	var n *yaml.Node
	switch v := v.(type) {
	case *yaml.Node:
		n = detach(v)
	case yaml.Node:
		n = detach(&v)
	default:
		n = new(yaml.Node)
		if err := encodeValue(n, v); err != nil {
			return fmt.Errorf("card: set %s: %w", key, err)
		}
	}
	c.setNode(key, n)
	return nil
}

// encodeValue is n.Encode(v), which panics on values YAML cannot hold
// (functions, channels).
func encodeValue(n *yaml.Node, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return n.Encode(v)
}

// Delete removes a top-level key (every occurrence of it).
func (c *Card) Delete(key string) {
	m := c.mapping()
	kept := m.Content[:0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != key {
			kept = append(kept, m.Content[i], m.Content[i+1])
		}
	}
	m.Content = kept
}

// setNode puts n as key's value: in place of the first occurrence, keeping
// the old value's comments, or appended.
func (c *Card) setNode(key string, n *yaml.Node) {
	m := c.mapping()
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			old := m.Content[i+1]
			if n.LineComment == "" {
				n.LineComment = old.LineComment
			}
			if n.HeadComment == "" {
				n.HeadComment = old.HeadComment
			}
			if n.FootComment == "" {
				n.FootComment = old.FootComment
			}
			m.Content[i+1] = n
			return
		}
	}
	m.Content = append(m.Content, strNode(key), n)
}

// clone returns a copy of c that can be changed without changing c (see
// shallowCopy); the parsed source is shared, as it is never changed.
func (c *Card) clone() *Card {
	out := *c
	out.doc = shallowCopy(c.doc)
	return &out
}

// Bytes returns the card as README.md: "---", the metadata as YAML, "---",
// then the body, as huggingface_hub writes it. A card without metadata is
// its body alone, with no block (an empty block "---\n---\n" is written
// only if the body would otherwise read as one, or if the parsed card had
// it and its metadata did not change).
//
// An unchanged parsed card is returned byte for byte. When its metadata
// changed, the text of every top-level key that did not change is kept as
// it was, including comments and layout; changed keys are written anew
// (2-space indentation, lists as "- item" under their key, as PyYAML
// writes them), removed keys are dropped with the comment lines just above
// them, new keys are appended. The file's line breaks (LF or CRLF) and byte
// order mark are kept. If that edit would not read back as the same
// metadata, the whole block is written anew instead.
func (c *Card) Bytes() (data []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			data, err = nil, fmt.Errorf("card: cannot write the metadata: %v", r)
		}
	}()
	var b bytes.Buffer
	if c.bom {
		b.WriteString(bom)
	}
	eol, open, close := "\n", "---\n", "---\n"
	if s := c.src; s != nil {
		open, close = s.open, s.close
		if s.crlf {
			eol = "\r\n"
		}
	}
	if !strings.HasSuffix(close, "\n") && c.body != "" {
		close += eol
	}
	switch {
	case c.src != nil && nodesEqual(c.doc, c.src.orig):
		b.WriteString(open)
		for _, l := range c.src.lines {
			b.WriteString(l)
		}
		b.WriteString(close)
	case len(c.mapping().Content) == 0:
		if looksLikeBlock(c.body) {
			b.WriteString("---" + eol + "---" + eol)
		}
	default:
		text, err := c.yamlText(eol)
		if err != nil {
			return nil, err
		}
		b.WriteString(open)
		b.WriteString(text)
		b.WriteString(close)
	}
	b.WriteString(c.body)
	return b.Bytes(), nil
}
