// Package assets embeds the application's static resources.
package assets

import _ "embed"

// IconPNG is the application icon, a 512×512 PNG.
//
//go:embed icon.png
var IconPNG []byte
