package hubemu

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The README.md metadata checks of POST /api/validate-yaml and of a commit
// that adds README.md. They are the rules of core/card (Validate for the
// errors, Warnings for the warnings), written again here because the
// emulator may not import core/card (it reaches core/pipeline and the
// client); the test in ./cardparity runs both on the same cards and fails
// when they disagree, and checks the license and task lists below against
// core/card's.

// CheckCard returns what the emulator finds in a README.md for a repo of
// type repoType ("model", "dataset", "space"): the errors that make
// validate-yaml answer 400 and a commit of it fail, and the warnings. A
// card without metadata gets the Hub's warning NoMetadataWarning.
func CheckCard(content, repoType string) (errs, warnings []string) {
	p := checkCard(content, repoType)
	return p.errors, p.warnings
}

// CardLists returns copies of the license ids and tasks the card checks
// accept.
func CardLists() (licenses, tasks []string) {
	return slices.Clone(cardLicenses), slices.Clone(cardTasks)
}

// NoMetadataWarning is the Hub's warning for a card without metadata.
const NoMetadataWarning = noMetadata

// cardLicenses are the license ids the Hub accepts (core/card.Licenses).
var cardLicenses = []string{
	"apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m",
	"bigscience-bloom-rail-1.0", "bigcode-openrail-m", "afl-3.0", "artistic-2.0", "bsl-1.0", "bsd",
	"bsd-2-clause", "bsd-3-clause", "bsd-3-clause-clear", "c-uda", "cc", "cc0-1.0", "cc-by-2.0", "cc-by-2.5",
	"cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0", "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0",
	"cc-by-nd-4.0", "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0",
	"cc-by-nc-sa-4.0", "cdla-sharing-1.0", "cdla-permissive-1.0", "cdla-permissive-2.0", "wtfpl", "ecl-2.0",
	"epl-1.0", "epl-2.0", "etalab-2.0", "eupl-1.1", "eupl-1.2", "agpl-3.0", "gfdl", "gpl", "gpl-2.0", "gpl-3.0",
	"lgpl", "lgpl-2.1", "lgpl-3.0", "isc", "h-research", "intel-research", "lppl-1.3c", "ms-pl", "apple-ascl",
	"apple-amlr", "mpl-2.0", "odc-by", "odbl", "openmdw-1.0", "openmdw-1.1", "openrail++", "osl-3.0",
	"postgresql", "ofl-1.1", "ncsa", "unlicense", "zlib", "pddl", "lgpl-lr", "deepfloyd-if-license",
	"fair-noncommercial-research-license", "llama2", "llama3", "llama3.1", "llama3.2", "llama3.3", "llama4",
	"gemma", "unknown", "other",
}

// cardTasks are the Hub's tasks for pipeline_tag (core/card.Tasks).
var cardTasks = []string{
	"biology", "text-classification", "token-classification", "table-question-answering", "question-answering",
	"zero-shot-classification", "translation", "summarization", "feature-extraction", "text-generation",
	"text2text-generation", "fill-mask", "sentence-similarity", "text-to-speech", "text-to-audio",
	"automatic-speech-recognition", "audio-to-audio", "audio-classification", "audio-text-to-text",
	"voice-activity-detection", "depth-estimation", "image-classification", "object-detection",
	"image-segmentation", "text-to-image", "image-to-text", "image-to-image", "image-to-video",
	"unconditional-image-generation", "video-classification", "reinforcement-learning", "robotics",
	"tabular-classification", "tabular-regression", "tabular-to-text", "table-to-text", "multiple-choice",
	"text-ranking", "text-retrieval", "time-series-forecasting", "text-to-video", "image-text-to-text",
	"visual-question-answering", "document-question-answering", "zero-shot-image-classification", "graph-ml",
	"mask-generation", "zero-shot-object-detection", "text-to-3d", "image-to-3d", "image-feature-extraction",
	"video-text-to-text", "keypoint-detection", "visual-document-retrieval", "any-to-any", "other",
	"video-to-video", "image-text-to-image", "image-text-to-video",
}

// noMetadata is the Hub's warning for a card without a metadata block.
const noMetadata = "empty or missing yaml metadata in repo card"

// cardProblems are the errors and warnings of one README.md.
type cardProblems struct {
	errors, warnings []string
}

func (p *cardProblems) fail(key, format string, a ...any) {
	p.errors = append(p.errors, keyed(key, fmt.Sprintf(format, a...)))
}

func (p *cardProblems) warn(key, format string, a ...any) {
	p.warnings = append(p.warnings, keyed(key, fmt.Sprintf(format, a...)))
}

func keyed(key, msg string) string {
	if key == "" {
		return msg
	}
	return key + ": " + msg
}

