// Package blueprints reads, validates and resolves the portal's blueprints:
// one shared architecture (blueprints/architecture.yaml) and one parameter
// file per stack (blueprints/stacks/<env>-<jurisdiction>.yaml), both YAML
// reviewed in pull requests. See blueprints/README.md for the format.
//
// Parse reads one file keeping line and column of every value; Load and
// LoadDir read many and resolve every stack; each returns every problem at
// once as Diagnostics. Set.Resolve merges the architecture with one stack's
// parameters into a Stack: a list of resources with concrete field values,
// dependency ids and source positions, ready to be compiled into an AWS
// resource graph. Digest gives the content-addressed version of a set of
// files. ValidateCommand is the `portal blueprint validate` command, which
// also runs the compliance guardrails.
package blueprints
