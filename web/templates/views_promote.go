package templates

import (
	"strings"
	"time"
)

// PromoteForm is the promotion form.
type PromoteForm struct {
	Version       string
	Environment   string
	Jurisdictions []string
	Environments  []string
	AllJuris      []JurisOption
	Errors        FormErrors
	Message       string // a refusal, in words
}

// JurisOption is one jurisdiction checkbox.
type JurisOption struct {
	ID, Name string
}

// PromotionRow is one promotion in a list.
type PromotionRow struct {
	ID          int64
	Version     string
	Environment string
	Purpose     string
	CreatedBy   ActorView
	CreatedAt   time.Time
	Stacks      []string
}

// PromotionsView is the promotions page.
type PromotionsView struct {
	Form        PromoteForm
	CanPromote  bool
	Rows        []PromotionRow
	NextURL     string
	Policy      string
	Unsupported string // how verification gaps are treated, in words
	AWSNote     string
	Layers      []LayerNote // environments whose layer was never applied
}

// LayerNote is an environment whose layer (<env>-global) the latest version
// holds but no run has applied.
type LayerNote struct {
	Environment, Layer string
}

// PromotionStackRow is one stack of a promotion, live.
type PromotionStackRow struct {
	Stack         string
	PlanID        int64
	RunID         int64
	RunState      string
	RunError      string
	Refused       string
	Approval      string // "", "needed", "approved", "rejected", "replaced"
	ApprovalNote  string
	LockNote      string
	Verification  string
	VerifyID      int64
	VerifySummary string
}

// PromotionView is one promotion's page.
type PromotionView struct {
	Row      PromotionRow
	Stacks   []PromotionStackRow
	Finished bool
}

// DecisionRow is one approval or rejection.
type DecisionRow struct {
	Approver               ActorView
	Decision, Reason, Void string
	Roles                  string
	At, Expires            time.Time
}

// VerificationRow is a verification in a list or on a plan.
type VerificationRow struct {
	ID        int64
	Stack     string
	RunID     int64
	Version   string
	State     string
	Summary   string
	CreatedBy ActorView
	CreatedAt time.Time
}

// ApprovalPanel is the approval part of a plan page.
type ApprovalPanel struct {
	Needed       bool
	Satisfied    bool
	Missing      string
	Policy       string
	Decisions    []DecisionRow
	Filled       []string
	CanDecide    bool
	DecideNote   string // why the viewer cannot decide
	Hash         string
	SupersededBy int64
	Lower        []VerificationRow
	Unsupported  string
	// Blocked says why no one may approve the plan ("" when they may).
	Blocked string
	// Emergency is set when the plan is an emergency change.
	Emergency *EmergencyView
}

// LockView is who holds a stack's lock and who waits.
type LockView struct {
	Held  bool
	RunID int64
	By    ActorView
	State string
	Since time.Time
	Queue []RunRow
}

// ApprovalsRow is one plan waiting for decisions.
type ApprovalsRow struct {
	PlanID    int64
	Stack     string
	Kind      string
	Version   string
	CreatedBy ActorView
	CreatedAt time.Time
	Satisfied bool
	Missing   string
	Decisions int
	// Hash binds a decision from the inbox to the plan shown.
	Hash string
	// Changes counts the resources the plan changes.
	Changes int
	// Policy is who must approve it.
	Policy string
	// Emergency is the reason of an emergency change ("" otherwise).
	Emergency string
	// Blocked says why nobody may approve it.
	Blocked string
	// Lower are the verifications of its version below.
	Lower []VerificationRow
	// CanDecide says whether the viewer may decide now; Why says why not.
	CanDecide bool
	Why       string
}

// ApprovalsView is the approvals inbox.
type ApprovalsView struct {
	// Mine are the plans the viewer may decide on now.
	Mine []ApprovalsRow
	// Others wait for someone else, or for nothing the viewer can give.
	Others []ApprovalsRow
	// Exceptions wait for a compliance officer's approval.
	Exceptions []ExceptionRow
	Policy     string
	Emergency  string
}

