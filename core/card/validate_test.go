package card

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidate(t *testing.T) {
	type want struct {
		key     string
		line    int
		msg     string
		warning bool
	}
	tests := []struct {
		name string
		in   string
		want []want
	}{
		{"valid", "---\nlicense: mit\nlibrary_name: diffusers\npipeline_tag: text-to-image\nbase_model:\n- org/a\n- b\nlanguage: en\ntags:\n- x\n- \"123\"\n---\n", nil},
		{"no metadata", "# just text\n", nil},
		{"unknown license", "---\nlibrary_name: diffusers\nlicense: foo\n---\n",
			[]want{{"license", 3, `"foo" is not a license id the Hub knows; use one of apache-2.0, mit,`, false}}},
		{"license in capitals", "---\nlicense: Apache-2.0\n---\n",
			[]want{{"license", 2, `did you mean "apache-2.0"?`, false}}},
		{"license list", "---\nlicense:\n- mit\n---\n", []want{{"license", 3, "must be one license id", false}}},
		{"license number", "---\nlicense: 2\n---\n", []want{{"license", 2, "not a number", false}}},
		{"other without a name", "---\nlicense: other\n---\n", []want{{"license", 2, `is "other" without license_name`, true}}},
		{"other with a name", "---\nlicense: other\nlicense_name: my-license\nlicense_link: LICENSE\n---\n", nil},
		{"name beside a listed license", "---\nlicense: mit\nlicense_name: mine\nlicense_link: LICENSE\n---\n", []want{
			{"license_name", 3, `meant for license: other (the license here is "mit")`, true},
			{"license_link", 4, "meant for license: other", true}}},
		{"license name not an id", "---\nlicense: other\nlicense_name: My License\n---\n",
			[]want{{"license_name", 3, "short lowercase id", true}}},
		{"license name a list", "---\nlicense: other\nlicense_name: [a]\n---\n",
			[]want{{"license_name", 3, "must be a string, not a list", false}, {"license", 2, "without license_name", true}}},
		{"tag number", "---\ntags:\n- ok\n- 123\n- 1.5\n---\n", []want{
			{"tags", 4, `123 is a number; tags must be strings: quote it ("123")`, false},
			{"tags", 5, "1.5 is a number", false}}},
		{"tag list and mapping", "---\ntags:\n- [a, b]\n- k: v\n- true\n- ~\n-\n---\n", []want{
			{"tags", 7, "an entry is empty; remove it", false},
			{"tags", 3, "an entry is a list", false},
			{"tags", 4, "an entry is a mapping", false},
			{"tags", 5, "true is a boolean", false},
			{"tags", 6, "is null", false}}},
		{"tags a mapping", "---\ntags:\n  a: b\n---\n", []want{{"tags", 3, "must be a list of strings, not a mapping", false}}},
		{"tags one string", "---\ntags: diffusers\n---\n", []want{{"tags", 2, "is one string", true}}},
		{"yaml 1.1 booleans", "---\nlanguage:\n- en\n- no\ntags:\n- on\n- 'off'\n---\n", []want{
			{"language", 4, `no is a boolean to huggingface_hub's YAML reader; quote it ("no")`, true},
			{"tags", 6, "on is a boolean", true}}},
		{"base model not a repo id", "---\nbase_model: not a repo\n---\n", []want{{"base_model", 2, "is not a repo id", false}}},
		{"base model list", "---\nbase_model:\n- org/ok\n- bad--name/x\n- 12\n- datasets/org/d\n---\n", []want{
			{"base_model", 4, "is not a repo id", false},
			{"base_model", 5, "must be a model repo id", false},
			{"base_model", 6, `"datasets/org/d" names a dataset`, false}}},
		{"pipeline tag", "---\npipeline_tag: inpainting\n---\n", []want{{"pipeline_tag", 2, `"inpainting" is not a task the Hub knows`, false}}},
		{"pipeline tag spelling", "---\npipeline_tag: Text_To_Image\n---\n", []want{{"pipeline_tag", 2, `did you mean "text-to-image"?`, false}}},
		{"pipeline tag a list", "---\npipeline_tag: [text-to-image]\n---\n", []want{{"pipeline_tag", 2, "must be a Hub task", false}}},
		{"language mapping", "---\nlanguage:\n  en: true\n---\n", []want{{"language", 3, "must be a language code", false}}},
		{"language entry list", "---\nlanguage:\n- en\n- [fr]\n---\n", []want{{"language", 4, "an entry is a list", false}}},
		{"library name", "---\nlibrary_name: 3\n---\n", []want{{"library_name", 2, "must be the library's name", false}}},
		{"duplicate key", "---\nlicense: mit\ntags: [a]\nlicense: apache-2.0\n---\n", []want{{"license", 4, "appears a second time (first on line 2)", false}}},
		{"lines after blank lines and crlf", "\r\n\r\n---\r\n# c\r\nlicense: nope\r\n---\r\n", []want{{"license", 5, "not a license id", false}}},
		{"unknown keys are not checked", "---\nwidget: 3\ndatasets: {a: 1}\n---\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.in))
			require.NoError(t, err)
			got := append(c.Validate(), c.Warnings()...)
			require.Len(t, got, len(tt.want), "%v", got)
			for _, w := range tt.want {
				found := false
				for _, p := range got {
					if p.Key == w.key && p.Line == w.line && p.Warning == w.warning && strings.Contains(p.Message, w.msg) {
						found = true
					}
				}
				assert.True(t, found, "want %s line %d %q (warning %v); got %v", w.key, w.line, w.msg, w.warning, got)
			}
			for _, p := range c.Validate() {
				assert.False(t, p.Warning)
			}
			for _, p := range c.Warnings() {
				assert.True(t, p.Warning)
			}
		})
	}
}

