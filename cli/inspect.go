package cli

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"modelpub/core/folder"
	"modelpub/core/pipeline"
	"modelpub/core/tensors"
)

func init() {
	register(command{
		name:    "inspect",
		args:    "DIR [--json] [--tensors] [--allow-outside-links]",
		summary: "show a Diffusers folder's components, weights, variants and shard layout",
		help:    inspectHelp,
		run:     runInspect,
	})
}

const inspectHelp = `Shows what a Diffusers pipeline folder (or a single model folder: a
config.json with weights) holds: per component its class, library and role,
its files with sizes, and per weight set (main weights and each variant) the
tensor and parameter counts, bytes per dtype and the shard layout; then the
warnings. Only file headers are read, never tensor data.

  --json      print the report as JSON (schema: docs/inspect-json.md)
  --tensors   list every tensor with its dtype, shape and file
  --allow-outside-links
              follow symbolic links that lead outside the folder
              (refused by default: a downloaded folder is untrusted)
`

// InspectSchemaVersion is the "schema" field of inspect --json. It changes
// only when a field changes meaning or goes away; new fields may be added.
const InspectSchemaVersion = 1

type inspectReport struct {
	Schema     int                `json:"schema"`
	Dir        string             `json:"dir"`
	Pipeline   string             `json:"pipeline,omitempty"`
	Diffusers  string             `json:"diffusers_version,omitempty"`
	Components []inspectComponent `json:"components"`
	RootFiles  []inspectFile      `json:"root_files"`
	Unlisted   []string           `json:"unlisted_folders"`
	Warnings   []pipeline.Warning `json:"warnings"`
	Totals     inspectTotals      `json:"totals"`
}

type inspectTotals struct {
	Bytes      int64 `json:"bytes"`
	Parameters int64 `json:"parameters"`
}

type inspectComponent struct {
	Name     string             `json:"name"`
	Library  string             `json:"library,omitempty"`
	Class    string             `json:"class,omitempty"`
	Role     pipeline.Role      `json:"role"`
	Null     bool               `json:"null,omitempty"`
	Files    []inspectFile      `json:"files"`
	Variants []string           `json:"variants"`
	Weights  []inspectWeightSet `json:"weights"`
}

type inspectFile struct {
	Path       string            `json:"path"`
	Size       int64             `json:"size"`
	Kind       pipeline.FileKind `json:"kind"`
	LFSPointer bool              `json:"lfs_pointer,omitempty"`
}

type inspectWeightSet struct {
	Base        string           `json:"base"`
	Variant     string           `json:"variant"`
	Format      string           `json:"format"`
	Index       string           `json:"index,omitempty"`
	Shards      []inspectShard   `json:"shards"`
	Tensors     int              `json:"tensor_count"`
	Parameters  int64            `json:"parameters"`
	DataBytes   int64            `json:"data_bytes"`
	DTypeBytes  map[string]int64 `json:"dtype_bytes"`
	LegacyNames bool             `json:"legacy_names,omitempty"`
	Error       string           `json:"error,omitempty"`
}

type inspectShard struct {
	File    string          `json:"file"`
	Tensors []inspectTensor `json:"tensors"`
}

type inspectTensor struct {
	Name  string  `json:"name"`
	DType string  `json:"dtype"`
	Shape []int64 `json:"shape"`
	Bytes int64   `json:"bytes"`
}

func runInspect(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("inspect", stderr)
	asJSON := fs.Bool("json", false, "")
	listTensors := fs.Bool("tensors", false, "")
	open := openFlag(fs)
	pos, ok := parseArgs(fs, args, 1)
	if !ok {
		return ExitUsage
	}
	ctx, stop := interruptible()
	defer stop()
	p, err := open(ctx, pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "modelpub inspect: %s\n", errText(err))
		return ExitUsage
	}
	rep := buildInspectReport(p)
	if *asJSON {
		if err := printJSON(stdout, rep); err != nil {
			fmt.Fprintf(stderr, "modelpub inspect: %s\n", errText(err))
			return ExitUsage
		}
		return ExitOK
	}
	printInspect(stdout, rep, *listTensors)
	return ExitOK
}

