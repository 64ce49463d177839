package blueprints

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"portal/internal/guardrails"
)

// *Stack is what the guardrails evaluate.
var _ guardrails.Stack = (*Stack)(nil)

// ValidateCommand implements `portal blueprint validate PATH...`; args are
// the arguments after "validate". Each PATH is a blueprint file or a
// directory searched recursively for *.yaml and *.yml.
//
// It prints every diagnostic, then every guardrail failure (rule id,
// severity, citation) of every stack that resolved, to stdout, and ends with
// a one-line summary such as
//
//	ok: 1 architecture, 9 stacks, 1 layer, 3 environments, 0 errors, 0 warnings
//
// It returns 0 when there is no error and no blocking guardrail failure, 1
// when there is, and 2 for a usage error (reported on stderr).
func ValidateCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portal blueprint validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: portal blueprint validate PATH...")
		fmt.Fprintln(stderr, "Validates blueprint files (or directories of them) against the schema, the semantic checks and the compliance guardrails.")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	set, ds := Load(fs.Args()...)
	errs, warns := 0, 0
	for _, d := range ds {
		fmt.Fprintln(stdout, d)
		if d.Severity == SeverityError {
			errs++
		} else {
			warns++
		}
	}
	now := time.Now()
	var files []*File
	if set.Architecture != nil && !set.Architecture.hasErrors {
		files = append(files, set.Stacks...)
	}
	if set.Layer != nil && !set.Layer.hasErrors {
		files = append(files, set.Environments...)
	}
	{
		var stacks []*Stack
		for _, f := range files {
			if f.hasErrors {
				continue
			}
			if st, _ := set.Resolve(f.Params.Stack); st != nil { // diagnostics already printed by Load
				stacks = append(stacks, st)
			}
		}
		Link(stacks)
		for _, st := range stacks {
			if err := ctx.Err(); err != nil {
				fmt.Fprintf(stderr, "blueprint validate: %v\n", err)
				return 1
			}
			rep := guardrails.Evaluate(st, nil, now)
			for _, r := range rep.Blocking() {
				fmt.Fprintf(stdout, "%s (stack %s)\n", r, st.ID)
				errs++
			}
			for _, r := range rep.Warnings() {
				fmt.Fprintf(stdout, "%s (stack %s)\n", r, st.ID)
				warns++
			}
		}
	}
	archs := 0
	if set.Architecture != nil {
		archs = 1
	}
	status := "ok"
	if errs > 0 {
		status = "FAIL"
	}
	note := ""
	if set.Architecture == nil && len(set.Stacks) > 0 {
		note = " (no architecture given: stacks checked alone, guardrails not evaluated)"
	}
	layer := ""
	if set.Layer != nil || len(set.Environments) > 0 {
		n := 0
		if set.Layer != nil {
			n = 1
		}
		layer = fmt.Sprintf(", %d layer, %d environments", n, len(set.Environments))
	}
	fmt.Fprintf(stdout, "%s: %d architecture, %d stacks%s, %d errors, %d warnings%s\n", status, archs, len(set.Stacks), layer, errs, warns, note)
	if errs > 0 {
		return 1
	}
	return 0
}