func TestProblemError(t *testing.T) {
	c, err := Parse([]byte("---\nlibrary_name: diffusers\nlicense: foo\n---\n"))
	require.NoError(t, err)
	ps := c.Validate()
	require.Len(t, ps, 1)
	assert.Equal(t, `README.md: line 3: license: "foo" is not a license id the Hub knows; use one of apache-2.0, mit, openrail++, `+
		`creativeml-openrail-m, cc-by-4.0, cc-by-nc-4.0, llama3.1, gemma, … (all of them: https://huggingface.co/docs/hub/repositories-licenses) `+
		`or "other" with license_name`, ps[0].Error())
	assert.Equal(t, "README.md: tags: x", Problem{Key: "tags", Message: "x"}.Error())
	assert.Equal(t, "README.md: x", Problem{Message: "x"}.Error())
}

// TestValidateLinesAfterEdit: lines are those of the file Bytes writes, so
// a problem in a key set by SetMetadata has one.
func TestValidateLinesAfterEdit(t *testing.T) {
	c := New()
	c.SetBody("\n# T\n")
	c.SetMetadata(Metadata{LibraryName: "diffusers", License: "Apache 2.0", Tags: []string{"a"}})
	ps := c.Validate()
	require.Len(t, ps, 1)
	assert.Equal(t, Problem{Key: "license", Line: 3, Message: `"Apache 2.0" is not a license id the Hub knows; did you mean "apache-2.0"?`}, ps[0])

	c = parseFixture(t, "sd-gated.md")
	m := c.Metadata()
	m.BaseModel = []string{"not/a/repo/id"}
	c.SetMetadata(m)
	ps = c.Validate()
	require.Len(t, ps, 1)
	assert.Equal(t, "base_model", ps[0].Key)
	assert.Equal(t, 16, ps[0].Line, "appended after the last key")
}

func TestValidateFixtures(t *testing.T) {
	for _, name := range fixtures {
		c := parseFixture(t, name)
		assert.Empty(t, c.Validate(), name)
	}
	c := parseFixture(t, "dreambooth-lora.md")
	ws := c.Warnings()
	require.Len(t, ws, 1, "diffusers' FLUX training cards say license: other without a name")
	assert.Equal(t, Problem{Key: "license", Line: 4, Warning: true,
		Message: `is "other" without license_name: add license_name, a short id for the license (such as my-license-1.0), and license_link, "LICENSE" or a URL to its text`}, ws[0])
}

func TestLicenses(t *testing.T) {
	for _, id := range []string{"apache-2.0", "mit", "openrail", "openrail++", "creativeml-openrail-m", "bigscience-openrail-m",
		"llama2", "llama3", "llama3.1", "gemma", "cc-by-4.0", "cc-by-nc-4.0", "other", "unknown"} {
		assert.True(t, IsLicense(id), id)
	}
	for _, id := range []string{"", "MIT", "Apache-2.0", "apache 2.0", "gpl-4.0", "openrail-m"} {
		assert.False(t, IsLicense(id), id)
	}
	l := Licenses()
	assert.Equal(t, "other", l[len(l)-1])
	l[0] = "changed"
	assert.Equal(t, "apache-2.0", Licenses()[0], "a copy")
	seen := map[string]bool{}
	for _, id := range l[1:] {
		assert.False(t, seen[id], "%s twice", id)
		seen[id] = true
		assert.Equal(t, strings.ToLower(id), id)
	}

	for in, want := range map[string]string{"MIT": "mit", "Apache 2.0": "apache-2.0", "apache-2.0 license": "apache-2.0",
		"CC_BY_NC_4.0": "cc-by-nc-4.0", "OpenRAIL++": "openrail++", "nope": "", "": ""} {
		assert.Equal(t, want, SuggestLicense(in), in)
	}
}
