// Package static embeds the portal's stylesheet, its own and vendored scripts and
// images, served under /static/.
package static

import "embed"

// Files holds everything served under /static/.
//
//go:embed *.css *.js vendor
var Files embed.FS
