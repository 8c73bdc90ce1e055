package hubemu

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
