package card

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"modelpub/core/hub"
)

// Problem is something in a card's metadata that the Hub refuses, or,
// with Warning, that it accepts but is probably a mistake.
type Problem struct {
	Key     string // the top-level key; "" for the block as a whole
	Line    int    // 1-based line of README.md as Bytes writes it; 0 when unknown
	Message string // what is wrong and what to do, without the key
	Warning bool   // the Hub accepts it (reported by Warnings, not Validate)
}

// Error formats the problem as README.md: line 3: license: "foo" is …
func (p Problem) Error() string {
	var b strings.Builder
	b.WriteString(FileName + ": ")
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Key != "" {
		b.WriteString(p.Key + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Validate returns what the Hub would refuse in the card's metadata before
// accepting a commit of it, checked on the card as Bytes writes it (lines
// are that file's): a license id from the Hub's list, or "other";
// tags, language, library_name and pipeline_tag of the right types;
// pipeline_tag a Hub task; base_model valid model repo ids; no key twice.
// It returns nil for a card the Hub accepts.
func (c *Card) Validate() []Problem { return c.check(false) }

// Warnings returns what the Hub accepts but is probably a mistake:
// license "other" without license_name, license_name or license_link
// beside a license that is not "other", a
// license_name that is not a short id, tags written as one string, plain
// yes/no/on/off that huggingface_hub's YAML reads as booleans.
func (c *Card) Warnings() []Problem { return c.check(true) }

// licenseNameForm is the form of the Hub's license ids, which license_name
// should follow.
var licenseNameForm = regexp.MustCompile(`^[a-z0-9][a-z0-9._+-]*$`)

func (c *Card) check(warnings bool) []Problem {
	v := c
	data, err := c.Bytes()
	if err != nil {
		return filter([]Problem{{Message: err.Error()}}, warnings)
	}
	if p, err := Parse(data); err == nil {
		v = p
	} else {
		var ye *YAMLError
		if errors.As(err, &ye) {
			return filter([]Problem{{Line: ye.Line, Message: ye.Msg}}, warnings)
		}
		return filter([]Problem{{Message: err.Error()}}, warnings)
	}
	ck := &checker{v: v}
	if v.src != nil {
		ck.line0 = v.src.line0
	}
	ck.run()
	sort.SliceStable(ck.ps, func(i, j int) bool { return ck.ps[i].Line < ck.ps[j].Line })
	return filter(ck.ps, warnings)
}

func filter(ps []Problem, warnings bool) []Problem {
	var out []Problem
	for _, p := range ps {
		if p.Warning == warnings {
			out = append(out, p)
		}
	}
	return out
}

type checker struct {
	v     *Card
	line0 int
	ps    []Problem
}

func (ck *checker) line(n *yaml.Node) int {
	if n == nil || n.Line == 0 || ck.v.src == nil {
		return 0
	}
	return ck.line0 + n.Line
}

func (ck *checker) add(key string, at *yaml.Node, format string, a ...any) {
	ck.ps = append(ck.ps, Problem{Key: key, Line: ck.line(at), Message: fmt.Sprintf(format, a...)})
}

func (ck *checker) warn(key string, at *yaml.Node, format string, a ...any) {
	ck.ps = append(ck.ps, Problem{Key: key, Line: ck.line(at), Message: fmt.Sprintf(format, a...), Warning: true})
}

// value returns key's value node as written (an alias is not followed, so
// lines point at the key's own line) and its key node.
func (ck *checker) value(key string) (k, v *yaml.Node) {
	m := ck.v.mapping()
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i], m.Content[i+1]
		}
	}
	return nil, nil
}

func (ck *checker) run() {
	m := ck.v.mapping()
	first := map[string]*yaml.Node{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		if prev, dup := first[k.Value]; dup {
			ck.add(k.Value, k, "the key appears a second time (first on line %d); the Hub's YAML parser refuses duplicate keys: keep one", ck.line(prev))
			continue
		}
		first[k.Value] = k
	}
	ck.license()
	ck.tags()
	ck.baseModel()
	ck.stringKey("library_name", "the library's name, such as diffusers")
	if _, n := ck.value("pipeline_tag"); ck.stringKey("pipeline_tag", "a Hub task, such as text-to-image") && !IsTask(deref(n).Value) {
		tag := deref(n).Value
		msg := fmt.Sprintf("%q is not a task the Hub knows", tag)
		if s := strings.ReplaceAll(strings.ToLower(tag), "_", "-"); IsTask(s) {
			msg += fmt.Sprintf("; did you mean %q?", s)
		} else {
			msg += "; use one of text-to-image, image-to-image, text-to-video, image-to-video, text-to-audio, …, or leave it out"
		}
		ck.add("pipeline_tag", n, "%s", msg)
	}
	ck.stringList("language", "a language code such as en, or a list of them")
}

