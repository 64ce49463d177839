package workflows

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/engine"
	"portal/internal/notify"
	"portal/internal/store"
)

// ApprovalPolicy says who must approve a plan that needs approval (every
// apply to prod and every destroy): one distinct person per slot, holding
// one of the slot's roles, none of them the plan's author.
type ApprovalPolicy struct {
	// Slots are the approvals needed; each lists the roles that may fill it.
	Slots [][]string
	// Expiry is how long an approval stays valid.
	Expiry time.Duration
}

// DefaultApprovalPolicy is one approver holding ops or admin, valid 24 h.
func DefaultApprovalPolicy() ApprovalPolicy {
	return ApprovalPolicy{Slots: [][]string{{"ops", "admin"}}, Expiry: 24 * time.Hour}
}

// ParseApprovalSlots parses slots written like "ops|admin" (one approver
// holding ops or admin) or "ops,admin" (two approvers: one ops AND one
// admin). Only ops and admin may approve.
func ParseApprovalSlots(s string) ([][]string, error) {
	var out [][]string
	for _, slot := range strings.Split(s, ",") {
		slot = strings.TrimSpace(slot)
		if slot == "" {
			continue
		}
		var roles []string
		for _, r := range strings.Split(slot, "|") {
			r = strings.ToLower(strings.TrimSpace(r))
			if r != "ops" && r != "admin" {
				return nil, fmt.Errorf("approver role %q: only ops and admin may approve", r)
			}
			if !slices.Contains(roles, r) {
				roles = append(roles, r)
			}
		}
		out = append(out, roles)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("at least one approver is needed, e.g. ops|admin")
	}
	if len(out) > 5 {
		return nil, fmt.Errorf("at most 5 approvers, got %d", len(out))
	}
	return out, nil
}

// Describe words the policy: "one approver holding ops or admin".
func (p ApprovalPolicy) Describe() string {
	var parts []string
	for _, s := range p.Slots {
		parts = append(parts, "one holding "+strings.Join(s, " or "))
	}
	n := len(p.Slots)
	who := "1 approver"
	if n != 1 {
		who = fmt.Sprintf("%d approvers", n)
	}
	return fmt.Sprintf("%s other than the plan's author (%s), valid %s", who, strings.Join(parts, " and "), duration(p.Expiry))
}

// duration words d without zero units: 24h, 90m, 1h30m.
func duration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// NeedsApproval reports whether applying p needs approval: every apply to
// prod, every destroy, and every change of the organization's service
// control policies (they bind every account at once).
func NeedsApproval(p *engine.Plan) bool {
	return p.Stack.Environment == "prod" || p.Kind == "destroy" || p.Stack.ID == OrganizationStack
}

// OrganizationStack is the stack of the organization's service control
// policies (orgguard plans it): not a blueprint's stack, so no version
// travels the road to it; a plan of it is applied once an admin other than
// its author approves it (OrganizationPolicy).
const OrganizationStack = "organization-guardrails"

// OrganizationPolicy is who approves a change of the organization's
// policies: another admin.
func OrganizationPolicy(expiry time.Duration) ApprovalPolicy {
	return ApprovalPolicy{Slots: [][]string{{"admin"}}, Expiry: expiry}
}

// Approver is the person deciding.
type Approver struct {
	ID    int64
	Label string // audit actor label, "user:3 alice@example.com"
	Roles []string
}

// Decision is one approval or rejection of a plan.
type Decision struct {
	ID         int64
	PlanID     int64
	PlanHash   string
	Decision   string // "approved" or "rejected"
	ApproverID int64
	Approver   string
	Roles      []string
	Reason     string
	At         time.Time
	Expires    time.Time
	// Void says why the decision no longer counts ("" when it does):
	// expired, or the plan was replaced by a re-plan.
	Void string
	// Slot is the index of the policy slot this approval fills, -1 if none.
	Slot int
}

// Approval is the approval state of one plan.
type Approval struct {
	Needed bool
	Policy ApprovalPolicy
	// Emergency is set when the plan is an emergency change: its policy is
	// EmergencyPolicy.
	Emergency *EmergencyChange
	Decisions []Decision
	// SupersededBy is a newer plan of the same stack that voids this
	// plan's approvals; 0 when this plan is current.
	SupersededBy int64
	Rejected     *Decision
	// Filled has, per policy slot, the approver filling it ("" if none).
	Filled []string
	// Satisfied reports whether the decisions let the plan be applied.
	Satisfied bool
	// Missing says what is still needed, in words.
	Missing string
	// Blocked says why no one may approve or apply the plan whatever the
	// decisions ("" when nothing does): its version has not gone the
	// normal road to the stack.
	Blocked string
	// AuthorID is the user who made the plan (0 when the portal made it).
	AuthorID int64
}

