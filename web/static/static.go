// Package static embeds the portal's stylesheet, vendored scripts and
// images, served under /static/.
package static

import "embed"

// Files holds everything served under /static/.
//
//go:embed *.css vendor
var Files embed.FS
