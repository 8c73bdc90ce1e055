package cli

import (
	"fmt"
	"io"
	"runtime/debug"
)

// Version is the release version; the build can override it with
// -ldflags "-X modelpub/cli.Version=…".
var Version = "0.1.0-dev"

func init() {
	register(command{
		name:    "version",
		summary: "print the version",
		run: func(args []string, stdout, stderr io.Writer) int {
			v := Version
			if info, ok := debug.ReadBuildInfo(); ok {
				v += " (" + info.GoVersion + ")"
			}
			fmt.Fprintf(stdout, "modelpub %s\n", v)
			return ExitOK
		},
	})
}