// authorID returns the user id in an audit actor label ("user:3 ...").
func authorID(actor string) int64 {
	rest, ok := strings.CutPrefix(actor, "user:")
	if !ok {
		return 0
	}
	if i := strings.IndexAny(rest, " "); i >= 0 {
		rest = rest[:i]
	}
	id, _ := strconv.ParseInt(rest, 10, 64)
	return id
}

// supersededBy returns the newest plan of stack made after planID by a
// person or a promotion (drift checks do not count), or 0.
func (s *Service) supersededBy(ctx context.Context, stack string, planID int64) (int64, error) {
	var id int64
	err := s.DB.QueryRowContext(ctx, `SELECT id FROM plans WHERE stack = ? AND id > ? AND id NOT IN (SELECT plan_id FROM drift_checks WHERE plan_id IS NOT NULL)
		ORDER BY id DESC LIMIT 1`, stack, planID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return id, err
}

// ApprovalOf returns the approval state of plan p, judged now: a decision
// counts only while it is bound to the plan's hash, the plan is current,
// it has not expired, and its approver still holds an approving role with
// an active account.
func (s *Service) ApprovalOf(ctx context.Context, p *engine.Plan) (Approval, error) {
	a := Approval{Needed: NeedsApproval(p), Policy: s.policy(), AuthorID: authorID(p.CreatedBy)}
	if s.DB == nil {
		a.Satisfied = !a.Needed
		return a, nil
	}
	em, isEm, err := s.EmergencyOf(ctx, p.ID)
	if err != nil {
		return a, err
	}
	if isEm {
		a.Emergency, a.Needed, a.Policy = &em, true, EmergencyPolicy(s.policy().Expiry)
	} else if p.Stack.ID == OrganizationStack {
		a.Policy = OrganizationPolicy(s.policy().Expiry)
	} else if p.Kind == "apply" {
		if a.Blocked, err = s.Gate(ctx, p.BlueprintVersion, p.Stack.ID); err != nil {
			return a, err
		}
	}
	if !a.Needed {
		a.Satisfied = true
		return a, nil
	}
	if a.SupersededBy, err = s.supersededBy(ctx, p.Stack.ID, p.ID); err != nil {
		return a, err
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT id, plan_id, plan_hash, decision, approver_id, approver, roles, reason, created_at, expires_at
		FROM approvals WHERE plan_id = ? ORDER BY id`, p.ID)
	if err != nil {
		return a, fmt.Errorf("workflows: approvals of plan %d: %w", p.ID, err)
	}
	for rows.Next() {
		var d Decision
		var roles, at, exp string
		if err := rows.Scan(&d.ID, &d.PlanID, &d.PlanHash, &d.Decision, &d.ApproverID, &d.Approver, &roles, &d.Reason, &at, &exp); err != nil {
			rows.Close()
			return a, err
		}
		d.Roles = strings.Split(roles, ",")
		d.At, d.Expires, d.Slot = parseTime(at), parseTime(exp), -1
		a.Decisions = append(a.Decisions, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return a, err
	}
	now := s.now()
	allowed := dedupe(slices.Concat(a.Policy.Slots...))
	for i := range a.Decisions {
		d := &a.Decisions[i]
		switch {
		case d.PlanHash != p.Hash:
			d.Void = "given for a different plan hash"
		case a.SupersededBy != 0:
			d.Void = fmt.Sprintf("voided: plan #%d replaced this plan", a.SupersededBy)
		case d.Decision == "approved" && !now.Before(d.Expires):
			d.Void = "expired " + d.Expires.UTC().Format("2006-01-02 15:04 UTC")
		case d.Decision == "approved":
			if d.Void, err = s.standing(ctx, d, allowed); err != nil {
				return a, err
			}
		}
	}
	for i := range a.Decisions {
		if d := a.Decisions[i]; d.Decision == "rejected" && d.Void == "" {
			a.Rejected = &a.Decisions[i]
		}
	}
	// Assign valid approvals to slots (few of each: try every order).
	var valid []int
	for i, d := range a.Decisions {
		if d.Decision == "approved" && d.Void == "" && d.ApproverID != a.AuthorID {
			valid = append(valid, i)
		}
	}
	best := assign(a.Policy.Slots, valid, a.Decisions)
	a.Filled = make([]string, len(a.Policy.Slots))
	for slot, di := range best {
		if di >= 0 {
			a.Filled[slot] = a.Decisions[di].Approver
			a.Decisions[di].Slot = slot
		}
	}
	var missing []string
	for i, f := range a.Filled {
		if f == "" {
			missing = append(missing, "one approver holding "+strings.Join(a.Policy.Slots[i], " or "))
		}
	}
	switch {
	case a.SupersededBy != 0:
		a.Missing = fmt.Sprintf("plan #%d replaced this plan: review and approve that one", a.SupersededBy)
	case a.Rejected != nil:
		a.Missing = fmt.Sprintf("%s rejected this plan: %s", a.Rejected.Approver, a.Rejected.Reason)
	case len(missing) > 0:
		a.Missing = "it still needs " + strings.Join(missing, " and ") + ", other than its author"
	default:
		a.Satisfied = true
	}
	return a, nil
}

// standing checks an approval against its approver as they are now: it
// returns why the approval is void ("" when it counts) and narrows d.Roles
// to the approving roles they still hold.
func (s *Service) standing(ctx context.Context, d *Decision, allowed []string) (string, error) {
	if s.People == nil {
		return "", nil
	}
	who, err := s.People.Person(ctx, d.ApproverID)
	if apperr.KindOf(err) == apperr.NotFound {
		return "void: the approver's account no longer exists", nil
	} else if err != nil {
		return "", err
	}
	if !who.Active {
		return "void: " + d.Approver + "'s account is disabled", nil
	}
	var still []string
	for _, r := range d.Roles {
		if slices.Contains(who.Roles, r) {
			still = append(still, r)
		}
	}
	d.Roles = still
	if !hasAny(still, allowed) {
		return "void: " + d.Approver + " no longer holds " + strings.Join(allowed, " or "), nil
	}
	return "", nil
}

// assign fills slots with distinct decisions, maximising filled slots.
// It returns, per slot, the decision index or -1.
func assign(slots [][]string, cands []int, ds []Decision) []int {
	best := make([]int, len(slots))
	for i := range best {
		best[i] = -1
	}
	bestN := 0
	cur := make([]int, len(slots))
	used := map[int]bool{}
	var walk func(slot, n int)
	walk = func(slot, n int) {
		if n > bestN {
			bestN = n
			copy(best, cur)
		}
		if slot == len(slots) {
			return
		}
		for _, di := range cands {
			if used[di] || !hasAny(ds[di].Roles, slots[slot]) {
				continue
			}
			used[di], cur[slot] = true, di
			walk(slot+1, n+1)
			used[di] = false
		}
		cur[slot] = -1
		walk(slot+1, n)
	}
	for i := range cur {
		cur[i] = -1
	}
	walk(0, 0)
	return best
}

func hasAny(have, want []string) bool {
	for _, w := range want {
		if slices.Contains(have, w) {
			return true
		}
	}
	return false
}

func (s *Service) policy() ApprovalPolicy {
	p := s.Approvals
	if len(p.Slots) == 0 {
		p.Slots = DefaultApprovalPolicy().Slots
	}
	if p.Expiry <= 0 {
		p.Expiry = DefaultApprovalPolicy().Expiry
	}
	return p
}

// Decide records who's decision on plan planID: "approved" or "rejected"
// (a rejection needs a reason). hash is the plan hash the person reviewed.
// The author of a plan cannot decide on it; only people holding a role of
// the policy may; a plan replaced by a re-plan cannot be decided on.
func (s *Service) Decide(ctx context.Context, by audit.Entry, who Approver, planID int64, hash, decision, reason string) (Decision, error) {
	reason = strings.TrimSpace(reason)
	// A rejection without a reason is well formed (the reason is optional
	// for an approval): a rule, 422 in the API.
	var v, rules apperr.Validation
	if decision != "approved" && decision != "rejected" {
		v.Add("decision", "must be approve or reject")
	}
	if decision == "rejected" && reason == "" {
		rules.Add("reason", "is required: say why the plan is rejected")
	}
	if utf8.RuneCountInString(reason) > 1000 {
		v.Add("reason", "is longer than 1000 characters")
	}
	if err := v.WithRules(rules); err != nil {
		return Decision{}, err
	}
	p, err := s.Engine.GetPlan(ctx, planID)
	if err != nil {
		return Decision{}, err
	}
	a, err := s.ApprovalOf(ctx, p)
	if err != nil {
		return Decision{}, err
	}
	drift, err := s.isDriftPlan(ctx, p.ID)
	if err != nil {
		return Decision{}, err
	}
	pol := a.Policy
	allowed := dedupe(slices.Concat(pol.Slots...))
	switch {
	case drift:
		return Decision{}, apperr.New(apperr.Conflict, "plan %d was made by a drift check and is never applied, so there is nothing to decide: reconcile the stack instead", planID)
	case !a.Needed:
		return Decision{}, apperr.New(apperr.Conflict, "plan %d does not need approval: only applies to prod, destroys, emergency changes and the organization's policies do", planID)
	case decision == "approved" && a.Blocked != "":
		return Decision{}, apperr.New(apperr.Conflict, "plan %d cannot be approved: %s", planID, a.Blocked)
	case hash != p.Hash:
		return Decision{}, apperr.New(apperr.Conflict, "the plan you reviewed (hash %s) is not plan %d's (hash %s): reload the plan and review it again", short(hash), planID, short(p.Hash))
	case a.SupersededBy != 0:
		return Decision{}, apperr.New(apperr.Conflict, "plan #%d replaced this plan: review and decide on that one", a.SupersededBy)
	case who.ID == a.AuthorID:
		return Decision{}, apperr.New(apperr.Forbidden, "you made this plan: someone else must approve or reject it")
	case !hasAny(who.Roles, allowed):
		return Decision{}, apperr.New(apperr.Forbidden, "only people holding %s may decide on this plan", strings.Join(allowed, " or "))
	}
	for _, d := range a.Decisions {
		if d.ApproverID == who.ID && d.Void == "" {
			return Decision{}, apperr.New(apperr.Conflict, "you already %s this plan", d.Decision)
		}
	}
	now := s.now()
	d := Decision{PlanID: p.ID, PlanHash: p.Hash, Decision: decision, ApproverID: who.ID, Approver: who.Label, Roles: who.Roles, Reason: reason,
		At: now, Expires: now.Add(pol.Expiry)}
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `INSERT INTO approvals (plan_id, plan_hash, stack, decision, approver_id, approver, roles, reason, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, p.ID, p.Hash, p.Stack.ID, decision, who.ID, who.Label, strings.Join(who.Roles, ","), reason,
			store.Time(now), store.Time(d.Expires)).Scan(&d.ID); err != nil {
			return fmt.Errorf("workflows: record decision: %w", err)
		}
		e := by
		e.Action = "approval." + strings.TrimSuffix(decision, "d")
		if decision == "rejected" {
			e.Action = "approval.reject"
		}
		e.Target = fmt.Sprintf("plan:%d stack:%s", p.ID, p.Stack.ID)
		e.Details = map[string]any{"hash": p.Hash, "reason": reason, "roles": who.Roles, "expires": store.Time(d.Expires)}
		_, err = s.Audit.Append(ctx, tx, e)
		return err
	})
	return d, err
}

