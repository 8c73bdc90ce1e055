package publish

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"

	"modelpub/core/card"
	"modelpub/core/hub"
	"modelpub/core/pipeline"
)

// card builds README.md: the explicit card, else the source's README.md
// with generated metadata, else a generated card; then merged with the
// README.md already on the Hub and validated as the Hub would.
func (j *job) card(ctx context.Context, src *pipeline.Pipeline) ([]byte, error) {
	j.ev.emit(Event{Step: StepCard, Message: "writing the model card"})
	genOpts := card.GenerateOptions{RepoID: j.repoIDForCard(),
		License: j.opts.License, LicenseName: j.opts.LicenseName, BaseModel: j.opts.BaseModel, Variant: j.opts.Variant}
	var local *card.Card
	switch {
	case j.opts.Card != nil:
		local = card.Merge(nil, j.opts.Card, false)
		m := local.Metadata()
		if m.LibraryName == "" {
			m.LibraryName = "diffusers" // as diffusers' populate_model_card does
		}
		if j.opts.License != "" {
			m.License, m.LicenseName = j.opts.License, j.opts.LicenseName
		}
		if j.opts.BaseModel != "" {
			m.BaseModel = []string{j.opts.BaseModel}
		}
		local.SetMetadata(m)
	default:
		// The source's README.md with the metadata generated from the
		// source and the variant the publish adds.
		gen, _, err := card.ForFolder(src, genOpts)
		if err != nil {
			if ye := (*card.YAMLError)(nil); errors.As(err, &ye) {
				ye.File = filepath.Join(src.Dir, card.FileName)
			}
			return nil, fmt.Errorf("%w: %w (fix it, or pass a card)", ErrCard, err)
		}
		local = gen
	}

	final := local
	if r := j.remote; r != nil && r.Head != nil && r.file(card.FileName) != nil {
		// The README.md of the revision the plan compares with.
		data, err := j.client.ReadFile(ctx, j.id, r.Head.ID, card.FileName)
		switch {
		case err == nil:
			remote, err := card.Parse(data)
			if err != nil {
				return nil, fmt.Errorf("%w: README.md on the Hub (%s): %v; fix it there, or publish with an explicit card", ErrCard, j.id, err)
			}
			final = card.Merge(remote, local, !j.opts.ReplaceBody)
			j.ev.emit(Event{Step: StepCard, Message: "merged with the README.md on the Hub"})
		case errors.Is(err, hub.ErrEntryNotFound), errors.Is(err, hub.ErrRepoNotFound), errors.Is(err, hub.ErrRevisionNotFound):
		default:
			return nil, err
		}
	}
	// A placeholder repo id (a card generated before the target was
	// known, edited or not) names the target.
	if j.id.Namespace != "" {
		final.SetBody(card.FollowRepo(final.Body(), j.id.String()))
	}
	out, err := final.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCard, err)
	}
	if err := j.checkCard(ctx, final, out); err != nil {
		return nil, err
	}
	j.ev.emit(Event{Step: StepCard, Done: true, Message: fmt.Sprintf("README.md: %d bytes", len(out))})
	return out, nil
}

// checkCard checks README.md's metadata as the Hub checks it at commit,
// before anything is uploaded: the Hub's validate-yaml answers when there
// is a client (its errors stop the publish), else core/card's copy of its
// rules.
func (j *job) checkCard(ctx context.Context, c *card.Card, readme []byte) error {
	if j.client != nil {
		rep, err := j.client.ValidateYAML(ctx, string(readme), hub.Model)
		var he *hub.Error
		switch {
		case rep != nil && len(rep.Errors) > 0:
			return fmt.Errorf("%w: the Hub refuses it: %s", ErrCard, strings.Join(rep.Errors, "; "))
		case err == nil:
			for _, w := range rep.Warnings {
				j.warn(StepCard, "the Hub says of README.md: "+w)
			}
			return nil
		case errors.As(err, &he) && (he.StatusCode == http.StatusNotFound || he.StatusCode == http.StatusMethodNotAllowed):
			// A Hub without the endpoint: the local rules stand in.
			j.ev.emit(Event{Step: StepCard, Message: "the Hub does not check cards (validate-yaml: HTTP " + strconv.Itoa(he.StatusCode) + "); checked with Modelpub's copy of its rules"})
		case j.opts.DryRun:
			j.warn(StepCard, "the Hub could not check README.md ("+err.Error()+"); checked with Modelpub's copy of its rules")
		default:
			return fmt.Errorf("check README.md with the Hub: %w", err)
		}
	}
	if problems := c.Validate(); len(problems) > 0 {
		msgs := make([]string, len(problems))
		for i, p := range problems {
			msgs[i] = p.Error()
		}
		return fmt.Errorf("%w: %s", ErrCard, strings.Join(msgs, "; "))
	}
	return nil
}

// repoIDForCard is the id the card's loading snippet names.
func (j *job) repoIDForCard() string {
	if j.id.Namespace != "" {
		return j.id.String()
	}
	return card.PlaceholderNamespace + "/" + j.id.Name
}
