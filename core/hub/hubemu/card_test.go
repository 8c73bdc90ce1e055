package hubemu

import (
	"encoding/json"
	"net/url"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/card"
)

// cardCases are README.md texts that exercise every rule of core/card's
// Validate and Warnings.
var cardCases = []struct {
	name, text string
}{
	{"no metadata", "# Title\n"},
	{"empty block", "---\n---\n# x\n"},
	{"null block", "---\nnull\n---\n"},
	{"valid", "---\nlicense: apache-2.0\nlibrary_name: diffusers\npipeline_tag: text-to-image\ntags:\n- a\n- b\nbase_model: stabilityai/sdxl\nlanguage: en\n---\n# x\n"},
	{"leading blank lines and BOM", "\uFEFF\n\n---\nlicense: mit\n---\n"},
	{"crlf", "---\r\nlicense: mit\r\n---\r\nbody\r\n"},
	{"unknown license", "---\nlicense: apache2\n---\n"},
	{"license MIT uppercase", "---\nlicense: MIT\n---\n"},
	{"license other alone", "---\nlicense: other\n---\n"},
	{"license other named", "---\nlicense: other\nlicense_name: my-license-1.0\nlicense_link: LICENSE\n---\n"},
	{"license_name beside mit", "---\nlicense: mit\nlicense_name: Foo Bar\n---\n"},
	{"license a list", "---\nlicense:\n- mit\n---\n"},
	{"license a number", "---\nlicense: 3\n---\n"},
	{"tags a string", "---\ntags: diffusers\n---\n"},
	{"tags a mapping", "---\ntags:\n  a: b\n---\n"},
	{"tags with number", "---\ntags:\n- 12\n- ok\n---\n"},
	{"tags with empty", "---\ntags:\n- ''\n---\n"},
	{"tags with yes", "---\ntags:\n- yes\n- 'no'\n---\n"},
	{"tags nested list", "---\ntags:\n- [a, b]\n---\n"},
	{"duplicate key", "---\nlicense: mit\nlicense: mit\n---\n"},
	{"bad base_model", "---\nbase_model: not a repo\n---\n"},
	{"base_model dataset", "---\nbase_model: datasets/a/b\n---\n"},
	{"base_model singular type", "---\nbase_model: model/a/b\n---\n"},
	{"base_model list", "---\nbase_model:\n- a/b\n- c--d/e\n---\n"},
	{"base_model number", "---\nbase_model: 7\n---\n"},
	{"base_model unicode", "---\nbase_model: ünï/cødé\n---\n"},
	{"base_model dotgit", "---\nbase_model: a/b.git\n---\n"},
	{"pipeline_tag unknown", "---\npipeline_tag: text_to_image\n---\n"},
	{"pipeline_tag list", "---\npipeline_tag: [text-to-image]\n---\n"},
	{"library_name number", "---\nlibrary_name: 1\n---\n"},
	{"language list", "---\nlanguage:\n- en\n- fr\n---\n"},
	{"language mapping", "---\nlanguage:\n  en: 1\n---\n"},
	{"language list of numbers", "---\nlanguage:\n- 1\n---\n"},
	{"language no", "---\nlanguage: no\n---\n"},
	{"not a mapping", "---\n- a\n- b\n---\n"},
	{"scalar block", "---\njust text\n---\n"},
	{"invalid yaml", "---\nlicense: [mit\n---\n"},
	{"tab indentation", "---\nlicense:\n\t- mit\n---\n"},
	{"never closed", "---\nlicense: mit\n"},
	{"second document", "---\nlicense: mit\n...\nfoo: bar\n---\n"},
	{"alias", "---\nx: &a mit\nlicense: *a\n---\n"},
	{"null values", "---\nlicense:\ntags:\nbase_model: ~\n---\n"},
	{"dashes not first", "# t\n---\nlicense: foo\n---\n"},
	{"indented opening", "  ---\nlicense: foo\n---\n"},
}

