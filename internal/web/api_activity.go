package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"portal/internal/activity"
	"portal/internal/apperr"
	"portal/internal/evidence"
)

// APIEvent is a CloudTrail event in API responses.
type APIEvent struct {
	// ID is the portal's row number, used in /activity/events/{id}.
	ID           int64     `json:"id"`
	EventID      string    `json:"event_id"`
	Time         time.Time `json:"time"`
	Account      string    `json:"account"`
	Region       string    `json:"region"`
	Source       string    `json:"source"`
	Name         string    `json:"name"`
	ReadOnly     bool      `json:"read_only"`
	IdentityType string    `json:"identity_type"`
	PrincipalARN string    `json:"principal_arn"`
	User         string    `json:"user"`
	AccessKeyID  string    `json:"access_key_id"`
	Session      string    `json:"session"`
	SourceIP     string    `json:"source_ip"`
	ErrorCode    string    `json:"error_code"`
	RequestID    string    `json:"request_id"`
	Resources    []string  `json:"resources"`
	Sensitive    string    `json:"sensitive"`
	LogFile      string    `json:"log_file"`
	Sandbox      bool      `json:"sandbox"`
	PortalCall   bool      `json:"portal_call"`
}

func apiEvent(e activity.Event) APIEvent {
	out := APIEvent{ID: e.Seq, EventID: e.ID, Time: e.Time, Account: e.Account, Region: e.Region, Source: e.Source, Name: e.Name, ReadOnly: e.ReadOnly,
		IdentityType: e.IdentityType, PrincipalARN: e.PrincipalARN, User: e.UserName, AccessKeyID: e.AccessKey, Session: e.Session, SourceIP: e.SourceIP,
		ErrorCode: e.ErrorCode, RequestID: e.RequestID, Resources: e.Resources, Sensitive: e.Sensitive, LogFile: e.Origin, Sandbox: e.Sandbox,
		PortalCall: activity.PortalCall(e)}
	if out.Resources == nil {
		out.Resources = []string{}
	}
	return out
}

// APIEventPage is a page of events, newest first.
type APIEventPage struct {
	Items []APIEvent `json:"items"`
	// Next, when set, is the before= value of the next (older) page.
	Next string `json:"next,omitempty"`
}

// activityParams are the query parameters of GET /api/v1/activity/events:
// the explorer's filters, the page size and the cursor.
var activityParams = []string{"since", "until", "account", "region", "user", "source", "name", "resource", "ip", "error", "access", "q", "sensitive",
	"made_by", "hide_user", "hide_source", "hide_name", "limit", "before"}

