// Package blueprints ships the portal's blueprint files: the architecture
// every stack runs, the nine stacks' parameters, and the environment layer
// with its three environments' parameters. The portal imports them
// as the first blueprint version when its database holds none; from then on
// versions are edited in the portal (or through its API).
//
// The files are documented in README.md next to this file.
package blueprints

import "embed"

// FS holds architecture.yaml, stacks/<stack>.yaml, layer.yaml and
// environments/<env>.yaml, byte for byte as committed (comments included).
//
//go:embed architecture.yaml stacks/*.yaml layer.yaml environments/*.yaml
var FS embed.FS
