package templates

import "time"

// RunRow is one run in a list.
type RunRow struct {
	ID         int64
	PlanID     int64
	Stack      string
	Kind       string
	Version    string
	State      string
	CreatedBy  string
	CreatedAt  time.Time
	FinishedAt time.Time
	Error      string
	Calls      int
}

// RunsFilter is the runs list's filter form.
type RunsFilter struct {
	Stack, State, User, Since, Until string
}

// RunsView is the runs list with the plan form.
type RunsView struct {
	Filter    RunsFilter
	Stacks    []string
	States    []string
	Rows      []RunRow
	NextURL   string
	CanPlan   bool
	PlanStack string
	Errors    FormErrors
	AWSReady  bool
	AWSNote   string
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
	CreatedBy        string
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
	// Approval is shown for plans that need approval (prod, destroys).
	Approval *ApprovalPanel
	// ApplyBlocked says why the apply button is withheld.
	ApplyBlocked string
	Lock         LockView
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