// checkCard checks the metadata of a README.md for a repo of type typ
// ("model", "dataset", "space"; base_model and pipeline_tag are checked for
// models only).
func checkCard(content, typ string) (p cardProblems) {
	defer func() {
		if r := recover(); r != nil {
			p = cardProblems{errors: []string{fmt.Sprintf("the YAML parser failed: %v", r)}}
		}
	}()
	text := strings.TrimPrefix(content, "\uFEFF")
	block, ok, err := metadataBlock(text)
	switch {
	case err != nil:
		p.fail("", "%v", err)
		return p
	case !ok:
		p.warn("", noMetadata)
		return p
	}
	dec := yaml.NewDecoder(strings.NewReader(block))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.warn("", noMetadata)
		} else {
			p.fail("", "invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return p
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		p.fail("", `a second YAML document starts in the metadata; it must be one mapping, closed by a line of exactly "---"`)
		return p
	}
	if len(doc.Content) != 1 {
		p.warn("", noMetadata)
		return p
	}
	top := doc.Content[0]
	switch {
	case top.Kind == yaml.ScalarNode && top.ShortTag() == "!!null":
		p.warn("", noMetadata)
		return p
	case top.Kind != yaml.MappingNode:
		p.fail("", "the metadata must be a mapping of keys to values, not %s", nodeKind(top))
		return p
	}
	ck := cardChecker{m: top, p: &p}
	ck.run(typ == "model")
	return p
}

// metadataBlock returns the YAML between the opening "---" line (the first
// line that is not blank) and the first line that is exactly "---".
func metadataBlock(text string) (string, bool, error) {
	pos := 0
	for pos < len(text) {
		l := text[pos:]
		if i := strings.IndexByte(l, '\n'); i >= 0 {
			l = l[:i+1]
		}
		t := strings.TrimLeft(eol(l), " \t")
		if t == "" {
			pos += len(l)
			continue
		}
		if t != "---" || !strings.HasSuffix(l, "\n") {
			return "", false, nil
		}
		pos += len(l)
		break
	}
	if pos >= len(text) {
		return "", false, nil
	}
	start := pos
	for pos < len(text) {
		l := text[pos:]
		if i := strings.IndexByte(l, '\n'); i >= 0 {
			l = l[:i+1]
		}
		if eol(l) == "---" {
			return text[start:pos], true, nil
		}
		pos += len(l)
	}
	return "", false, errors.New(`the metadata block opened by "---" is never closed; end it with a line "---"`)
}

func eol(l string) string { return strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r") }

type cardChecker struct {
	m *yaml.Node // the metadata mapping
	p *cardProblems
}

func (ck cardChecker) value(key string) *yaml.Node {
	for i := 0; i+1 < len(ck.m.Content); i += 2 {
		if ck.m.Content[i].Value == key {
			return ck.m.Content[i+1]
		}
	}
	return nil
}

func (ck cardChecker) run(model bool) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(ck.m.Content); i += 2 {
		k := ck.m.Content[i].Value
		if seen[k] {
			ck.p.fail(k, "the key appears a second time; duplicate keys are refused")
		}
		seen[k] = true
	}
	ck.license()
	ck.tags()
	if model {
		ck.baseModel()
	}
	ck.stringKey("library_name", "the library's name, such as diffusers")
	if n := ck.value("pipeline_tag"); model && ck.stringKey("pipeline_tag", "a Hub task, such as text-to-image") &&
		!slices.Contains(cardTasks, yderef(n).Value) {
		ck.p.fail("pipeline_tag", "%q is not a task the Hub knows", yderef(n).Value)
	}
	ck.stringList("language", "a language code such as en, or a list of them")
}

func (ck cardChecker) stringKey(key, what string) bool {
	n := ck.value(key)
	switch {
	case ynull(n):
		return false
	case !ystring(n):
		ck.p.fail(key, "must be %s, not %s", what, nodeKind(yderef(n)))
		return false
	}
	return yderef(n).Value != ""
}

var licenseNameForm = regexp.MustCompile(`^[a-z0-9][a-z0-9._+-]*$`)

func (ck cardChecker) license() {
	license := ""
	if ck.stringKey("license", "one license id, such as apache-2.0") {
		license = yderef(ck.value("license")).Value
		switch {
		case license == "other":
			if n := ck.value("license_name"); ynull(n) || yderef(n).Value == "" {
				ck.p.warn("license", `is "other" without license_name`)
			}
		case !slices.Contains(cardLicenses, license):
			ck.p.fail("license", "%q is not a license id the Hub knows", license)
		}
	}
	for _, key := range []string{"license_name", "license_link"} {
		if !ck.stringKey(key, "a string") {
			continue
		}
		if license != "other" {
			ck.p.warn(key, "is meant for license: other")
		}
		if v := yderef(ck.value(key)).Value; key == "license_name" && !licenseNameForm.MatchString(v) {
			ck.p.warn(key, "%q should be a short lowercase id", v)
		}
	}
}

