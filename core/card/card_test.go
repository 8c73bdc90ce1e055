package card

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Use go test -update to create or update the golden files.
var update = flag.Bool("update", false, "update golden files")

// fixtures are real-world README.md shapes: diffusers' auto-generated card,
// a DreamBooth LoRA training card, a gated Stable Diffusion card with a
// multi-line string, a CRLF card with a BOM, comments and a flow list, and
// a card without metadata.
var fixtures = []string{"diffusers-autogen.md", "dreambooth-lora.md", "sd-gated.md", "comments-crlf.md", "no-metadata.md"}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return data
}

func parseFixture(t *testing.T, name string) *Card {
	t.Helper()
	c, err := Parse(readFixture(t, name))
	require.NoError(t, err)
	return c
}

// golden compares got with testdata/name, or writes it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create it")
	assert.Equal(t, string(want), string(got), "got differs from %s; run go test -update if the change is intended", path)
}

func mustBytes(t *testing.T, c *Card) []byte {
	t.Helper()
	b, err := c.Bytes()
	require.NoError(t, err)
	return b
}

func TestRoundTripFixtures(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			data := readFixture(t, name)
			c, err := Parse(data)
			require.NoError(t, err)
			assert.Equal(t, string(data), string(mustBytes(t, c)), "an unchanged card is written byte for byte")

			// Setting what it already says changes nothing either.
			c.SetMetadata(c.Metadata())
			c.SetBody(c.Body())
			assert.Equal(t, string(data), string(mustBytes(t, c)))

			// A copy through Merge with nothing new is the same file.
			assert.Equal(t, string(data), string(mustBytes(t, Merge(c, New(), true))))
		})
	}
}

