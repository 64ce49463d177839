package static

import _ "embed"

// BlueprintsCSS styles the blueprint, guardrail and stacks pages: the code
// editor, numbered file views, side-by-side diffs and the stacks grid.
//
//go:embed blueprints.css
var BlueprintsCSS []byte
