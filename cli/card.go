package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"modelpub/core/atomicfile"
	"modelpub/core/card"
	"modelpub/core/folder"
	"modelpub/core/hub"
)

func init() {
	register(command{
		name:    "card",
		args:    "DIR [--license ID] [--license-name NAME] [--base-model ID] [--repo NS/NAME] [--out FILE] [--allow-outside-links]",
		summary: "write the model card (README.md) for a Diffusers folder",
		help:    cardHelp,
		run:     runCard,
	})
}

const cardHelp = `Writes a model card for the pipeline (or single model) in DIR: YAML
metadata (library_name, pipeline_tag from the pipeline class, tags, license,
base_model) and a body with the components, their parameter counts, the
weights and variants, and how to load them with diffusers.

If DIR already has a README.md, the card is merged into it: its text, its
key order and comments and the keys Modelpub does not know are kept, the
generated keys are set, tags are added to its own.

The card is then checked as the Hub checks README.md metadata before a
commit (license ids, tag and base_model types, YAML). Problems are printed
and nothing is written; warnings are printed and the card is written.

The card goes to standard output, or to FILE with --out (written whole
through a temporary file, so FILE is never half-written). DIR/README.md is
only ever written when --out names it.

  --license ID         a license id of the Hub (apache-2.0, mit,
                       creativeml-openrail-m, openrail++, …; see
                       https://huggingface.co/docs/hub/repositories-licenses),
                       or "other" with --license-name
  --license-name NAME  a short id for an "other" license, such as my-license-1.0
  --base-model ID      the repo id of the model this one derives from
  --repo NS/NAME       the repo id the loading snippet names (default
                       <your-namespace>/<folder name>)
  --out FILE           write the card to FILE instead of standard output

Exit status: 0 written, 1 the card has problems (or DIR's README.md cannot
be read), 2 nothing could be done (arguments, DIR not a pipeline, a write
that failed).
`

func runCard(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("card", stderr)
	license := fs.String("license", "", "")
	licenseName := fs.String("license-name", "", "")
	baseModel := fs.String("base-model", "", "")
	repo := fs.String("repo", "", "")
	out := fs.String("out", "", "")
	open := openFlag(fs)
	pos, ok := parseArgs(fs, args, 1)
	if !ok {
		return ExitUsage
	}
	// fail prints a message built from format (whose arguments are
	// escaped by safeText, as errors from the folder may name its files).
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "modelpub card: %s\n", safeText(fmt.Sprintf(format, a...)))
		return code
	}
	if *repo != "" {
		id, err := hub.ParseRepoID(*repo)
		if err != nil {
			return fail(ExitUsage, "--repo: %s", errMessage(err))
		}
		if id.Namespace == "" || (id.Type != "" && id.Type != hub.Model) {
			return fail(ExitUsage, "--repo: %q: give a model repo id with its namespace, as user/my-model", *repo)
		}
	}
	if *license == "other" && *licenseName == "" {
		return fail(ExitUsage, `--license other needs --license-name, a short id for the license (such as my-license-1.0)`)
	}
	if *licenseName != "" && *license != "other" {
		return fail(ExitUsage, `--license-name is for --license other`)
	}
	if *license != "" && *license != "other" && !card.IsLicense(*license) {
		msg := fmt.Sprintf("--license %q is not a license id the Hub knows", *license)
		if s := card.SuggestLicense(*license); s != "" {
			msg += fmt.Sprintf("; did you mean --license %s?", s)
		} else {
			msg += fmt.Sprintf(" (they are listed at %s); for another license, use --license other --license-name NAME", card.LicensesURL)
		}
		return fail(ExitUsage, "%s", msg)
	}

	ctx, stop := interruptible()
	defer stop()
	dir := pos[0]
	p, err := open(ctx, dir)
	if err != nil {
		return fail(ExitUsage, "%s", errMessage(err))
	}
	// DIR's own README.md keeps its text and unknown keys.
	c, generated, err := card.ForFolder(p, card.GenerateOptions{RepoID: *repo, License: *license, LicenseName: *licenseName, BaseModel: *baseModel})
	if err != nil {
		return fail(ExitProblems, "%s", errMessage(err))
	}

	// A finding names the flag that set the key, else the README.md it
	// came from; without one, the card is Modelpub's own.
	flags := map[string]string{}
	for key, f := range map[string]struct{ name, value string }{
		"license": {"--license", *license}, "license_name": {"--license-name", *licenseName}, "base_model": {"--base-model", *baseModel},
	} {
		if f.value != "" {
			flags[key] = f.name
		}
	}
	source := "the generated card"
	if !generated {
		source = filepath.Join(p.Dir, card.FileName)
	}
	problems := c.Validate()
	for _, pr := range problems {
		fmt.Fprintf(stderr, "modelpub card: %s\n", safeText(describeCardProblem(pr, flags, source)))
	}
	for _, w := range c.Warnings() {
		fmt.Fprintf(stderr, "modelpub card: warning: %s\n", safeText(describeCardProblem(w, flags, source)))
	}
	if len(problems) > 0 {
		return fail(ExitProblems, "%s; nothing written", count(len(problems), "problem", ""))
	}
	data, err := c.Bytes()
	if err != nil {
		return fail(ExitUsage, "%s", errMessage(err))
	}
	if *out == "" {
		// The card is a document: sent to a file or a pipe it goes out byte
		// for byte (CRLF, tabs and all); only a terminal gets it escaped,
		// as a README.md from the folder may hold anything.
		w := stdout
		if !isTerminal(stdout) {
			w = rawWriter(stdout)
		}
		if _, err := w.Write(data); err != nil {
			return fail(ExitUsage, "%s", errMessage(err))
		}
		return ExitOK
	}
	if err := writeCardFile(*out, data); err != nil {
		return fail(ExitUsage, "%s", errMessage(err))
	}
	fmt.Fprintf(stderr, "modelpub card: wrote %s\n", folder.Printable(*out))
	return ExitOK
}

// describeCardProblem words a card finding for the command line: a key
// set by a flag is named by the flag (flags maps keys to flag names);
// any other by the key in source, without the line, which is that of the
// card as written, not of the user's file.
func describeCardProblem(p card.Problem, flags map[string]string, source string) string {
	if f := flags[p.Key]; f != "" {
		return f + ": " + p.Message
	}
	if p.Key != "" {
		return source + ": " + p.Key + ": " + p.Message
	}
	return source + ": " + p.Message
}

// writeCardFile writes data to path atomically (core/atomicfile), so path
// is either the old file or the whole new one; an existing file keeps its
// mode.
func writeCardFile(path string, data []byte) error {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("%s is a folder; name the file to write", path)
	}
	mode := os.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	return atomicfile.WriteFile(path, data, mode)
}
