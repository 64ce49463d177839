package templates

import "time"

// VersionRow is a blueprint version in lists and headings.
type VersionRow struct {
	ID, Short         string
	Seq               int64
	Parent, ParentSeq string // ParentSeq is "#n" of the parent, "" without one
	Author            ActorView
	Message           string
	CreatedAt         time.Time
	Latest            bool
}

// BlueprintsView is the version history.
type BlueprintsView struct {
	Rows     []VersionRow
	NextURL  string
	CanEdit  bool
	InForce  int // exceptions in force
	Stacks   []StackStatus
	LatestID string
}

// StackStatus is the guardrail outcome of one stack of a version.
type StackStatus struct {
	Stack     string
	Status    string // pass, warn, excepted, blocked, invalid
	Label     string // e.g. "2 blocking", "Pass"
	Failed    int
	Warned    int
	Excepted  int
	ReportURL string
}

// BlueprintFileRow is one file of a version.
type BlueprintFileRow struct {
	Path, Name string // Name is the last path element, used in URLs
	Lines      int
	Changed    bool // differs from the parent version
	URL        string
}

// VersionView is one version's page.
type VersionView struct {
	Version    VersionRow
	Files      []BlueprintFileRow
	Stacks     []StackStatus
	Exceptions []ExceptionRow
	CanEdit    bool
	DiffURL    string // against the parent; "" for the first version
}

// CodeLine is one numbered line of a file.
type CodeLine struct {
	N    int
	Text string
	Mark bool // a diagnostic or guardrail finding points here
}

// BlueprintFileView shows one file of a version.
type BlueprintFileView struct {
	Version VersionRow
	Path    string
	Lines   []CodeLine
	CanEdit bool
	EditURL string
	Files   []BlueprintFileRow
}

// DiffRow is one row of a side-by-side diff: Kind is "same", "del",
// "ins", "change" (a removed line beside the line that replaced it) or
// "skip" (Skipped unchanged lines not shown).
type DiffRow struct {
	Kind       string
	OldN, NewN int
	Old, New   string
	Skipped    int
}

// FileDiff is the diff of one file.
type FileDiff struct {
	Path           string
	Rows           []DiffRow
	Added, Removed int
}

// DiffView compares two versions.
type DiffView struct {
	From, To VersionRow
	Versions []VersionRow // for the pickers
	Files    []FileDiff   // changed files only
	Same     []string     // paths with no change
}

// DiagnosticView is one validation problem with the line it points at.
type DiagnosticView struct {
	File          string
	Line, Column  int
	Path, Message string
	Severity      string
	Source        string // the offending line, "" when unknown
	CaretPad      string // spaces up to the column, for the caret
	InEdited      bool   // in the file being edited
	Position      string // file:line:column
	Anchor        string // "#g36": the line in the editor's gutter, when in the edited file
}

// FindingView is a guardrail result.
type FindingView struct {
	Stack, RuleID, Title, Severity, Status string
	Resource, Path                         string
	File                                   string
	Line, Column                           int
	Message, Explanation, Citation         string
	Position                               string // file:line:column, "" for passes
	Source, CaretPad                       string // the offending line and the caret's indent, on the edit page
	Anchor                                 string // "#g36": the line in the editor's gutter, when in the edited file
	ExceptionURL                           string // pre-filled exception form
	Exception                              *ExceptionRow
}

// EditView is the form that creates a version by editing one file.
type EditView struct {
	Base        VersionRow
	HasBase     bool
	Paths       []string
	Path        string
	Content     string
	Message     string
	Gutter      []CodeLine
	Rows        int
	Errors      FormErrors
	Diagnostics []DiagnosticView
	Blocking    []FindingView
	Warnings    []FindingView
	// Preview is the diff of every file the version changes.
	Preview   []FileDiff
	Previewed bool
	Notice    string
	Marked    bool // some gutter line is marked
	// Staged are the other files changed in this version, carried along.
	Staged []StagedFile
	// Unchanged: only comments or formatting change; nothing to save.
	Unchanged bool
}