// stringKey checks that key, when set, is a string; it reports whether it
// is a non-empty string.
func (ck *checker) stringKey(key, what string) bool {
	_, n := ck.value(key)
	switch {
	case isNull(n):
		return false
	case !isString(n):
		ck.add(key, n, "must be %s, not %s", what, kindName(deref(n)))
		return false
	}
	return deref(n).Value != ""
}

func (ck *checker) license() {
	_, n := ck.value("license")
	license := ""
	if ck.stringKey("license", "one license id, such as apache-2.0") {
		license = deref(n).Value
		switch {
		case license == "other":
			// The Hub takes "other" alone (diffusers' training scripts
			// write it so for FLUX.1-dev LoRAs), but then shows no name.
			if _, name := ck.value("license_name"); isNull(name) || deref(name).Value == "" {
				ck.warn("license", n, `is "other" without license_name: add license_name, a short id for the license (such as my-license-1.0), and license_link, "LICENSE" or a URL to its text`)
			}
		case !IsLicense(license):
			msg := fmt.Sprintf("%q is not a license id the Hub knows", license)
			if s := SuggestLicense(license); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			} else {
				msg += fmt.Sprintf(`; use one of %s, … (all of them: %s) or "other" with license_name`,
					strings.Join(commonLicenses, ", "), LicensesURL)
			}
			ck.add("license", n, "%s", msg)
		}
	}
	for _, key := range []string{"license_name", "license_link"} {
		if !ck.stringKey(key, "a string") {
			continue
		}
		_, v := ck.value(key)
		if license != "other" {
			ck.warn(key, v, `is meant for license: other (the license here is %q); remove it, or set license: other`, license)
		}
		if key == "license_name" && !licenseNameForm.MatchString(deref(v).Value) {
			ck.warn(key, v, "%q should be a short lowercase id, such as my-license-1.0", deref(v).Value)
		}
	}
}

func (ck *checker) tags() {
	_, n := ck.value("tags")
	switch d := deref(n); {
	case isNull(n):
	case isString(n):
		ck.warn("tags", n, "is one string; write tags as a list, one \"- tag\" line each")
	case d.Kind != yaml.SequenceNode:
		ck.add("tags", n, "must be a list of strings, not %s", kindName(d))
	default:
		for _, item := range d.Content {
			it := deref(item)
			switch {
			case isString(item):
				ck.yaml11(item, "tags")
			case it.Kind == yaml.ScalarNode && it.Value == "":
				ck.add("tags", item, "an entry is empty; remove it")
			case it.Kind == yaml.ScalarNode:
				ck.add("tags", item, "%s is %s; tags must be strings: quote it (%q) or remove it", it.Value, kindName(it), it.Value)
			default:
				ck.add("tags", item, "an entry is %s; tags must be strings", kindName(it))
			}
		}
	}
}

// yaml11 warns about a plain word that YAML 1.2 reads as a string but
// YAML 1.1 (PyYAML, in huggingface_hub) as a boolean.
func (ck *checker) yaml11(n *yaml.Node, key string) {
	switch strings.ToLower(n.Value) {
	case "yes", "no", "on", "off", "y", "n":
		if n.Style == 0 {
			ck.warn(key, n, "%s is a boolean to huggingface_hub's YAML reader; quote it (%q)", n.Value, n.Value)
		}
	}
}

// stringList checks a key that holds a string or a list of strings.
func (ck *checker) stringList(key, what string) {
	_, n := ck.value(key)
	d := deref(n)
	switch {
	case isNull(n):
	case isString(n):
		ck.yaml11(d, key)
	case d.Kind == yaml.SequenceNode:
		for _, item := range d.Content {
			if isString(item) {
				ck.yaml11(deref(item), key)
				continue
			}
			ck.add(key, item, "an entry is %s; each must be %s", kindName(deref(item)), what)
		}
	default:
		ck.add(key, n, "must be %s, not %s", what, kindName(d))
	}
}

func (ck *checker) baseModel() {
	_, n := ck.value("base_model")
	d := deref(n)
	check := func(item *yaml.Node) {
		it := deref(item)
		if !isString(item) {
			ck.add("base_model", item, "must be a model repo id such as stabilityai/stable-diffusion-xl-base-1.0, not %s", kindName(it))
			return
		}
		id, err := hub.ParseRepoID(it.Value)
		switch {
		case err != nil:
			why := err.Error()
			var he *hub.Error
			if errors.As(err, &he) && he.Hint != "" {
				why = he.Hint
			}
			ck.add("base_model", item, "is not a repo id: %s", why)
		case id.Type != "" && id.Type != hub.Model:
			ck.add("base_model", item, "%q names a %s; base_model names the model this one derives from", it.Value, id.Type)
		}
	}
	switch {
	case isNull(n):
	case d.Kind == yaml.SequenceNode:
		for _, item := range d.Content {
			check(item)
		}
	default:
		check(n)
	}
}