// TestCardRulesMatchCoreCard: the emulator refuses exactly what core/card's
// Validate reports and warns exactly when Warnings does (plus the Hub's own
// warning for a card without metadata).
func TestCardRulesMatchCoreCard(t *testing.T) {
	assert.Equal(t, card.Licenses(), cardLicenses, "the license list is core/card's")
	assert.Equal(t, card.Tasks(), cardTasks, "the task list is core/card's")
	for _, tt := range cardCases {
		t.Run(tt.name, func(t *testing.T) {
			var cardErrs, cardWarns []string
			c, err := card.Parse([]byte(tt.text))
			if err != nil {
				cardErrs = []string{err.Error()}
			} else {
				for _, p := range c.Validate() {
					cardErrs = append(cardErrs, p.Error())
				}
				for _, p := range c.Warnings() {
					cardWarns = append(cardWarns, p.Error())
				}
			}
			p := checkCard(tt.text, "model")
			warns := slices.DeleteFunc(slices.Clone(p.warnings), func(s string) bool { return s == noMetadata })
			assert.Len(t, p.errors, len(cardErrs), "errors: emulator %q, core/card %q", p.errors, cardErrs)
			assert.Len(t, warns, len(cardWarns), "warnings: emulator %q, core/card %q", warns, cardWarns)
		})
	}
}

func TestValidateYAMLEndpoint(t *testing.T) {
	h := newHub(t, Options{})
	type answer struct {
		Errors   []struct{ Message string } `json:"errors"`
		Warnings []struct{ Message string } `json:"warnings"`
	}
	post := func(content, typ string) (int, answer) {
		r := h.postJSON("/api/validate-yaml", "", map[string]any{"content": content, "repoType": typ})
		var a answer
		r.json(t, &a)
		require.NotNil(t, a.Errors, "errors is always a list: %s", r.body)
		require.NotNil(t, a.Warnings, "warnings is always a list: %s", r.body)
		return r.status, a
	}
	st, a := post("---\nlicense: mit\n---\n", "model")
	assert.Equal(t, 200, st)
	assert.Empty(t, a.Errors)
	assert.Empty(t, a.Warnings)

	st, a = post("# no metadata\n", "model")
	assert.Equal(t, 200, st)
	require.Len(t, a.Warnings, 1)
	assert.Equal(t, noMetadata, a.Warnings[0].Message)

	st, a = post("---\nlicense: nope\npipeline_tag: nope\n---\n", "model")
	assert.Equal(t, 400, st)
	assert.Len(t, a.Errors, 2)
	assert.Contains(t, a.Errors[0].Message, "license")

	// pipeline_tag and base_model are model rules.
	st, _ = post("---\npipeline_tag: nope\nbase_model: datasets/a/b\n---\n", "dataset")
	assert.Equal(t, 200, st)
	r := h.postJSON("/api/validate-yaml", "", map[string]any{"content": "x", "repoType": "bucket"})
	assert.Equal(t, 400, r.status)
	r = h.postJSON("/api/validate-yaml", "", map[string]any{"repoType": "model"})
	assert.Equal(t, 400, r.status)

	// Form-encoded, as older huggingface_hub sends it.
	form := url.Values{"content": {"---\nlicense: nope\n---\n"}, "repoType": {"model"}}
	r = h.do("POST", "/api/validate-yaml", "", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, []byte(form.Encode()))
	assert.Equal(t, 400, r.status, "%s", r.body)
}

func TestCommitRefusesInvalidReadme(t *testing.T) {
	h := newHub(t, Options{})
	h.createRepo("alice", "m", false)
	r := h.commit("alice/m", "main", "", commitBody("card", "", fileLine("README.md", []byte("---\nlicense: nope\n---\n"))))
	assert.Equal(t, 400, r.status, "%s", r.body)
	assert.Contains(t, r.obj(t)["error"], "invalid metadata in README.md")
	// A README.md in a folder is not the card; a valid card goes in.
	r = h.commit("alice/m", "main", "", commitBody("card", "", fileLine("docs/README.md", []byte("---\nlicense: nope\n---\n")),
		fileLine("README.md", []byte("---\nlicense: mit\n---\n"))))
	assert.Equal(t, 200, r.status, "%s", r.body)
	var entries []treeEntry
	require.NoError(t, json.Unmarshal([]byte(h.tree("alice/m")), &entries))
	assert.Len(t, entries, 4) // .gitattributes, README.md, docs, docs/README.md
}