func dedupe(xs []string) []string {
	var out []string
	for _, x := range xs {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// requestApproval tells the people who may approve plan p that it waits
// for them.
func (s *Service) requestApproval(ctx context.Context, p *engine.Plan, a Approval) {
	if s.Notify == nil {
		return
	}
	what := "apply"
	if p.Kind == "destroy" {
		what = "destroy"
	}
	subject := fmt.Sprintf("Approval needed: %s %s (plan #%d)", what, p.Stack.ID, p.ID)
	msg := fmt.Sprintf("%s planned to %s %s with blueprint version %s. It needs %s before it can run.", p.CreatedBy, what, p.Stack.ID, short(p.BlueprintVersion), a.Policy.Describe())
	if a.Emergency != nil {
		subject = fmt.Sprintf("Emergency change needs approval: %s (plan #%d)", p.Stack.ID, p.ID)
		msg = fmt.Sprintf("%s asks for an emergency change of %s to blueprint version %s, which has not gone the normal road, because: %s. It needs %s before it can run.",
			p.CreatedBy, p.Stack.ID, short(p.BlueprintVersion), a.Emergency.Reason, a.Policy.Describe())
	}
	to, err := s.recipients(ctx, a.AuthorID, slices.Concat(a.Policy.Slots...)...)
	if err != nil && s.Log != nil {
		s.Log.Warn("approval request recipients", slog.String("err", err.Error()))
	}
	_, _ = s.Notify.Notify(ctx, notify.Notification{Kind: notify.ApprovalPending, Stack: p.Stack.ID, Subject: subject, Message: msg,
		Link: fmt.Sprintf("/plans/%d", p.ID), To: to})
}

// recipients returns the e-mail addresses of the active people holding
// any of roles, except the person with id except.
func (s *Service) recipients(ctx context.Context, except int64, roles ...string) ([]string, error) {
	if s.People == nil {
		return nil, nil
	}
	people, err := s.People.WithRoles(ctx, dedupe(roles)...)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range people {
		if p.ID != except && p.Active && p.Email != "" && !slices.Contains(out, p.Email) {
			out = append(out, p.Email)
		}
	}
	return out, nil
}

// PendingApproval is a plan waiting for decisions.
type PendingApproval struct {
	Plan     *engine.Plan
	Approval Approval
}

// PendingApprovals lists current plans that need approval and are neither
// satisfied, rejected, replaced nor applied, newest first.
func (s *Service) PendingApprovals(ctx context.Context, limit int) ([]PendingApproval, error) {
	// Only the newest plan of a stack (drift checks aside) can be
	// current: every older one is replaced by it.
	rows, err := s.DB.QueryContext(ctx, `SELECT id FROM plans p WHERE (p.kind = 'destroy' OR p.stack LIKE 'prod-%' OR p.stack = '`+OrganizationStack+`' OR p.id IN (SELECT plan_id FROM emergency_changes))
		AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.plan_id = p.id)
		AND p.id NOT IN (SELECT plan_id FROM drift_checks WHERE plan_id IS NOT NULL)
		AND p.id = (SELECT MAX(q.id) FROM plans q WHERE q.stack = p.stack AND q.id NOT IN (SELECT plan_id FROM drift_checks WHERE plan_id IS NOT NULL))
		AND p.blocking = 0 ORDER BY id DESC LIMIT ?`, limit*4)
	if err != nil {
		return nil, fmt.Errorf("workflows: pending approvals: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	var out []PendingApproval
	for _, id := range ids {
		p, err := s.Engine.GetPlan(ctx, id)
		if err != nil {
			return nil, err
		}
		if !p.HasChanges() {
			continue
		}
		a, err := s.ApprovalOf(ctx, p)
		if err != nil {
			return nil, err
		}
		if a.SupersededBy != 0 || a.Rejected != nil {
			continue
		}
		out = append(out, PendingApproval{Plan: p, Approval: a})
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

// CanDecide says whether who may approve or reject the plan of pa now, and
// why not ("" when they may).
func (pa PendingApproval) CanDecide(who Approver) (bool, string) {
	a := pa.Approval
	allowed := dedupe(slices.Concat(a.Policy.Slots...))
	switch {
	case a.Blocked != "":
		return false, "nobody may approve it: " + a.Blocked
	case a.Satisfied:
		return false, "approved: it may be applied"
	case who.ID == a.AuthorID:
		return false, "you made this plan: someone else must approve it"
	case !hasAny(who.Roles, allowed):
		return false, "only people holding " + strings.Join(allowed, " or ") + " may decide on it"
	}
	for _, d := range a.Decisions {
		if d.ApproverID == who.ID && d.Void == "" {
			return false, "you have " + d.Decision + " it"
		}
	}
	return true, ""
}

// WaitingFor returns the pending plans who may decide on now, newest
// first: the approvals inbox, whose count the navigation shows.
func (s *Service) WaitingFor(ctx context.Context, who Approver) ([]PendingApproval, error) {
	pending, err := s.PendingApprovals(ctx, 100)
	if err != nil {
		return nil, err
	}
	var out []PendingApproval
	for _, pa := range pending {
		if ok, _ := pa.CanDecide(who); ok {
			out = append(out, pa)
		}
	}
	return out, nil
}