// StagedFile is a file changed in the version being edited, other than the
// one in the editor.
type StagedFile struct {
	Path, Content string
}

// ExceptionRow is one guardrail exception.
type ExceptionRow struct {
	ID                            int64
	RuleID, Stack, Resource       string
	Owner, Reason                 string
	Expires, CreatedAt, RevokedAt time.Time
	CreatedBy, RevokedBy          ActorView
	State                         string // active, expired, revoked, awaiting approval
	DaysLeft                      int
	CanRevoke                     bool
	// ApprovedBy and ApprovedAt say which compliance officer let an
	// exception that needs it take effect; CanApprove whether the viewer
	// may.
	ApprovedBy ActorView
	ApprovedAt time.Time
	CanApprove bool
}

// ExceptionForm is the new-exception form.
type ExceptionForm struct {
	RuleID, Stack, Resource, Owner, Reason, Expires string
}

// RuleOption is a guardrail rule in a select.
type RuleOption struct {
	ID, Title, Severity string
}

// ExceptionsView is the exceptions page.
type ExceptionsView struct {
	Rows    []ExceptionRow
	Form    ExceptionForm
	Errors  FormErrors
	CanEdit bool
	Rules   []RuleOption
	Stacks  []string
	MaxDays int
	MinDate string // yyyy-mm-dd for the date input
	MaxDate string
	ShowAll bool
}

// StackReport is the guardrail report of one stack.
type StackReport struct {
	Stack, Environment, Region string
	Status                     StackStatus
	Results                    []FindingView
}

// ReportView is a guardrail report of one stack or one jurisdiction.
type ReportView struct {
	Heading      string
	Jurisdiction string // human name
	Regime       string
	Version      VersionRow
	Stacks       []StackReport
	Exceptions   []ExceptionRow
	CanEdit      bool
	Links        []NavItem // the other scopes
	// Preventive is what AWS itself refuses for the jurisdiction.
	Preventive PreventiveView
}

// JurisdictionHead is a column of the stacks grid.
type JurisdictionHead struct {
	ID, Name, Regime, ReportURL string
}

// StackCell is one stack in the grid.
type StackCell struct {
	ID, Environment, Jurisdiction string
	Account, Region               string
	Guardrail                     StackStatus
	Deployed                      bool
	InForce, InForceShort         string
	InForceURL                    string
	LastRunID                     int64
	LastRunState                  string
	LastRunAt                     time.Time
	// Promotion is the version waiting, drift and verification.
	Promotion StackPromotion
}

// StackGridRow is one environment's row of the grid.
type StackGridRow struct {
	Environment string
	Cells       []StackCell
}

// StacksView is the stacks grid.
type StacksView struct {
	Jurisdictions []JurisdictionHead
	Rows          []StackGridRow
	Version       *VersionRow
	EngineNote    string // why no runs are shown, "" when the engine is wired
	AccountsNote  string
	// Travel is how far recent versions have gone.
	Travel []VersionTravel
}

// bpBadge is the badge class of a guardrail or exception status.
func bpBadge(status string) string {
	switch status {
	case "pass", "active":
		return "badge badge-ok bp-status " + status
	case "warn", "excepted":
		return "badge badge-warn bp-status " + status
	case "blocked", "fail", "invalid":
		return "badge badge-bad bp-status " + status
	}
	return "badge bp-status " + status
}

// bpStatusWord is how a result status reads in a table.
func bpStatusWord(status string) string {
	switch status {
	case "pass":
		return "Pass"
	case "fail":
		return "Fail"
	case "excepted":
		return "Excepted"
	}
	return status
}

func bpDate(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

func bpVersionURL(id string) string { return "/blueprints/versions/" + id }

func bpLines(n int) string {
	if n == 1 {
		return "1 line"
	}
	return itoa(n) + " lines"
}

func bpOrDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func bpResource(s string) string {
	if s == "" {
		return "whole stack"
	}
	return s
}

func spaces(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = ' '
	}
	return string(b)
}

// bpPlural writes n with the singular or plural noun.
func bpPlural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return itoa(n) + " " + many
}
