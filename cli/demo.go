package cli

import (
	"errors"
	"fmt"
	"io"

	"modelpub/core/demo"
	"modelpub/core/folder"
	"modelpub/core/tensors"
)

func init() {
	register(command{
		name:    "demo",
		args:    "DIR [--scale S]",
		summary: "write a small Stable Diffusion 1.5–shaped pipeline to try Modelpub without a model",
		help:    demoHelp,
		run:     runDemo,
	})
}

const demoHelp = `Writes into DIR (missing or empty) a Stable Diffusion 1.5 pipeline with
the real component folders, configs, tokenizer, file names, tensor names,
counts and dtypes, and seeded random values: a folder to try every command
and the app on without downloading a model. Its tensors are narrower than
the real ones (about 215 MB at the default scale), so it does not generate
images, and its README.md says so.

  --scale S   the fraction of the real size, 0 < S ≤ 1 (default 0.05; 1 is
              the full 4.3 GB)

Try:  modelpub demo ~/sd15-demo && modelpub inspect ~/sd15-demo
      modelpub ~/sd15-demo          (opens the app on it)
`

func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", stderr)
	scale := fs.Float64("scale", demo.Scale, "")
	pos, ok := parseArgs(fs, args, 1)
	if !ok {
		return ExitUsage
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "modelpub demo: %s\n", safeText(fmt.Sprintf(format, a...)))
		return ExitUsage
	}
	if !(*scale > 0 && *scale <= 1) {
		return fail("--scale must be above 0 and at most 1, not %v", *scale)
	}
	dir := pos[0]
	ctx, stop := interruptible()
	defer stop()
	res, err := demo.Write(ctx, dir, *scale, nil)
	if errors.Is(err, demo.ErrDirNotEmpty) {
		return fail("%s is not empty: choose a new folder", dir)
	}
	if err != nil {
		return fail("%s", errText(err))
	}
	fmt.Fprintf(stdout, "wrote a demo Stable Diffusion 1.5 pipeline to %s (%s in %d files)\n",
		folder.Printable(res.Dir), tensors.FormatSize(res.Bytes), res.Files)
	fmt.Fprintf(stdout, "try: modelpub inspect %s\n     modelpub %s   (the app)\n", folder.Printable(dir), folder.Printable(dir))
	return ExitOK
}
