package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"modelpub/core/tensors"
)

// ModelIndexFile is the pipeline's description file at the folder's root.
const ModelIndexFile = "model_index.json"

// ErrModelIndex reports a model_index.json that cannot be used.
var ErrModelIndex = errors.New("invalid model_index.json")

// ModelIndex is a parsed model_index.json. Every key is kept, in file order,
// so writing it back loses nothing.
type ModelIndex struct {
	// ClassName is the pipeline class, e.g. "StableDiffusionPipeline".
	ClassName string
	// CustomModule is set when _class_name is a [module, class] pair, the
	// form custom pipelines use.
	CustomModule string
	// DiffusersVersion and NameOrPath are _diffusers_version and _name_or_path.
	DiffusersVersion string
	NameOrPath       string
	// Components are the entries whose value is a [library, class] pair, in
	// file order. A [null, null] pair (an optional component left out) has
	// an empty Library and Class.
	Components []ComponentRef

	keys []string
	raw  map[string]json.RawMessage
}

// ComponentRef is one component entry of model_index.json.
type ComponentRef struct {
	Name    string
	Library string // "diffusers", "transformers", a pipeline folder such as "stable_diffusion", or a module path
	Class   string
}

// IsNull reports a [null, null] entry.
func (c ComponentRef) IsNull() bool { return c.Library == "" && c.Class == "" }

// Keys returns every top-level key in file order.
func (mi *ModelIndex) Keys() []string { return append([]string(nil), mi.keys...) }

// Raw returns the JSON of a top-level key as it was in the file.
func (mi *ModelIndex) Raw(key string) (json.RawMessage, bool) {
	v, ok := mi.raw[key]
	return v, ok
}

// Component returns the entry called name.
func (mi *ModelIndex) Component(name string) (ComponentRef, bool) {
	for _, c := range mi.Components {
		if c.Name == name {
			return c, true
		}
	}
	return ComponentRef{}, false
}

// ParseModelIndex parses model_index.json. Keys that start with "_" and
// flags such as requires_safety_checker are kept verbatim; a two-element
// array of strings or nulls is a component.
func ParseModelIndex(data []byte) (*ModelIndex, error) {
	fail := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrModelIndex, fmt.Sprintf(format, a...))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, fail("%v", err)
	}
	if tok != json.Delim('{') {
		return nil, fail("it is not a JSON object")
	}
	mi := &ModelIndex{raw: map[string]json.RawMessage{}}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, fail("%v", err)
		}
		key := kt.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fail("key %q: %v", key, err)
		}
		if _, dup := mi.raw[key]; dup {
			return nil, fail("key %q appears twice", key)
		}
		mi.keys = append(mi.keys, key)
		mi.raw[key] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, fail("%v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fail("unexpected data after the JSON object")
	}

	for _, key := range mi.keys {
		v := mi.raw[key]
		switch key {
		case "_class_name":
			var s string
			if json.Unmarshal(v, &s) == nil {
				mi.ClassName = s
				continue
			}
			var pair []string
			if json.Unmarshal(v, &pair) != nil || len(pair) != 2 || pair[1] == "" {
				return nil, fail("_class_name must be a string or a [module, class] pair, not %s", abbrev(v))
			}
			mi.CustomModule, mi.ClassName = pair[0], pair[1]
		case "_diffusers_version":
			if json.Unmarshal(v, &mi.DiffusersVersion) != nil {
				return nil, fail("_diffusers_version must be a string, not %s", abbrev(v))
			}
		case "_name_or_path":
			_ = json.Unmarshal(v, &mi.NameOrPath) // informative only; diffusers ignores it
		default:
			if strings.HasPrefix(key, "_") {
				continue
			}
			var pair []*string
			if json.Unmarshal(v, &pair) != nil || len(pair) != 2 {
				continue // a flag such as requires_safety_checker
			}
			if (pair[0] == nil) != (pair[1] == nil) {
				return nil, fail("component %q is %s: use [library, class] or [null, null]", key, abbrev(v))
			}
			ref := ComponentRef{Name: key}
			if pair[0] != nil {
				ref.Library, ref.Class = *pair[0], *pair[1]
				if ref.Library == "" || ref.Class == "" {
					return nil, fail("component %q has an empty library or class", key)
				}
				if err := checkComponentName(key); err != nil {
					return nil, fail("%v", err)
				}
			}
			mi.Components = append(mi.Components, ref)
		}
	}
	if mi.ClassName == "" {
		return nil, fail("_class_name is missing")
	}
	return mi, nil
}

// checkComponentName refuses component names that would point outside the
// pipeline folder when used as a folder name.
func checkComponentName(name string) error {
	if name == "." || name == ".." || strings.ContainsAny(name, `/\:`+"\x00") {
		return fmt.Errorf("component name %q is not a plain folder name", name)
	}
	return nil
}

func abbrev(v json.RawMessage) string {
	s := string(v)
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

// MarshalPython writes the index as diffusers does: every key sorted, two
// spaces of indentation, a trailing newline.
func (mi *ModelIndex) MarshalPython() ([]byte, error) {
	m := make(map[string]any, len(mi.raw))
	for k, v := range mi.raw {
		m[k] = v
	}
	return tensors.MarshalPythonJSON(m)
}
