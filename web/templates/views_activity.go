package templates

import (
	"net/url"
	"slices"
	"strings"
	"time"
)

// ActivityTab is one tab of the activity area.
type ActivityTab struct {
	Key, Label, Href string
}

// ActivityTabs lists the activity area's tabs.
func ActivityTabs() []ActivityTab {
	return []ActivityTab{
		{"explorer", "Events", "/activity"},
		{"sensitive", "Sensitive events", "/activity/sensitive"},
		{"integrity", "Log integrity", "/activity/integrity"},
		{"alarms", "Alarms", "/activity/alarms"},
		{"metrics", "Metrics", "/activity/metrics"},
		{"evidence", "Evidence packs", "/activity/evidence"},
	}
}

// ActivityFilter is the explorer's filter form as typed.
type ActivityFilter struct {
	Since, Until, Account, Region, User, Source, Name, Resource, SourceIP, Error, Access, Text string
	Sensitive                                                                                  bool
	// MadeBy is "", "people" (the portal's own deploys hidden) or "portal".
	MadeBy string
	// HideUsers, HideSources and HideNames are the exclusions, each a
	// comma-separated list.
	HideUsers, HideSources, HideNames string
}

// EventRow is one event in a list.
type EventRow struct {
	Seq       int64
	Time      time.Time
	Account   string
	Region    string
	Source    string
	Name      string
	User      string
	UserType  string
	SourceIP  string
	Error     string
	Sensitive string
	ReadOnly  bool
	Sandbox   bool
	Resources []string
	// Portal is set for the portal's own calls (its deployer role session).
	Portal bool
}

// ActivityView is the events explorer.
type ActivityView struct {
	// TimePresets are one-click time ranges.
	TimePresets []Link
	// Saved are the viewer's saved searches of this tab.
	Saved         SavedQueriesView
	Filter        ActivityFilter
	Errors        FormErrors
	Accounts      []string
	Regions       []string
	Sources       []string
	Rows          []EventRow
	NextURL       string
	FirstURL      string
	ExportCSV     string
	ExportJSONL   string
	Took          string
	Stored        int
	SandboxEvents int
	Oldest        time.Time
	Newest        time.Time
	SourcesNote   []string // configured buckets and LookupEvents accounts
	LastIngest    IngestStatus
	Configured    bool
	Sensitive     bool // the sensitive-events tab
	Categories    []string
}

// filterFields are the explorer's form fields that show their own error.
var filterFields = []string{"since", "until", "access", "hide_user", "hide_source", "hide_name"}

// ParamError is what is wrong with a query parameter the explorer's form
// has no field for (limit, before: they come from links and scripts).
type ParamError struct{ Name, Message string }

// paramErrors lists the errors of parameters without a form field, by name.
func paramErrors(errs FormErrors) []ParamError {
	var out []ParamError
	for name, msg := range errs {
		if !slices.Contains(filterFields, name) {
			out = append(out, ParamError{name, msg})
		}
	}
	slices.SortFunc(out, func(a, b ParamError) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// fieldErrors reports whether a form field has an error.
func fieldErrors(errs FormErrors) bool {
	for _, name := range filterFields {
		if errs[name] != "" {
			return true
		}
	}
	return false
}

// IngestStatus is what the page shows about the ingestion job.
type IngestStatus struct {
	LastFinished time.Time
	LastError    string
	NextRun      time.Time
	Running      bool
}

// RunLink links an event to the portal run that made it.
type RunLink struct {
	ID    int64
	Stack string
	State string
	By    ActorView
	How   string // how the link was made
}

// EventView is one event with its raw record.
type EventView struct {
	Row          EventRow
	ID           string
	PrincipalARN string
	AccessKey    string
	Session      string
	RequestID    string
	Origin       string
	Raw          string
	Related      []EventRow
	Runs         []RunLink
	PortalCall   bool
	RelatedURL   string
}

// ValidationRow is one stored log-integrity validation.
type ValidationRow struct {
	ID         int64
	StartedAt  time.Time
	FinishedAt time.Time
	StartedBy  ActorView
	OK         bool
	Digests    int
	LogFiles   int
	Problems   int
}

// ProblemRow is one finding of a validation.
type ProblemRow struct {
	Kind, Bucket, Key, Detail string
}

// ChainRow summarises one digest chain.
type ChainRow struct {
	Bucket, Prefix    string
	Digests, LogFiles int
	Pending           int
	From, To          time.Time
}

// IntegrityView is the log integrity page.
type IntegrityView struct {
	Buckets   []string
	Keys      []string // trusted key fingerprints
	Current   *ValidationRow
	Chains    []ChainRow
	Problems  []ProblemRow
	History   []ValidationRow
	Schedule  string
	NextRun   time.Time
	CanRun    bool
	NoSources bool
}

// AlarmRow is one CloudWatch alarm.
type AlarmRow struct {
	Stack, Region, Name, State, Reason, Metric, Namespace string
	Threshold                                             string
	Updated                                               time.Time
	History                                               []AlarmHistoryRow
	HistoryNote                                           string
}

// AlarmHistoryRow is one alarm state change.
type AlarmHistoryRow struct {
	At      time.Time
	Summary string
}

// AlarmsView lists the alarms of every stack.
type AlarmsView struct {
	Stack    string
	Stacks   []string
	Alarms   []AlarmRow
	Errors   []string
	NotReady string
	Counts   map[string]int
}

// Chart is a rendered time series.
type Chart struct {
	Title, Unit string
	SVG         string // trusted SVG markup built by the handler
	Latest      string
	Points      int
	Note        string
}

// MetricsView is the metrics page.
type MetricsView struct {
	Stack    string
	Stacks   []string
	Range    string
	Ranges   []string
	Charts   []Chart
	Errors   []string
	NotReady string
}

// ReportRow is one stored evidence report.
type ReportRow struct {
	ID                     int64
	Jurisdiction           string
	Period                 string // "" for reports made before packs had one
	GeneratedAt            time.Time
	GeneratedBy            ActorView
	Scheduled              bool
	Passed, Failed, Unknwn int
	SHA256, PDFSHA256      string
	HasPDF                 bool
}

// PeriodPreset is a reporting period offered in one click.
type PeriodPreset struct {
	Label, From, To string
}

// EvidenceView lists evidence packs and offers a new one.
type EvidenceView struct {
	Jurisdictions []string
	Selected      string
	// From and To are the form's dates ("" for the default period).
	From, To string
	// DefaultPeriod is last month, in words, and its first and last days.
	DefaultPeriod          string
	DefaultFrom, DefaultTo string
	Presets                []PeriodPreset
	Reports                []ReportRow
	NextURL                string
	Errors                 FormErrors
	CanGenerate            bool
}

func urlQuery(s string) string { return url.QueryEscape(s) }

// SavedQueriesView is the saved-searches strip of a page: the searches the
// viewer may open and a form saving the current one.
type SavedQueriesView struct {
	Page  string // the page's path, e.g. /activity
	Query string // the current search's query string, page position dropped
	Items []SavedQueryRow
}

// SavedQueryRow is one saved search.
type SavedQueryRow struct {
	ID      int64
	Name    string
	URL     string
	Shared  bool
	Mine    bool
	Current bool       // the page shows this search now
	Owner   *ActorView // who shared it, when it is not the viewer's
}
