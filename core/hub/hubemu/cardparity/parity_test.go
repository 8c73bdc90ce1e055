// Package cardparity_test keeps the emulator's README.md checks in step
// with core/card's: hubemu may not import core/card (core/card reaches
// core/pipeline and the Hub client), so the rules are written twice and
// this test, in its own package so that hubemu's tests do not build the
// pipeline packages, fails when they disagree.
package cardparity_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"

	"modelpub/core/card"
	"modelpub/core/hub/hubemu"
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
	licenses, tasks := hubemu.CardLists()
	assert.Equal(t, card.Licenses(), licenses, "the license list is core/card's")
	assert.Equal(t, card.Tasks(), tasks, "the task list is core/card's")
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
			errs, warnings := hubemu.CheckCard(tt.text, "model")
			warns := slices.DeleteFunc(warnings, func(s string) bool { return s == hubemu.NoMetadataWarning })
			assert.Len(t, errs, len(cardErrs), "errors: emulator %q, core/card %q", errs, cardErrs)
			assert.Len(t, warns, len(cardWarns), "warnings: emulator %q, core/card %q", warns, cardWarns)
		})
	}
}
