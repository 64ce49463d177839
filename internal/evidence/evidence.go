// Package evidence builds the evidence pack an auditor reads for one
// jurisdiction and one reporting period: every control with its legal
// citation, its status and evidence lines that name the resource, the
// finding and the time, each linking back to the portal; the change record
// of prod (every run with its plan hash, author, approvers and
// verification); the guardrail exceptions in force; drift found and
// reconciled; sensitive AWS events; staff and their second factors; and the
// audit-chain and CloudTrail log-integrity results of the period.
//
// A pack is rendered once, as a standalone HTML file and as a PDF, and both
// are stored byte for byte with their SHA-256, recorded in the audit trail
// in the same transaction, so the hash chain anchors them. Packs are made
// on demand and, for the month just ended, by a monthly job.
package evidence

import (
	"fmt"
	"strings"
	"time"
)

// Control statuses.
const (
	Pass    = "pass"
	Fail    = "fail"
	Unknown = "unknown"
)

// Origins of a pack.
const (
	OnDemand  = "on_demand"
	Scheduled = "scheduled"
)

// Period is a reporting period: From <= t < To, in UTC.
type Period struct {
	From, To time.Time
}

// MonthOf is the calendar month (UTC) holding t.
func MonthOf(t time.Time) Period {
	t = t.UTC()
	from := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	return Period{From: from, To: from.AddDate(0, 1, 0)}
}

// LastMonth is the calendar month before the one holding now: the default
// period, and the one the monthly job reports on.
func LastMonth(now time.Time) Period { return MonthOf(MonthOf(now).From.Add(-time.Hour)) }

// Contains reports whether t falls in p.
func (p Period) Contains(t time.Time) bool { return !t.Before(p.From) && t.Before(p.To) }

// LastDay is the period's last day (To is the start of the day after).
func (p Period) LastDay() time.Time { return p.To.Add(-24 * time.Hour) }

// String writes p as people read it: "November 2026" for a calendar
// month, else "2026-11-03 to 2026-11-20" (both days included).
func (p Period) String() string {
	if p.From.Day() == 1 && p.To.Equal(p.From.AddDate(0, 1, 0)) {
		return p.From.Format("January 2006")
	}
	return p.From.Format("2006-01-02") + " to " + p.LastDay().Format("2006-01-02")
}

// ParsePeriod reads a period from two dates (YYYY-MM-DD, both days
// included), as the form and the API give them; two empty dates are
// LastMonth(now). Errors name the field.
func ParsePeriod(from, to string, now time.Time) (Period, map[string]string) {
	errs := map[string]string{}
	if from == "" && to == "" {
		return LastMonth(now), nil
	}
	parse := func(field, s string) time.Time {
		if s == "" {
			errs[field] = "is required with the other date (or leave both empty for last month)"
			return time.Time{}
		}
		t, err := time.Parse("2006-01-02", s)
		if err != nil {
			errs[field] = fmt.Sprintf("%q is not a date (YYYY-MM-DD)", s)
		}
		return t
	}
	f, t := parse("from", from), parse("to", to)
	if len(errs) > 0 {
		return Period{}, errs
	}
	p := Period{From: f, To: t.AddDate(0, 0, 1)}
	switch {
	case !p.From.Before(p.To):
		errs["to"] = "must be on or after the first day"
	case p.To.Sub(p.From) > 366*24*time.Hour:
		errs["to"] = "the period is longer than a year: make one pack per year or shorter"
	case p.From.After(now):
		errs["from"] = "is in the future"
	}
	if len(errs) > 0 {
		return Period{}, errs
	}
	return p, nil
}

// Line is one piece of evidence: the resource (or record) it is about,
// what was found, when, and where in the portal to see it.
type Line struct {
	Resource string
	Finding  string
	At       time.Time
	// Link is a path in the portal ("/runs/5"); the rendered pack makes
	// it absolute with the portal's address.
	Link string
	// Failing marks the lines that make the control fail (or unknown).
	Failing bool
}