func (ck cardChecker) tags() {
	n := ck.value("tags")
	switch d := yderef(n); {
	case ynull(n):
	case ystring(n):
		ck.p.warn("tags", "is one string; write tags as a list")
	case d.Kind != yaml.SequenceNode:
		ck.p.fail("tags", "must be a list of strings, not %s", nodeKind(d))
	default:
		for _, item := range d.Content {
			it := yderef(item)
			switch {
			case ystring(item):
				ck.yaml11(it, "tags")
			case it.Kind == yaml.ScalarNode && it.Value == "":
				ck.p.fail("tags", "an entry is empty")
			default:
				ck.p.fail("tags", "an entry is %s; tags must be strings", nodeKind(it))
			}
		}
	}
}

// yaml11 warns about a plain word that YAML 1.1 reads as a boolean.
func (ck cardChecker) yaml11(n *yaml.Node, key string) {
	switch strings.ToLower(n.Value) {
	case "yes", "no", "on", "off", "y", "n":
		if n.Style == 0 {
			ck.p.warn(key, "%s is a boolean to YAML 1.1 readers; quote it", n.Value)
		}
	}
}

func (ck cardChecker) stringList(key, what string) {
	n := ck.value(key)
	d := yderef(n)
	switch {
	case ynull(n):
	case ystring(n):
		ck.yaml11(d, key)
	case d.Kind == yaml.SequenceNode:
		for _, item := range d.Content {
			if ystring(item) {
				ck.yaml11(yderef(item), key)
				continue
			}
			ck.p.fail(key, "an entry is %s; each must be %s", nodeKind(yderef(item)), what)
		}
	default:
		ck.p.fail(key, "must be %s, not %s", what, nodeKind(d))
	}
}

func (ck cardChecker) baseModel() {
	n := ck.value("base_model")
	check := func(item *yaml.Node) {
		it := yderef(item)
		if !ystring(item) {
			ck.p.fail("base_model", "must be a model repo id, not %s", nodeKind(it))
			return
		}
		typ, err := parseRepoIDText(it.Value)
		switch {
		case err != nil:
			ck.p.fail("base_model", "is not a repo id: %v", err)
		case typ != "model":
			ck.p.fail("base_model", "%q names a %s, not a model", it.Value, typ)
		}
	}
	switch d := yderef(n); {
	case ynull(n):
	case d.Kind == yaml.SequenceNode:
		for _, item := range d.Content {
			check(item)
		}
	default:
		check(n)
	}
}

// unicodeRepoPart is a repo id part as huggingface_hub's validate_repo_id
// accepts it, with Python's Unicode \w.
var unicodeRepoPart = regexp.MustCompile(`^[\p{L}\p{N}_]([\p{L}\p{N}_.\-]*[\p{L}\p{N}_])?$`)

// parseRepoIDText reads "ns/name", "name", "datasets/ns/name" or
// "spaces/ns/name" as the client's ParseRepoID does, returning the type.
func parseRepoIDText(s string) (string, error) {
	typ := "model"
	if first, rest, ok := strings.Cut(s, "/"); ok && strings.Contains(rest, "/") {
		switch first {
		case "datasets", "spaces", "models":
			typ, s = repoKinds[first], rest
		case "model", "dataset", "space":
			return "", fmt.Errorf("%q: write the type in the plural", s)
		}
	}
	ns, name, hasNS := strings.Cut(s, "/")
	if !hasNS {
		ns, name = "", s
	}
	switch {
	case name == "":
		return "", fmt.Errorf("%q has no name", s)
	case strings.Contains(name, "/"):
		return "", fmt.Errorf("%q has more than one '/'", s)
	case !unicodeRepoPart.MatchString(name):
		return "", fmt.Errorf("%q has a name with forbidden characters", s)
	case len([]rune(name)) > 96:
		return "", fmt.Errorf("%q has a name longer than 96 characters", s)
	case ns != "" && !unicodeRepoPart.MatchString(ns):
		return "", fmt.Errorf("%q has a namespace with forbidden characters", s)
	case strings.Contains(s, "--"), strings.Contains(s, ".."):
		return "", fmt.Errorf("%q contains '--' or '..'", s)
	case strings.HasSuffix(s, ".git"):
		return "", fmt.Errorf("%q ends with .git", s)
	}
	return typ, nil
}

func yderef(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func ynull(n *yaml.Node) bool {
	d := yderef(n)
	return d == nil || d.Kind == yaml.ScalarNode && d.ShortTag() == "!!null"
}

func ystring(n *yaml.Node) bool {
	d := yderef(n)
	return d != nil && d.Kind == yaml.ScalarNode && d.ShortTag() == "!!str"
}

func nodeKind(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
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
