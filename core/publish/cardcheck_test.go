package publish_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"modelpub/core/card"
	"modelpub/core/hub/hubemu"
	"modelpub/core/pipeline"
	"modelpub/core/pipeline/pipelinetest"
	"modelpub/core/publish"
)

// A card the Hub refuses stops the publish with the Hub's own errors
// (its validate-yaml answer) before any upload request: no repository
// created, no preupload, no LFS batch or byte, no commit.
func TestBadCardStopsBeforeAnyUpload(t *testing.T) {
	srv := startHub(t)
	src := sd15(t, pipelinetest.Options{Seed: 34})
	bad, err := card.Parse([]byte("---\nlicense: not-a-license\n---\n# Mine\n"))
	require.NoError(t, err)
	o := options(t, srv, src, "alice/bad-card", nil)
	o.Card, o.ReplaceBody = bad, true
	_, err = publish.Run(context.Background(), o)
	require.ErrorIs(t, err, publish.ErrCard)
	assert.Contains(t, err.Error(), "the Hub refuses it")
	assert.Contains(t, err.Error(), "not-a-license")
	var se *publish.StepError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, publish.StepCard, se.Step)

	validated := 0
	for _, r := range srv.Requests() {
		switch r.Class {
		case hubemu.ClassValidate:
			validated++
			assert.Equal(t, 400, r.Status)
		case hubemu.ClassCreate, hubemu.ClassPreupload, hubemu.ClassLFSBatch, hubemu.ClassLFSUpload,
			hubemu.ClassLFSComplete, hubemu.ClassCommit:
			t.Errorf("%s %s reached the emulator before the card was refused", r.Method, r.Path)
		}
	}
	assert.Equal(t, 1, validated, "the Hub checked the card")
}

// A card written before the target was known (the app's generated card,
// edited or not) never reaches the Hub with the <your-namespace>
// placeholder: the snippet names the target repo.
func TestPlaceholderNeverReachesTheHub(t *testing.T) {
	ctx := context.Background()
	srv := startHub(t)
	src := sd15(t, pipelinetest.Options{Seed: 35})
	p, err := pipeline.Open(ctx, src)
	require.NoError(t, err)
	generated := card.Generate(p, card.GenerateOptions{})
	require.Contains(t, generated.Body(), card.PlaceholderNamespace+"/sd15")
	edited := card.Generate(p, card.GenerateOptions{})
	edited.SetBody("# My words\n\n" + edited.Body())
	removed := card.Generate(p, card.GenerateOptions{})
	removed.SetBody("# My words, no code\n")

	tests := []struct {
		name    string
		card    *card.Card
		replace bool
		repo    string
		want    string
	}{
		{"generated", generated, true, "alice/placeholder", `from_pretrained("alice/placeholder")`},
		{"edited", edited, true, "alice/placeholder-edited", `from_pretrained("alice/placeholder-edited")`},
		{"snippet removed", removed, true, "alice/placeholder-removed", "# My words, no code\n"},
		{"own namespace", generated, true, "just-the-name", `from_pretrained("alice/just-the-name")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := options(t, srv, src, tt.repo, nil)
			o.Card, o.ReplaceBody = tt.card, tt.replace
			res, err := publish.Run(ctx, o)
			require.NoError(t, err)
			got := string(download(t, srv.URL(), res.Repo, "main", "README.md"))
			assert.NotContains(t, got, card.PlaceholderNamespace)
			assert.Contains(t, got, tt.want)
		})
	}
}