func TestMetadataOfFixtures(t *testing.T) {
	tests := []struct {
		file string
		want Metadata
		body string // the body's start
		keys []string
	}{
		{"diffusers-autogen.md", Metadata{LibraryName: "diffusers"}, "\n# Model Card for Model ID\n", []string{"library_name"}},
		{"dreambooth-lora.md", Metadata{LibraryName: "diffusers", License: "other",
			BaseModel: []string{"black-forest-labs/FLUX.1-dev"},
			Tags:      []string{"text-to-image", "diffusers-training", "diffusers", "lora", "flux", "flux-diffusers", "template:sd-lora"}},
			"\n<!-- This model card", []string{"base_model", "library_name", "license", "instance_prompt", "widget", "tags"}},
		{"sd-gated.md", Metadata{License: "creativeml-openrail-m",
			Tags: []string{"stable-diffusion", "stable-diffusion-diffusers", "text-to-image"}},
			"\n# Stable Diffusion v1-5 Model Card\n", []string{"license", "tags", "inference", "extra_gated_prompt", "extra_gated_heading"}},
		{"comments-crlf.md", Metadata{LibraryName: "diffusers", License: "creativeml-openrail-m", Language: []string{"en", "ja"},
			Tags: []string{"stable-diffusion", "text-to-image", "anime"}},
			"\r\n# Anime model\r\n", []string{"license", "language", "tags", "widget", "inference", "extra_gated_prompt", "library_name"}},
		{"no-metadata.md", Metadata{}, "# A model without metadata\n", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c := parseFixture(t, tt.file)
			assert.Equal(t, tt.want, c.Metadata())
			assert.True(t, strings.HasPrefix(c.Body(), tt.body), "body starts %q", c.Body()[:min(40, len(c.Body()))])
			assert.Equal(t, tt.keys, c.Keys())
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		meta Metadata
		body string
	}{
		{"no block", "# Title\n\ntext\n", Metadata{}, "# Title\n\ntext\n"},
		{"empty file", "", Metadata{}, ""},
		{"rule later is no block", "text\n---\na: 1\n---\n", Metadata{}, "text\n---\na: 1\n---\n"},
		{"dashes alone at the end", "---", Metadata{}, "---"},
		{"four dashes", "----\nlicense: mit\n----\n", Metadata{}, "----\nlicense: mit\n----\n"},
		{"simple", "---\nlicense: mit\n---\n# T\n", Metadata{License: "mit"}, "# T\n"},
		{"blank lines before", "\n  \n---\nlicense: mit\n---\nbody", Metadata{License: "mit"}, "body"},
		{"indented opening", "  ---\nlicense: mit\n---\n", Metadata{License: "mit"}, ""},
		{"closing at end of file", "---\nlicense: mit\n---", Metadata{License: "mit"}, ""},
		{"empty block", "---\n---\nbody\n", Metadata{}, "body\n"},
		{"null block", "---\nnull\n---\nbody\n", Metadata{}, "body\n"},
		{"comments only", "---\n# nothing yet\n---\nbody\n", Metadata{}, "body\n"},
		{"crlf", "---\r\nlicense: mit\r\ntags:\r\n- a\r\n---\r\n\r\n# T\r\n", Metadata{License: "mit", Tags: []string{"a"}}, "\r\n# T\r\n"},
		{"bom", "\uFEFF---\nlicense: mit\n---\nbody", Metadata{License: "mit"}, "body"},
		{"scalar lists", "---\nbase_model: a/b\nlanguage: en\ntags: one\n---\n", Metadata{BaseModel: []string{"a/b"}, Language: []string{"en"}, Tags: []string{"one"}}, ""},
		{"null values", "---\nlicense:\ntags:\n---\n", Metadata{}, ""},
		{"non-string scalars read as text", "---\nlicense: 2\ntags: [1, true, {a: b}]\n---\n", Metadata{License: "2", Tags: []string{"1", "true"}}, ""},
		{"alias", "---\nbase_model: &b org/base\nlicense: mit\ntags: [*b]\n---\n", Metadata{License: "mit", BaseModel: []string{"org/base"}, Tags: []string{"org/base"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.in))
			require.NoError(t, err)
			assert.Equal(t, tt.meta, c.Metadata())
			assert.Equal(t, tt.body, c.Body())
			assert.Equal(t, tt.in, string(mustBytes(t, c)), "unchanged, byte for byte")
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		line int
		msg  string
	}{
		{"never closed", "---\nlicense: mit\n\n# Title\n", 1, "never closed"},
		{"never closed after blank lines", "\n\n---\nlicense: mit\n", 3, "never closed"},
		{"bad indentation", "---\nlicense: mit\ntags:\n- a\n  b: c\n---\n", 5, "mapping values are not allowed"},
		{"mapping value on the first line", "---\na: b: c\n---\n", 2, "mapping values are not allowed"},
		{"mapping value later", "---\nlicense: mit\nx: y: z\n---\n", 3, "mapping values are not allowed"},
		{"unterminated quote", "---\nlicense: mit\nname: 'x\n---\nbody\n", 3, "unexpected end of stream"},
		{"tab indentation", "---\ntags:\n\t- a\n---\n", 3, "cannot start any token"},
		{"a list", "---\n- a\n- b\n---\n", 2, "not a list"},
		{"a string", "---\n\nhello\n---\n", 3, `not the text "hello"`},
		{"a number", "---\n42\n---\n", 2, "not a number"},
		{"two documents", "---\nlicense: mit\n...\n--- # second\nb: 2\n---\n", 5, "second YAML document"},
		{"closing line with a space", "---\nlicense: mit\n--- \nb: 2\n---\n", 4, "exactly \"---\""},
		{"crlf error line", "---\r\nlicense: mit\r\nx: y: z\r\n---\r\n", 3, "mapping values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.in))
			require.Error(t, err)
			assert.Nil(t, c)
			assert.True(t, errors.Is(err, ErrInvalidYAML), "errors.Is(%v, ErrInvalidYAML)", err)
			var ye *YAMLError
			require.True(t, errors.As(err, &ye))
			assert.Equal(t, tt.line, ye.Line, "%v", err)
			assert.Contains(t, ye.Msg, tt.msg)
			assert.Contains(t, err.Error(), "README.md: line ")
		})
	}
}

func TestParseSecondDocument(t *testing.T) {
	// "..." ends a document inside the block; anything after it is a
	// second one, which PyYAML's safe_load refuses.
	_, err := Parse([]byte("---\nlicense: mit\n...\nb: 2\n---\n"))
	var ye *YAMLError
	require.ErrorAs(t, err, &ye)
	assert.Equal(t, 4, ye.Line)
	assert.Contains(t, ye.Msg, "second YAML document")
}

func TestNewCardBytes(t *testing.T) {
	c := New()
	assert.Equal(t, "", string(mustBytes(t, c)))
	c.SetBody("\n# Title\n")
	assert.Equal(t, "\n# Title\n", string(mustBytes(t, c)), "no metadata: no block")

	c.SetMetadata(Metadata{Tags: []string{"b", "yes", "123"}, PipelineTag: "text-to-image", License: "mit",
		LibraryName: "diffusers", Language: []string{"en"}, BaseModel: []string{"org/base"}, LicenseLink: "LICENSE"})
	want := "---\n" +
		"base_model: org/base\n" +
		"language:\n- en\n" +
		"library_name: diffusers\n" +
		"license: mit\n" +
		"license_link: LICENSE\n" +
		"pipeline_tag: text-to-image\n" +
		"tags:\n- b\n- \"yes\"\n- \"123\"\n" +
		"---\n\n# Title\n"
	assert.Equal(t, want, string(mustBytes(t, c)), "keys in ModelCardData order, ambiguous words quoted")

	c.SetMetadata(Metadata{})
	assert.Equal(t, "\n# Title\n", string(mustBytes(t, c)), "every key removed: no block")

	var zero Card
	zero.SetMetadata(Metadata{License: "mit"})
	assert.Equal(t, "---\nlicense: mit\n---\n", string(mustBytes(t, &zero)), "the zero value is an empty card")
}

func TestBodyThatLooksLikeABlock(t *testing.T) {
	c := New()
	c.SetBody("---\nlicense: mit\n---\n")
	out := mustBytes(t, c)
	assert.Equal(t, "---\n---\n---\nlicense: mit\n---\n", string(out), "an empty block keeps the body a body")
	back, err := Parse(out)
	require.NoError(t, err)
	assert.Equal(t, Metadata{}, back.Metadata())
	assert.Equal(t, c.Body(), back.Body())

	// A block closed at the end of the file gets a line break once a body
	// follows it.
	c, err = Parse([]byte("---\nlicense: mit\n---"))
	require.NoError(t, err)
	c.SetBody("# T\n")
	assert.Equal(t, "---\nlicense: mit\n---\n# T\n", string(mustBytes(t, c)))
}

// TestSetMetadataEdits edits the fixtures and compares with goldens: only
// the keys that changed are rewritten; order, comments, unknown keys, line
// breaks and the body stay.
func TestSetMetadataEdits(t *testing.T) {
	tests := []struct {
		file, golden string
		edit         func(m *Metadata)
	}{
		{"dreambooth-lora.md", "dreambooth-lora.edited.golden", func(m *Metadata) {
			m.License, m.LicenseName, m.LicenseLink = "other", "flux-1-dev-non-commercial-license", "https://huggingface.co/black-forest-labs/FLUX.1-dev/blob/main/LICENSE.md"
			m.Tags = append(m.Tags, "modelpub")
			m.PipelineTag = "text-to-image"
		}},
		{"comments-crlf.md", "comments-crlf.edited.golden", func(m *Metadata) {
			m.License = "openrail++"
			m.Tags = []string{"stable-diffusion", "anime", "sdxl"}
			m.Language = nil
			m.PipelineTag = "text-to-image"
		}},
		{"sd-gated.md", "sd-gated.edited.golden", func(m *Metadata) {
			m.LibraryName = "diffusers"
			m.BaseModel = []string{"CompVis/stable-diffusion-v1-2"}
			m.Tags = m.Tags[1:]
		}},
		{"diffusers-autogen.md", "diffusers-autogen.edited.golden", func(m *Metadata) {
			m.License = "apache-2.0"
			m.Tags = []string{"diffusers", "safetensors"}
		}},
		{"no-metadata.md", "no-metadata.edited.golden", func(m *Metadata) {
			m.License = "mit"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c := parseFixture(t, tt.file)
			m := c.Metadata()
			before := map[string]any{}
			for _, k := range c.Keys() {
				before[k], _ = c.Get(k)
			}
			tt.edit(&m)
			c.SetMetadata(m)
			out := mustBytes(t, c)
			golden(t, tt.golden, out)

			back, err := Parse(out)
			require.NoError(t, err)
			assert.Equal(t, m, back.Metadata())
			assert.Equal(t, c.Body(), back.Body())
			for k, v := range before {
				if isMetadataKey(k) {
					continue
				}
				got, ok := back.Get(k)
				assert.True(t, ok, "unknown key %s kept", k)
				assert.Equal(t, v, got, "unknown key %s unchanged", k)
			}
			assert.Empty(t, back.Validate())
		})
	}
}

func TestEditKeepsUnchangedText(t *testing.T) {
	data := readFixture(t, "comments-crlf.md")
	c, err := Parse(data)
	require.NoError(t, err)
	m := c.Metadata()
	m.License = "mit"
	c.SetMetadata(m)
	out := string(mustBytes(t, c))
	assert.True(t, strings.HasPrefix(out, "\uFEFF---\r\n# Model card metadata"), "BOM and head comment kept")
	// go-yaml writes a line comment one space after the value.
	assert.Contains(t, out, "\r\nlicense: mit # same as the base model\r\n", "the line comment moves with the value")
	assert.Contains(t, out, "tags: [stable-diffusion, \"text-to-image\", anime]  # flow list\r\n")
	assert.Contains(t, out, "\r\n  - text: \"1girl, masterpiece\"\r\n    example_title: Girl   # shown on the button\r\n")
	assert.Contains(t, out, "# trailing comment: keep me\r\n---\r\n")
	assert.NotContains(t, strings.ReplaceAll(out, "\r\n", ""), "\n", "CRLF throughout")
	assert.Equal(t, len(strings.Split(string(data), "\n")), len(strings.Split(out, "\n")), "one line changed, none added")
}

func TestGetSetDelete(t *testing.T) {
	c := parseFixture(t, "dreambooth-lora.md")
	v, ok := c.Get("instance_prompt")
	require.True(t, ok)
	assert.Equal(t, "a photo of sks dog", v)
	w, ok := c.Get("widget")
	require.True(t, ok)
	assert.Equal(t, []any{
		map[string]any{"text": "A photo of sks dog in a bucket", "output": map[string]any{"url": "image_0.png"}},
		map[string]any{"text": "A photo of sks dog in a bucket", "output": map[string]any{"url": "image_1.png"}},
	}, w)
	_, ok = c.Get("nope")
	assert.False(t, ok)

	require.NoError(t, c.Set("instance_prompt", "a photo of TOK dog"))
	require.NoError(t, c.Set("inference", map[string]any{"parameters": map[string]any{"num_inference_steps": 28}}))
	require.NoError(t, c.Set("datasets", []string{"someone/dogs"}))
	assert.Error(t, c.Set("bad", func() {}))
	c.Delete("widget")
	assert.Equal(t, []string{"base_model", "library_name", "license", "instance_prompt", "tags", "inference", "datasets"}, c.Keys())

	out := string(mustBytes(t, c))
	assert.Contains(t, out, "instance_prompt: a photo of TOK dog\ntags:\n- text-to-image\n")
	assert.Contains(t, out, "inference:\n  parameters:\n    num_inference_steps: 28\ndatasets:\n- someone/dogs\n---\n")
	back, err := Parse([]byte(out))
	require.NoError(t, err)
	v, _ = back.Get("inference")
	assert.Equal(t, map[string]any{"parameters": map[string]any{"num_inference_steps": 28}}, v)
}

func TestMerge(t *testing.T) {
	remote := parseFixture(t, "dreambooth-lora.md")
	remoteBytes := mustBytes(t, remote)

	local := New()
	local.SetMetadata(Metadata{LibraryName: "diffusers", PipelineTag: "text-to-image", License: "apache-2.0",
		Tags: []string{"diffusers", "safetensors", "FluxPipeline", "text-to-image"}})
	require.NoError(t, local.Set("datasets", []string{"someone/dogs"}))
	require.NoError(t, local.Set("instance_prompt", "ignored: remote has it"))
	local.SetBody("\n# Generated\n")
	localBytes := mustBytes(t, local)

	got := Merge(remote, local, true)
	m := got.Metadata()
	assert.Equal(t, "apache-2.0", m.License, "local's known keys override")
	assert.Equal(t, "text-to-image", m.PipelineTag)
	assert.Equal(t, []string{"black-forest-labs/FLUX.1-dev"}, m.BaseModel, "remote's key that local leaves empty stays")
	assert.Equal(t, []string{"text-to-image", "diffusers-training", "diffusers", "lora", "flux", "flux-diffusers",
		"template:sd-lora", "safetensors", "FluxPipeline"}, m.Tags, "union, remote first")
	assert.Equal(t, []string{"base_model", "library_name", "license", "instance_prompt", "widget", "tags", "pipeline_tag", "datasets"},
		got.Keys(), "remote's order, new keys appended")
	v, _ := got.Get("instance_prompt")
	assert.Equal(t, "a photo of sks dog", v, "remote's unknown keys win")
	assert.Equal(t, remote.Body(), got.Body())

	assert.Equal(t, "\n# Generated\n", Merge(remote, local, false).Body())
	assert.Equal(t, string(remoteBytes), string(mustBytes(t, remote)), "remote unchanged")
	assert.Equal(t, string(localBytes), string(mustBytes(t, local)), "local unchanged")

	cp := Merge(nil, local, true)
	assert.Equal(t, string(localBytes), string(mustBytes(t, cp)))
	cp.SetBody("changed")
	assert.Equal(t, "\n# Generated\n", local.Body(), "a copy, not the same card")
	require.NoError(t, cp.Set("datasets", []string{"x"}))
	v, _ = local.Get("datasets")
	assert.Equal(t, []any{"someone/dogs"}, v)

	// A remote card with metadata only gets local's body.
	bare, err := Parse([]byte("---\nlicense: mit\n---\n"))
	require.NoError(t, err)
	assert.Equal(t, "\n# Generated\n", Merge(bare, local, true).Body())

	// A listed license replaces an "other" one and its name.
	other, err := Parse([]byte("---\nlicense: other\nlicense_name: my-license\nlicense_link: LICENSE\n---\n"))
	require.NoError(t, err)
	mit := New()
	mit.SetMetadata(Metadata{License: "mit"})
	assert.Equal(t, "---\nlicense: mit\n---\n", string(mustBytes(t, Merge(other, mit, true))))
	// … but a link beside a listed license stays.
	linked, err := Parse([]byte("---\nlicense: apache-2.0\nlicense_link: https://example.com/LICENSE\n---\n"))
	require.NoError(t, err)
	assert.Equal(t, "---\nlicense: mit\nlicense_link: https://example.com/LICENSE\n---\n", string(mustBytes(t, Merge(linked, mit, true))))
}

func TestMergeUnchangedIsByteExact(t *testing.T) {
	remote := parseFixture(t, "comments-crlf.md")
	local := New()
	local.SetMetadata(Metadata{LibraryName: "diffusers", Tags: []string{"anime"}})
	assert.Equal(t, string(readFixture(t, "comments-crlf.md")), string(mustBytes(t, Merge(remote, local, true))))
}

func TestAnchorsFallBackToWholeBlock(t *testing.T) {
	c, err := Parse([]byte("---\nbase: &b org/base\nbase_model: *b\nlicense: mit\n---\nbody\n"))
	require.NoError(t, err)
	m := c.Metadata()
	m.License = "apache-2.0"
	c.SetMetadata(m)
	out := mustBytes(t, c)
	back, err := Parse(out)
	require.NoError(t, err)
	assert.Equal(t, m, back.Metadata())
	assert.Equal(t, "---\nbase: &b org/base\nbase_model: *b\nlicense: apache-2.0\n---\nbody\n", string(out))
}

func TestDeepNesting(t *testing.T) {
	in := "---\nlicense: mit\nx: " + strings.Repeat("[", 9000) + strings.Repeat("]", 9000) + "\n---\n"
	c, err := Parse([]byte(in))
	require.NoError(t, err)
	assert.Equal(t, in, string(mustBytes(t, c)))
	m := c.Metadata()
	m.License = "apache-2.0"
	c.SetMetadata(m)
	out := mustBytes(t, c)
	assert.Equal(t, strings.Replace(in, "mit", "apache-2.0", 1), string(out))

	_, err = Parse([]byte("---\nx: " + strings.Repeat("[", 20000) + "\n---\n"))
	assert.ErrorIs(t, err, ErrInvalidYAML, "go-yaml's depth limit")
}

func TestAliasBombInMerge(t *testing.T) {
	var b strings.Builder
	b.WriteString("---\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	b.WriteString("---\n")
	local, err := Parse([]byte(b.String()))
	require.NoError(t, err)
	start := time.Now()
	got := Merge(New(), local, true)
	assert.Less(t, time.Since(start), 10*time.Second)
	_, err = got.Bytes()
	require.NoError(t, err)
}

// TestParseErrorLines checks go-yaml's 0-based parser error lines are
// turned into file lines.
func TestParseErrorLines(t *testing.T) {
	tests := []struct {
		in   string
		line int
	}{
		{"---\nlicense: mit\ntags: [a\n---\n", 3},
		{"---\nlicense: mit\nw: {a: 1\n---\n", 3},
		{"---\nlicense: mit\nz: [\n---\n", 4}, // found at the end of the text
		{"---\na:\n  - x\n  y\n---\n", 4},
		{"---\n\n\nlicense: mit\n- x\n---\n", 4}, // the mapping that breaks starts on line 4
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.in))
		var ye *YAMLError
		require.ErrorAs(t, err, &ye, "%q", tt.in)
		assert.Equal(t, tt.line, ye.Line, "%q: %v", tt.in, err)
	}
}