func buildInspectReport(p *pipeline.Pipeline) inspectReport {
	rep := inspectReport{Schema: InspectSchemaVersion, Dir: p.Dir, RootFiles: []inspectFile{}, Unlisted: []string{},
		Warnings: []pipeline.Warning{}, Components: []inspectComponent{}}
	if p.Index != nil {
		rep.Pipeline, rep.Diffusers = p.Index.ClassName, p.Index.DiffusersVersion
	}
	rep.Unlisted = append(rep.Unlisted, p.Unlisted...)
	rep.Warnings = append(rep.Warnings, p.Warnings...)
	for _, f := range p.RootFiles {
		rep.RootFiles = append(rep.RootFiles, inspectFile{f.Path, f.Size, f.Kind, f.LFSPointer})
		rep.Totals.Bytes += f.Size
	}
	for _, c := range p.Components {
		ic := inspectComponent{Name: c.Name, Library: c.Library, Class: c.Class, Role: c.Role, Null: c.Null,
			Files: []inspectFile{}, Variants: c.Variants(), Weights: []inspectWeightSet{}}
		if ic.Variants == nil {
			ic.Variants = []string{}
		}
		for _, f := range c.Files {
			ic.Files = append(ic.Files, inspectFile{f.Path, f.Size, f.Kind, f.LFSPointer})
			rep.Totals.Bytes += f.Size
		}
		for _, w := range c.Weights {
			iw := inspectWeightSet{Base: w.Base, Variant: w.Variant, Format: w.Format, Index: w.Index,
				Tensors: len(w.Tensors), Parameters: w.Parameters, DataBytes: w.DataBytes, DTypeBytes: w.DTypeBytes,
				LegacyNames: w.LegacyNames, Shards: []inspectShard{}}
			if iw.DTypeBytes == nil {
				iw.DTypeBytes = map[string]int64{}
			}
			if w.Err != nil {
				iw.Error = w.Err.Error()
			}
			for _, f := range w.Files {
				sh := inspectShard{File: f, Tensors: []inspectTensor{}}
				for _, t := range w.Tensors {
					if t.File == f {
						sh.Tensors = append(sh.Tensors, inspectTensor{t.Name, t.DType.String(), t.Shape, t.Size()})
					}
				}
				iw.Shards = append(iw.Shards, sh)
			}
			if w.Variant == "" && c.Main() == w {
				rep.Totals.Parameters += w.Parameters
			}
			ic.Weights = append(ic.Weights, iw)
		}
		rep.Components = append(rep.Components, ic)
	}
	return rep
}

// printInspect prints the report as text. Every name in it comes from the
// folder (its listing, model_index.json, headers), so each goes through
// folder.Printable and each message through safeText.
func printInspect(w io.Writer, rep inspectReport, listTensors bool) {
	p := folder.Printable
	title := p(rep.Pipeline)
	if rep.Pipeline == "" {
		title = "single model"
	}
	fmt.Fprintf(w, "%s  %s", p(rep.Dir), title)
	if rep.Diffusers != "" {
		fmt.Fprintf(w, "  (diffusers %s)", p(rep.Diffusers))
	}
	fmt.Fprintf(w, "\n%s on disk, %s parameters in the main weights\n", tensors.FormatSize(rep.Totals.Bytes), pipeline.FormatParameters(rep.Totals.Parameters))
	for _, c := range rep.Components {
		name := c.Name
		if name == "" {
			name = filepath.Base(rep.Dir)
		}
		fmt.Fprintf(w, "\n%s", p(name))
		switch {
		case c.Null:
			fmt.Fprintf(w, "  (not included: [null, null])\n")
			continue
		default:
			fmt.Fprintf(w, "  %s.%s  [%s]\n", p(c.Library), p(c.Class), c.Role)
		}
		for _, f := range c.Files {
			if f.Kind == pipeline.KindWeights || f.Kind == pipeline.KindWeightsIndex {
				continue // shown with their weight set
			}
			note := ""
			if f.LFSPointer {
				note = "  (Git LFS pointer)"
			}
			fmt.Fprintf(w, "  %-44s %10s  %s%s\n", p(baseOf(f.Path)), tensors.FormatSize(f.Size), f.Kind, note)
		}
		for _, ws := range c.Weights {
			label := "main weights"
			if ws.Variant != "" {
				label = "variant " + p(ws.Variant)
			}
			fmt.Fprintf(w, "  %s, %s", label, ws.Format)
			if ws.Error != "" {
				fmt.Fprintf(w, ": cannot be read: %s\n", safeText(ws.Error))
				continue
			}
			fmt.Fprintf(w, ": %s, %s parameters, %s (%s)\n", count(ws.Tensors, "tensor", ""), pipeline.FormatParameters(ws.Parameters),
				tensors.FormatSize(ws.DataBytes), pipeline.DTypeMix(ws.DTypeBytes))
			if ws.Format == "bin" {
				fmt.Fprintf(w, "    PyTorch pickle, read without running it; saved as safetensors\n")
			}
			if ws.Index != "" {
				fmt.Fprintf(w, "    %s\n", p(ws.Index))
			}
			for _, sh := range ws.Shards {
				var bytes int64
				for _, t := range sh.Tensors {
					bytes += t.Bytes
				}
				fmt.Fprintf(w, "    %-42s %10s  %s\n", p(sh.File), tensors.FormatSize(bytes), count(len(sh.Tensors), "tensor", ""))
				if listTensors {
					for _, t := range sh.Tensors {
						fmt.Fprintf(w, "      %-60s %-5s %v\n", p(t.Name), t.DType, t.Shape)
					}
				}
			}
		}
	}
	if len(rep.RootFiles) > 0 {
		fmt.Fprintf(w, "\nother files\n")
		for _, f := range rep.RootFiles {
			fmt.Fprintf(w, "  %-44s %10s  %s\n", p(f.Path), tensors.FormatSize(f.Size), f.Kind)
		}
	}
	if len(rep.Warnings) > 0 {
		fmt.Fprintf(w, "\n%s\n", count(len(rep.Warnings), "warning", ""))
		for _, wn := range rep.Warnings {
			fmt.Fprintf(w, "  - %s\n", safeText(wn.Message))
		}
	}
}

func baseOf(p string) string {
	if i := strings.LastIndexByte(strings.TrimSuffix(p, "/"), '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}
