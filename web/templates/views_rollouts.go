package templates

import "time"

// RollOutForm is the form that starts a roll-out.
type RollOutForm struct {
	Version      string
	Environment  string
	Environments []string
	Errors       FormErrors
	Message      string
}

// RollOutStepRow is one stack's plan and run in one round of a roll-out.
type RollOutStepRow struct {
	Stack, State, Message string
	PlanID, RunID         int64
}

// RollOutRow is one roll-out.
type RollOutRow struct {
	ID          int64
	Version     string
	Environment string
	State       string
	Message     string
	CreatedBy   string
	CreatedAt   time.Time
	FinishedAt  time.Time
	Rounds      [][]RollOutStepRow
}

// Finished reports whether the roll-out has ended.
func (r RollOutRow) Finished() bool { return r.State == "succeeded" || r.State == "failed" }

// RollOutsView is the roll-outs page.
type RollOutsView struct {
	Form    RollOutForm
	CanRoll bool
	Rows    []RollOutRow
	AWSNote string
}
