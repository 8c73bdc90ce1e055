package card

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// FuzzParse feeds Parse untrusted README.md files, seeded from every card
// in testdata. Parse must never panic; a card it accepts must write back
// (byte for byte when unchanged) and read back the same; and after an edit
// of its metadata it must still write and read back what was set.
func FuzzParse(f *testing.F) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".md") && !strings.HasSuffix(e.Name(), ".golden") {
			continue
		}
		data, err := os.ReadFile(filepath.Join("testdata", e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{"---\n---\n", "---\nnull\n---\n", "---\n# c\n---\nb", "---\na: &x [1]\nb: *x\n---\n",
		"---\r\ntags: [a, 1]\r\n---\r\n", "\uFEFF---\nlicense: mit\n---", "---\na: |+\n  x\n\n# c\nb: 1\n---\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		if c.src != nil {
			// The limits count nodes before parsing: the count must
			// never be below what go-yaml makes.
			text := strings.Join(c.src.lines, "")
			if bound, nodes := nodeBound(text), countNodes(text); bound < nodes {
				t.Fatalf("nodeBound %d < %d nodes:\n%q", bound, nodes, text)
			}
		}
		m, body := c.Metadata(), c.Body()
		out, err := c.Bytes()
		if err != nil {
			t.Fatalf("Bytes of a parsed card: %v", err)
		}
		if string(out) != string(data) {
			t.Fatalf("unchanged card written differently:\n%q\n%q", data, out)
		}
		c.Validate()
		c.Warnings()

		// Edit: a known key changed, one added, a list grown, a key
		// removed.
		want := m
		want.License = "mit"
		want.PipelineTag = "text-to-image"
		want.Tags = append(slices.Clone(m.Tags), "modelpub-fuzz")
		want.LicenseName = ""
		c.SetMetadata(want)
		if err := c.Set("modelpub_fuzz", map[string]any{"n": 1}); err != nil {
			t.Fatal(err)
		}
		out, err = c.Bytes()
		if err != nil {
			t.Fatalf("Bytes after an edit: %v\n%q", err, data)
		}
		back, err := Parse(out)
		if err != nil {
			t.Fatalf("edited card does not parse: %v\n%q\n%q", err, data, out)
		}
		got := back.Metadata()
		if got.License != want.License || got.PipelineTag != want.PipelineTag || got.LicenseName != "" ||
			!slices.Contains(got.Tags, "modelpub-fuzz") || !slices.Equal(got.BaseModel, want.BaseModel) ||
			!slices.Equal(got.Language, want.Language) || got.LibraryName != want.LibraryName {
			t.Fatalf("edited metadata reads back as %+v, want %+v\n%q", got, want, out)
		}
		if back.Body() != body {
			t.Fatalf("body changed:\n%q\n%q", body, back.Body())
		}
		if v, ok := back.Get("modelpub_fuzz"); !ok || v == nil {
			t.Fatalf("added key lost:\n%q", out)
		}

		// Merged with a generated card, as publishing does.
		gen := New()
		gen.SetMetadata(Metadata{LibraryName: "diffusers", PipelineTag: "image-to-image", Tags: []string{"diffusers", "safetensors"}})
		gen.SetBody("\n# generated\n")
		merged := Merge(back, gen, true)
		out, err = merged.Bytes()
		if err != nil {
			t.Fatalf("Bytes after a merge: %v\n%q", err, data)
		}
		mb, err := Parse(out)
		if err != nil {
			t.Fatalf("merged card does not parse: %v\n%q", err, out)
		}
		if mm := mb.Metadata(); mm.PipelineTag != "image-to-image" || !slices.Contains(mm.Tags, "safetensors") || mm.License != "mit" {
			t.Fatalf("merged metadata %+v\n%q", mm, out)
		}
	})
}
