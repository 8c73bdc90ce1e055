// Command modelpub inspects, reshards and publishes Diffusers model folders.
//
// With no arguments it opens the desktop window; with arguments it runs a
// command-line command (see "modelpub help") without opening a window.
package main

import (
	"os"

	"modelpub/cli"
	"modelpub/gui"
)

func main() {
	if len(os.Args) < 2 {
		gui.Run()
		return
	}
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr))
}