// DriftRow is the latest drift check of one stack.
type DriftRow struct {
	ID        int64
	Stack     string
	Version   string
	State     string
	Drifted   int
	Error     string
	CheckedAt time.Time
	// RequestedBy is who asked for the check ("system": the schedule, or
	// the check after an apply that followed drift).
	RequestedBy string
	// Reconciling is the run bringing the stack back since the check
	// (ID 0: none); once it succeeds the stack is checked again.
	Reconciling RunLink
}

// DriftView is the drift page.
type DriftView struct {
	Rows     []DriftRow
	Interval string
	CanAct   bool
	AWSNote  string
	// Live: a reconcile is under way, so the table refreshes itself.
	Live bool
}

// DriftDetailView is one drift check with its field-level differences.
type DriftDetailView struct {
	Row           DriftRow
	PlanID        int64
	Changes       []ChangeRow
	CanAct        bool
	Latest        bool
	NeedsApproval bool
}

// NotificationRow is one ops notification.
type NotificationRow struct {
	ID           int64
	Kind, Stack  string
	Subject      string
	Message      string
	Link         string
	TopicARN     string
	PublishError string
	Published    bool
	CreatedAt    time.Time
	// Emails are the notification's e-mails, one per recipient.
	Emails []EmailRow
}

// EmailRow is one e-mail of a notification.
type EmailRow struct {
	To, State, Error string
}

// NotificationsView is the notifications page.
type NotificationsView struct {
	Rows    []NotificationRow
	Kinds   []string
	Stacks  []string
	Kind    string
	Stack   string
	NextURL string
}

// VerifyStepRow is one step of a verification.
type VerifyStepRow struct {
	Name                       string
	Title, State, Detail, Took string
}

// VerificationView is one verification's page.
type VerificationView struct {
	Row         VerificationRow
	Steps       []VerifyStepRow
	Unsupported string
	CanVerify   bool
	FinishedAt  time.Time
}

// HistoryRow is one run in a stack's history.
type HistoryRow struct {
	Run          RunRow
	Version      string
	InForce      bool
	Verification string
}

// HistoryView is a stack's history.
type HistoryView struct {
	Stack         string
	Environment   string
	Jurisdiction  string
	InForce       string
	Rows          []HistoryRow
	NextURL       string
	CanAct        bool
	Lock          LockView
	Verifications []VerificationRow
	Drift         *DriftRow
}

// StackPromotion is the promotion state of one cell of the stacks grid.
type StackPromotion struct {
	Waiting        string // version on its way in, "" when none
	WaitingPlanID  int64
	WaitingWhy     string // "awaiting approval", "run queued", ...
	Drifted        int
	DriftCheckID   int64
	Verification   string // latest verification of the version in force
	VerificationID int64
	Stack          string
}

// VersionTravel is how far one version has gone: its state per stack, in
// grid order (dev-us .. prod-apac).
type VersionTravel struct {
	Version string
	Cells   []TravelCell
}

// TravelCell is a version's state in one stack: "in force", "verified",
// "applied", "failed", "waiting" or "".
type TravelCell struct {
	Stack, State string
}

// InboxRow is one delivery of the sandbox's alert inbox.
type InboxRow struct {
	ID                                               int64
	At                                               time.Time
	URL, Type, TopicARN, MessageID, Subject, Message string
}

// SandboxInboxView is the sandbox inbox page.
type SandboxInboxView struct {
	Rows    []InboxRow
	Since   time.Time
	MailURL string
	// Topic narrows the list to one topic's deliveries.
	Topic string
}

// layerEnvs names the environments of ls in words: "dev", "dev and prod",
// "dev, test and prod".
func layerEnvs(ls []LayerNote) string {
	var names []string
	for _, l := range ls {
		names = append(names, l.Environment)
	}
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}
