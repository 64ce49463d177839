package templates

import "time"

// RunRow is one run in a list.
type RunRow struct {
	ID     int64
	PlanID int64
	Stack  string
	Kind   string
	// Version is the stack's content hash; BlueprintVersion the blueprint
	// version the plan was made from (what every other page shows).
	Version          string
	BlueprintVersion string
	State            string
	CreatedBy        ActorView
	CreatedAt        time.Time
	StartedAt        time.Time
	FinishedAt       time.Time
	Error            string
	Calls            int
	// Approvers approved the plan before the run; none outside prod.
	Approvers []ActorView
	// VerifyID is the verification that followed the run (0: none).
	VerifyID    int64
	VerifyState string
}

// Duration is how long the run took (or has been running), "" before it
// started.
func (r RunRow) Duration() string {
	if r.StartedAt.IsZero() {
		return ""
	}
	end := r.FinishedAt
	if end.IsZero() {
		return "running"
	}
	return roundDuration(end.Sub(r.StartedAt))
}

// RunsFilter is the runs list's filter form. Show is "" for runs and
// "plans" for plans that were never applied.
type RunsFilter struct {
	Stack, State, User, Since, Until, Show string
}

// UnappliedPlanRow is a plan nobody applied.
type UnappliedPlanRow struct {
	ID                     int64
	Stack, Kind            string
	BlueprintVersion, Hash string
	Blocking, DriftCheck   bool
	CreatedBy              ActorView
	CreatedAt              time.Time
}

// RunsView is the runs list with the plan form.
type RunsView struct {
	Filter    RunsFilter
	Stacks    []string
	States    []string
	Rows      []RunRow
	Plans     []UnappliedPlanRow
	NextURL   string
	CanPlan   bool
	PlanStack string
	Errors    FormErrors
	AWSReady  bool
	AWSNote   string
	// Plan is the plan form as last submitted, with why it was refused.
	Plan PlanForm
	// MinEmergency is the shortest reason an emergency change takes.
	MinEmergency int
}

// PlanForm is the "Plan a stack" form.
type PlanForm struct {
	Stack, Version, Emergency string
	// Message says why the last submission was refused.
	Message string
	Errors  FormErrors
}

// EmergencyView is an emergency change: a plan that brings a version to
// test or prod before it went the normal road.
type EmergencyView struct {
	PlanID    int64
	Stack     string
	Version   string
	Reason    string
	CreatedBy ActorView
	CreatedAt time.Time
	// State is "awaiting approval", "queued" or "in force" (Overview).
	State string
	RunID int64
	// Road says what the version still lacks on the normal road.
	Road string
}

// FieldRow is one field-level change in a plan.
type FieldRow struct {
	Path, Before, After string
	Replace             bool
}

// ChangeRow is one resource in a plan.
type ChangeRow struct {
	ID, Type, Region, Action, PhysicalID string
	Fields                               []FieldRow
	PatientData                          bool
	Problem, Note                        string
	File                                 string
	Line                                 int
}

// ServiceGroup is the changes of one AWS service.
type ServiceGroup struct {
	Service string
	Changes []ChangeRow
}

// GuardrailRow is one guardrail result on a plan.
type GuardrailRow struct {
	Rule, Severity, Status, Resource, Message, Citation, File string
	Line                                                      int
}

// PlanView is the plan page.
type PlanView struct {
	ID               int64
	Stack            string
	Kind             string
	Version          string
	BlueprintVersion string
	Hash             string
	CreatedBy        ActorView
	CreatedAt        time.Time
	Took             string
	Calls            int
	Counts           []ActionCount
	Groups           []ServiceGroup
	Guardrails       []GuardrailRow
	Blocking         []string
	HasChanges       bool
	CanApply         bool
	PatientChanges   int
	Deletions        int
	Errors           FormErrors
	Runs             []RunRow
	// Approval is shown for plans that need approval (prod, destroys,
	// emergency changes).
	Approval *ApprovalPanel
	// Gate says why the plan's version may not go to its stack ("" when it
	// may, or for an emergency change).
	Gate string
	// Emergency is set when the plan is an emergency change.
	Emergency *EmergencyView
	// ApplyBlocked says why the apply button is withheld.
	ApplyBlocked string
	Lock         LockView
	// Works and WorksLive answer "will it work?" (nil for plans made
	// before the checks, and for destroys).
	Works, WorksLive *WorksView
}

// ActionCount is how many changes an action has.
type ActionCount struct {
	Action string
	N      int
}

// StepRow is one step of a run.
type StepRow struct {
	ResourceID, Type, Region, Action, State, Error string
	StartedAt, FinishedAt                          time.Time
	Calls                                          int
	RequestIDs                                     []string
}

// LogRow is one log line.
type LogRow struct {
	At         time.Time
	ResourceID string
	Line       string
}

// RunView is the run page.
type RunView struct {
	Run       RunRow
	Steps     []StepRow
	Done      int
	Total     int
	Failed    int
	Logs      []LogRow
	Finished  bool
	CanCancel bool
	CanResume bool
	StartedAt time.Time
	// CSRF is the form token of the live part's buttons.
	CSRF string
	// Lock is the stack's lock while this run waits for it.
	Lock *LockView
}