func (s *Server) apiActivityEvents(c echo.Context) error {
	svc, err := s.activityService()
	if err != nil {
		return err
	}
	q := c.QueryParams()
	var v apperr.Validation
	for name := range q {
		if !slices.Contains(activityParams, name) {
			v.Add(name, "is not a known parameter (known: "+strings.Join(activityParams, ", ")+")")
		}
	}
	// The explorer's form sends sensitive=1; automation may say true.
	switch q.Get("sensitive") {
	case "", "0", "false":
		q.Del("sensitive")
	case "1", "true":
		q.Set("sensitive", "1")
	default:
		v.Add("sensitive", "must be true or false")
	}
	if err := v.Err(); err != nil {
		return err
	}
	f, _, err := parseActivityFilter(q)
	if err != nil {
		return err
	}
	events, more, err := svc.Search(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := APIEventPage{Items: make([]APIEvent, 0, len(events))}
	for _, e := range events {
		out.Items = append(out.Items, apiEvent(e))
	}
	if more && len(events) > 0 {
		last := events[len(events)-1]
		out.Next = activity.Cursor{At: last.Time, Seq: last.Seq}.String()
	}
	return c.JSON(http.StatusOK, out)
}

// APIEventRun is a portal run that made an event.
type APIEventRun struct {
	ID             int64     `json:"id"`
	Stack          string    `json:"stack"`
	State          string    `json:"state"`
	CreatedBy      string    `json:"created_by"`
	CreatedByActor *APIActor `json:"created_by_actor,omitempty"`
	// How says how the run is known to have made the event: by its
	// recorded AWS request id, or by running at that time.
	How  string `json:"how"`
	Href string `json:"href"`
}

// APIEventDetail is one event with its CloudTrail record and the runs
// that made it.
type APIEventDetail struct {
	APIEvent
	Raw  json.RawMessage `json:"raw"`
	Runs []APIEventRun   `json:"runs"`
}

func (s *Server) apiActivityEvent(c echo.Context) error {
	svc, err := s.activityService()
	if err != nil {
		return err
	}
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	e, err := svc.Get(ctx, id)
	if err != nil {
		return err
	}
	out := APIEventDetail{APIEvent: apiEvent(e), Raw: json.RawMessage(e.Raw), Runs: []APIEventRun{}}
	if !json.Valid(out.Raw) {
		// Stored as delivered; a record that is not JSON is given as text.
		out.Raw, _ = json.Marshal(string(e.Raw))
	}
	if s.deps.Workflows != nil {
		matches, err := svc.RunsFor(ctx, e, s.deps.Workflows.Engine)
		if err != nil {
			return err
		}
		for _, m := range matches {
			out.Runs = append(out.Runs, APIEventRun{ID: m.Run.ID, Stack: m.Run.Stack, State: m.Run.State, CreatedBy: m.Run.CreatedBy, CreatedByActor: apiActor(m.Run.CreatedBy), How: m.How,
				Href: "/api/v1/runs/" + itoa(m.Run.ID)})
		}
	}
	return c.JSON(http.StatusOK, out)
}

// APIValidation is a log file integrity validation.
type APIValidation struct {
	ID             int64                  `json:"id"`
	StartedAt      time.Time              `json:"started_at"`
	FinishedAt     time.Time              `json:"finished_at"`
	StartedBy      string                 `json:"started_by"`
	StartedByActor *APIActor              `json:"started_by_actor,omitempty"`
	OK             bool                   `json:"ok"`
	Digests        int                    `json:"digests"`
	LogFiles       int                    `json:"log_files"`
	Chains         []activity.ChainResult `json:"chains"`
	Problems       []activity.Problem     `json:"problems"`
}

func apiValidation(v activity.Validation) APIValidation {
	out := APIValidation{ID: v.ID, StartedAt: v.StartedAt, FinishedAt: v.FinishedAt, StartedBy: v.StartedBy, StartedByActor: apiActor(v.StartedBy), OK: v.OK, Digests: v.Digests,
		LogFiles: v.LogFiles, Chains: v.Chains, Problems: v.Problems}
	if out.Chains == nil {
		out.Chains = []activity.ChainResult{}
	}
	if out.Problems == nil {
		out.Problems = []activity.Problem{}
	}
	return out
}

// apiLimit reads the optional limit parameter: def when absent, else
// between 1 and max.
func apiLimit(q url.Values, def, max int) (int, error) {
	l := q.Get("limit")
	if l == "" {
		return def, nil
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < 1 || n > max {
		return 0, &apperr.Error{Kind: apperr.Invalid, Message: fmt.Sprintf("limit: must be a whole number between 1 and %d", max),
			Fields: map[string]string{"limit": fmt.Sprintf("must be a whole number between 1 and %d", max)}}
	}
	return n, nil
}

func (s *Server) apiActivityValidations(c echo.Context) error {
	svc, err := s.activityService()
	if err != nil {
		return err
	}
	limit, err := apiLimit(c.QueryParams(), 20, 100)
	if err != nil {
		return err
	}
	vs, err := svc.Validations(c.Request().Context(), limit)
	if err != nil {
		return err
	}
	out := struct {
		Items []APIValidation `json:"items"`
	}{Items: make([]APIValidation, 0, len(vs))}
	for _, v := range vs {
		out.Items = append(out.Items, apiValidation(v))
	}
	return c.JSON(http.StatusOK, out)
}

// apiActivityValidate validates every trail bucket now and answers with
// the result (stored and audited like one started from the page).
func (s *Server) apiActivityValidate(c echo.Context) error {
	svc, err := s.activityService()
	if err != nil {
		return err
	}
	v, err := svc.Validate(c.Request().Context(), who(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, apiValidation(v))
}

// APIEvidenceReport is a stored evidence pack (its HTML and PDF are
// downloaded from the Evidence packs page).
type APIEvidenceReport struct {
	ID               int64      `json:"id"`
	Jurisdiction     string     `json:"jurisdiction"`
	PeriodFrom       *time.Time `json:"period_from"`
	PeriodTo         *time.Time `json:"period_to"`
	Origin           string     `json:"origin"`
	GeneratedAt      time.Time  `json:"generated_at"`
	GeneratedBy      string     `json:"generated_by"`
	GeneratedByActor *APIActor  `json:"generated_by_actor,omitempty"`
	Passed           int        `json:"passed"`
	Failed           int        `json:"failed"`
	Unknown          int        `json:"unknown"`
	SHA256           string     `json:"sha256"`
	PDFSHA256        *string    `json:"pdf_sha256"`
}

func (s *Server) apiActivityEvidence(c echo.Context) error {
	svc, err := s.evidenceSvc()
	if err != nil {
		return err
	}
	limit, err := apiLimit(c.QueryParams(), 100, 500)
	if err != nil {
		return err
	}
	packs, _, err := svc.List(c.Request().Context(), evidence.Filter{Limit: limit})
	if err != nil {
		return err
	}
	out := struct {
		Items []APIEvidenceReport `json:"items"`
	}{Items: make([]APIEvidenceReport, 0, len(packs))}
	for _, r := range packs {
		item := APIEvidenceReport{ID: r.ID, Jurisdiction: r.Jurisdiction, Origin: r.Origin, GeneratedAt: r.GeneratedAt, GeneratedBy: r.GeneratedBy, GeneratedByActor: apiActor(r.GeneratedBy),
			Passed: r.Passed, Failed: r.Failed, Unknown: r.Unknown, SHA256: r.SHA256}
		if !r.Period.From.IsZero() {
			from, to := r.Period.From, r.Period.To
			item.PeriodFrom, item.PeriodTo = &from, &to
		}
		if r.HasPDF {
			sum := r.PDFSHA256
			item.PDFSHA256 = &sum
		}
		out.Items = append(out.Items, item)
	}
	return c.JSON(http.StatusOK, out)
}
