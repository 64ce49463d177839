package blueprints

import (
	"cmp"
	"fmt"
	"slices"
)

// Position is a place in a blueprint file. Line and Column are 1-based; zero
// means unknown.
type Position struct {
	File         string
	Line, Column int
}

// String renders the position as file:line:column.
func (p Position) String() string {
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// Severity says whether a diagnostic blocks a blueprint.
type Severity int

const (
	// SeverityError makes a blueprint invalid.
	SeverityError Severity = iota
	// SeverityWarning is reported but does not make a blueprint invalid.
	SeverityWarning
)

// String returns "error" or "warning".
func (s Severity) String() string {
	if s == SeverityWarning {
		return "warning"
	}
	return "error"
}

// Diagnostic is one problem found in a blueprint file.
type Diagnostic struct {
	File         string
	Line, Column int
	// Path is the dotted path of the offending value, e.g. "params.asg.min"
	// or "resources.documents_bucket.kms_key"; list items are written [i].
	Path     string
	Message  string
	Severity Severity
}

// String renders the diagnostic the way compilers do:
//
//	blueprints/stacks/prod-eu.yaml:12:5: params.asg.min: must be <= desired (3 > 2)
//
// Warnings carry a "warning: " prefix before the message.
func (d Diagnostic) String() string {
	msg := d.Message
	if d.Severity == SeverityWarning {
		msg = "warning: " + msg
	}
	if d.Path == "" {
		return fmt.Sprintf("%s:%d:%d: %s", d.File, d.Line, d.Column, msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s: %s", d.File, d.Line, d.Column, d.Path, msg)
}

func diag(pos Position, path, format string, args ...any) Diagnostic {
	return Diagnostic{File: pos.File, Line: pos.Line, Column: pos.Column, Path: path, Message: fmt.Sprintf(format, args...)}
}

// HasErrors reports whether any diagnostic has SeverityError.
func HasErrors(ds []Diagnostic) bool {
	return slices.ContainsFunc(ds, func(d Diagnostic) bool { return d.Severity == SeverityError })
}

// sortDiagnostics orders by file, line, column, message and drops exact duplicates
// (the same architecture mistake is found once per stack).
func sortDiagnostics(ds []Diagnostic) []Diagnostic {
	slices.SortFunc(ds, func(a, b Diagnostic) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column),
			cmp.Compare(a.Path, b.Path), cmp.Compare(a.Message, b.Message), cmp.Compare(a.Severity, b.Severity))
	})
	return slices.Compact(ds)
}