// Control is one control of the pack.
type Control struct {
	// ID is stable across packs ("encryption-at-rest").
	ID       string
	Area     string
	Name     string
	Citation string
	// Stack is "" for a control of the portal or the whole jurisdiction.
	Stack  string
	Status string
	Lines  []Line
}

// Change is one run in prod: the change record.
type Change struct {
	RunID, PlanID    int64
	Stack, Kind      string
	State            string
	BlueprintVersion string
	PlanHash         string
	Author           string
	Approvers        []string
	CreatedAt        time.Time
	StartedAt        time.Time
	FinishedAt       time.Time
	// VerificationID is 0 when no verification followed the run.
	VerificationID      int64
	VerificationState   string
	VerificationSummary string
	Error               string
}

// Exception is a guardrail exception in force during the period.
type Exception struct {
	ID                            int64
	Rule, Stack, Resource         string
	Owner, Reason                 string
	Expires, CreatedAt, RevokedAt time.Time
	CreatedBy                     string
}

// Drift is a drift check that found drift in the period, and what became
// of it.
type Drift struct {
	ID        int64
	Stack     string
	CheckedAt time.Time
	Resources int
	// ReconciledBy is the first run that brought the stack back after the
	// check (0 when none did in the period); CleanAt the first clean check
	// after it.
	ReconciledBy int64
	ReconciledAt time.Time
	CleanAt      time.Time
}

// Sensitive is a sensitive AWS event of the period.
type Sensitive struct {
	Seq       int64
	At        time.Time
	Why       string
	Event     string
	Who       string
	Account   string
	Region    string
	Resources []string
	// Portal is set for calls the portal itself made (its deployer role
	// session), told apart from people's.
	Portal bool
	// Global is set for events of account-wide services (IAM, sign-in),
	// which every jurisdiction's pack lists.
	Global  bool
	Sandbox bool
}

// Person is a member of staff and their second factor.
type Person struct {
	ID        int64
	Name      string
	Email     string
	Roles     []string
	TwoFactor bool
	// Required is set when one of their roles must use two-factor.
	Required bool
	Disabled bool
}

// Validation is a CloudTrail log integrity validation of the period.
type Validation struct {
	ID         int64
	FinishedAt time.Time
	OK         bool
	Digests    int
	LogFiles   int
	Problems   []string
}

// Chain is the audit chain as verified when the pack was made.
type Chain struct {
	OK          bool
	Checked     int
	HeadSeq     int64
	HeadHash    string
	FirstBroken int64
	Reason      string
	// InPeriod counts the records written during the period.
	InPeriod int
	Err      string
}

// Pack is an evidence pack before rendering.
type Pack struct {
	Jurisdiction     string // "eu"
	JurisdictionName string // "European Union"
	Regime           string
	Period           Period
	GeneratedAt      time.Time
	GeneratedBy      string // as people read it
	Origin           string
	// BaseURL makes the lines' links absolute.
	BaseURL string
	// Sandbox, when set, says the data is generated sandbox data.
	Sandbox string

	Controls   []Control
	Changes    []Change
	Exceptions []Exception
	Drift      []Drift
	Sensitive  []Sensitive
	Staff      []Person
	Chain      Chain
	Logs       []Validation
}

// Counts returns how many controls pass, fail and are unknown.
func (p Pack) Counts() (pass, fail, unknown int) {
	for _, c := range p.Controls {
		switch c.Status {
		case Pass:
			pass++
		case Fail:
			fail++
		default:
			unknown++
		}
	}
	return
}

// URL is the absolute address of a portal path.
func (p Pack) URL(path string) string {
	if path == "" || strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
		return path
	}
	return strings.TrimSuffix(p.BaseURL, "/") + path
}

// PortalSensitive counts the sensitive events the portal itself made.
func (p Pack) PortalSensitive() int {
	n := 0
	for _, s := range p.Sensitive {
		if s.Portal {
			n++
		}
	}
	return n
}
