package evidence

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"portal/internal/activity"
	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/engine"
	"portal/internal/guardrails"
	"portal/internal/inventory"
	"portal/internal/regions"
	"portal/internal/staff"
	"portal/internal/versions"
	"portal/internal/workflows"
)

// Stack is one of the jurisdiction's stacks as the pack sees it.
type Stack struct {
	ID, Environment, Jurisdiction, Region, AccountID string
}

// The consuming interfaces: what the pack reads from each part of the
// portal, with those parts' own method signatures.
type (
	// StateSource lists what the portal manages in a stack (the engine).
	StateSource interface {
		Resources(ctx context.Context, stack string) ([]engine.StateResource, error)
	}
	// RunSource lists runs and reads plans (the engine).
	RunSource interface {
		ListRuns(ctx context.Context, f engine.RunFilter) ([]engine.Run, bool, error)
		GetPlan(ctx context.Context, id int64) (*engine.Plan, error)
	}
	// WorkflowSource is what the workflows know about runs: approvals,
	// verifications and drift.
	WorkflowSource interface {
		RunDetails(ctx context.Context, runs map[int64]int64) (map[int64]workflows.RunDetail, error)
		GetVerification(ctx context.Context, id int64) (workflows.Verification, error)
		DriftHistory(ctx context.Context, stacks []string, from, to time.Time) ([]workflows.DriftCheck, error)
	}
	// ExceptionSource lists guardrail exceptions (the versions).
	ExceptionSource interface {
		ListExceptions(ctx context.Context, f versions.ExceptionFilter) ([]versions.Exception, error)
	}
	// ActivitySource finds sensitive events and log validations.
	ActivitySource interface {
		Search(ctx context.Context, f activity.Filter) ([]activity.Event, bool, error)
		Validations(ctx context.Context, limit int) ([]activity.Validation, error)
	}
	// StaffSource lists staff and who must use two-factor.
	StaffSource interface {
		List(ctx context.Context) ([]staff.User, error)
		Requires2FA(u staff.User) bool
	}
	// AuditSource verifies the audit chain and counts its records.
	AuditSource interface {
		Verify(ctx context.Context) (audit.Verification, error)
		Count(ctx context.Context, f audit.Filter) (int, error)
	}
	// InventorySource queries the latest discovery.
	InventorySource interface {
		Query(ctx context.Context, f inventory.Filter) (inventory.Page, error)
	}
)

// Sources are everything a pack reads. Any may be nil: the controls that
// need it then say so and stay unknown.
type Sources struct {
	Stacks []Stack
	// AWS gives the configuration for an environment's account in a
	// region; nil when no AWS accounts are configured.
	AWS        func(env, region string) (aws.Config, error)
	State      StateSource
	Runs       RunSource
	Workflows  WorkflowSource
	Exceptions ExceptionSource
	Activity   ActivitySource
	Staff      StaffSource
	Audit      AuditSource
	Inventory  InventorySource
	// Preventive gives the controls AWS itself enforces for a
	// jurisdiction (the organization's service control policies); nil
	// leaves them out.
	Preventive func(ctx context.Context, jurisdiction string) []Control
	// People turns an actor label ("user:2 olga@…") into what people read
	// ("Olga Ops (olga@…)"); nil shows labels as they are.
	People func(ctx context.Context, label string) string
}

type builder struct {
	src  Sources
	pack Pack
	now  time.Time
	// arns in the latest discovery, for links to the inventory.
	invMu sync.Mutex
	inv   map[string]bool
}

// Build checks every control of jurisdiction over period p and gathers the
// records of the period. It reads AWS live for the stacks' stores, one
// stack per goroutine.
func Build(ctx context.Context, src Sources, jurisdiction string, p Period, now time.Time) (Pack, error) {
	j, ok := regions.JurisdictionByID(jurisdiction)
	if !ok {
		return Pack{}, apperr.New(apperr.Invalid, "%q is not a jurisdiction (us, eu or apac)", jurisdiction)
	}
	b := &builder{src: src, now: now.UTC(), pack: Pack{Jurisdiction: j.ID, JurisdictionName: j.Name, Regime: j.Regime, Period: p, GeneratedAt: now.UTC()}}
	var stacks []Stack
	for _, st := range src.Stacks {
		if st.Jurisdiction == j.ID {
			stacks = append(stacks, st)
		}
	}
	sort.Slice(stacks, func(a, c int) bool { return envRank(stacks[a].Environment) < envRank(stacks[c].Environment) })

	perStack := make([][]Control, len(stacks))
	var wg sync.WaitGroup
	for i, st := range stacks {
		wg.Go(func() {
			perStack[i] = append([]Control{b.guardrailControl(ctx, st)}, b.liveControls(ctx, st)...)
		})
	}
	wg.Wait()
	for _, cs := range perStack {
		b.pack.Controls = append(b.pack.Controls, cs...)
	}
	b.pack.Controls = append(b.pack.Controls, b.residency(ctx, j))
	if src.Preventive != nil {
		b.pack.Controls = append(b.pack.Controls, src.Preventive(ctx, j.ID)...)
	}
	var prod []string
	var ids []string
	for _, st := range stacks {
		ids = append(ids, st.ID)
		if st.Environment == "prod" {
			prod = append(prod, st.ID)
		}
	}
	b.pack.Controls = append(b.pack.Controls, b.changes(ctx, prod))
	b.exceptions(ctx, ids)
	b.drift(ctx, ids)
	b.pack.Controls = append(b.pack.Controls, b.sensitive(ctx, j))
	b.pack.Controls = append(b.pack.Controls, b.staff(ctx))
	b.pack.Controls = append(b.pack.Controls, b.chain(ctx))
	b.pack.Controls = append(b.pack.Controls, b.logs(ctx))
	return b.pack, nil
}

func envRank(env string) int { return slices.Index(regions.EnvironmentNames(), env) }

func (b *builder) who(ctx context.Context, label string) string {
	if b.src.People == nil || label == "" {
		return label
	}
	return b.src.People(ctx, label)
}

// resourceLink is the inventory page of arn when the latest discovery holds
// it, else fallback.
func (b *builder) resourceLink(ctx context.Context, arn, fallback string) string {
	if arn == "" || b.src.Inventory == nil {
		return fallback
	}
	b.invMu.Lock()
	defer b.invMu.Unlock()
	if b.inv == nil {
		b.inv = map[string]bool{}
		after := int64(0)
		for {
			page, err := b.src.Inventory.Query(ctx, inventory.Filter{Jurisdiction: b.pack.Jurisdiction, After: after, Limit: inventory.MaxLimit})
			if err != nil {
				break
			}
			for _, r := range page.Resources {
				b.inv[r.ARN] = true
			}
			if page.NextAfter == 0 {
				break
			}
			after = page.NextAfter
		}
	}
	if !b.inv[arn] {
		return fallback
	}
	return "/inventory/resource?" + url.Values{"arn": {arn}}.Encode()
}

// guardrailControl checks the guardrails of the blueprint version in force
// in st (the plan of its last successful run).
func (b *builder) guardrailControl(ctx context.Context, st Stack) Control {
	c := ctlGuardrails.control(b.pack.Jurisdiction, st.ID)
	link := "/blueprints/guardrails/stacks/" + st.ID
	if b.src.Runs == nil {
		c.unknown(Line{Resource: st.ID, Finding: "AWS is not configured in this portal: no stack is deployed", At: b.now})
		return c
	}
	runs, _, err := b.src.Runs.ListRuns(ctx, engine.RunFilter{Stack: st.ID, State: engine.RunSucceeded, Limit: 1})
	if err != nil || len(runs) == 0 {
		c.unknown(Line{Resource: st.ID, Finding: "no successful run of this stack: no version is in force", At: b.now, Link: "/stacks/" + st.ID + "/history"})
		return c
	}
	run := runs[0]
	p, err := b.src.Runs.GetPlan(ctx, run.PlanID)
	if err != nil {
		c.unknown(Line{Resource: fmt.Sprintf("run #%d", run.ID), Finding: "its plan could not be read: " + err.Error(), At: b.now, Link: fmt.Sprintf("/runs/%d", run.ID)})
		return c
	}
	c.Status = Pass
	failed, excepted := 0, 0
	cites := map[string]bool{}
	for _, g := range p.Guardrails {
		if g.Citation != "" {
			cites[g.Citation] = true
		}
		where := g.Resource
		if where == "" {
			where = "stack " + st.ID
		}
		if g.File != "" {
			where += fmt.Sprintf(" (%s:%d)", g.File, g.Line)
		}
		switch g.Status {
		case string(guardrails.Fail):
			failed++
			c.fail(Line{Resource: where, Finding: fmt.Sprintf("%s: %s (%s)", g.Rule, g.Message, g.Citation), At: run.FinishedAt, Link: link})
		case string(guardrails.Excepted):
			excepted++
			c.add(Line{Resource: where, Finding: fmt.Sprintf("%s excepted: %s (%s)", g.Rule, g.Message, g.Citation), At: run.FinishedAt, Link: "/blueprints/exceptions"})
		}
	}
	c.Lines = append([]Line{{Resource: fmt.Sprintf("run #%d", run.ID), At: run.FinishedAt, Link: fmt.Sprintf("/runs/%d", run.ID),
		Finding: fmt.Sprintf("applied plan #%d of %s: %d guardrail results, %d failed, %d excepted", p.ID, blueprintOf(p.BlueprintVersion),
			len(p.Guardrails), failed, excepted)}}, c.Lines...)
	if len(cites) > 0 {
		keys := make([]string, 0, len(cites))
		for k := range cites {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		c.Citation = strings.Join(keys, "; ")
	}
	return c
}

// blueprintOf names the blueprint version a plan was made from; plans made
// before blueprints were versioned (or from files posted outside the
// versions) have none, and the pack says so rather than print an empty id.
func blueprintOf(version string) string {
	if version == "" {
		return "an unversioned blueprint"
	}
	return "blueprint version " + versions.Short(version)
}

// staleDiscovery is how old the latest discovery may be for the pack's
// residency result to count as live (discovery runs every 6 hours).
const staleDiscovery = 12 * time.Hour

// residency judges, from the latest inventory discovery and with the
// guardrails' own rule, what of the jurisdiction's stacks is outside its
// regions.
func (b *builder) residency(ctx context.Context, j regions.Jurisdiction) Control {
	c := ctlResidency.control(j.ID, "")
	if b.src.Inventory == nil {
		c.unknown(Line{Resource: j.Name, Finding: "no inventory: nothing has been discovered", At: b.now, Link: "/inventory"})
		return c
	}
	all, err := b.src.Inventory.Query(ctx, inventory.Filter{Jurisdiction: j.ID, Limit: 1})
	if err != nil {
		c.unknown(Line{Resource: j.Name, Finding: "the inventory could not be read: " + apperr.MessageOf(err), At: b.now, Link: "/inventory"})
		return c
	}
	if all.Snapshot.ID == 0 {
		c.unknown(Line{Resource: j.Name, Finding: "no discovery has run yet: discover the estate on the Inventory page", At: b.now, Link: "/inventory"})
		return c
	}
	at := all.Snapshot.FinishedAt
	if age := b.now.Sub(at); age > staleDiscovery {
		c.unknown(Line{Resource: fmt.Sprintf("discovery #%d", all.Snapshot.ID), At: at, Link: "/inventory",
			Finding: fmt.Sprintf("the latest discovery is %s old, too old to say where things are now: discover again on the Inventory page, then make the pack", age.Round(time.Hour))})
		return c
	}
	c.Status = Pass
	c.add(Line{Resource: fmt.Sprintf("discovery #%d", all.Snapshot.ID), At: at, Link: "/inventory?" + url.Values{"jurisdiction": {j.ID}}.Encode(),
		Finding: fmt.Sprintf("%d resources of %s's stacks found in AWS, judged by the guardrails' data-residency rule (allowed regions: %s)",
			all.Total, j.Name, strings.Join(j.AllowedRegions, ", "))})
	after := int64(0)
	for {
		page, err := b.src.Inventory.Query(ctx, inventory.Filter{Jurisdiction: j.ID, Violations: true, After: after, Limit: inventory.MaxLimit})
		if err != nil {
			c.unknown(Line{Resource: j.Name, Finding: "the inventory could not be read: " + apperr.MessageOf(err), At: b.now, Link: "/inventory"})
			return c
		}
		for _, r := range page.Resources {
			c.fail(Line{Resource: r.ARN, Finding: "residency violation: " + r.Violation, At: at,
				Link: "/inventory/resource?" + url.Values{"arn": {r.ARN}}.Encode()})
		}
		if page.NextAfter == 0 {
			break
		}
		after = page.NextAfter
	}
	return c
}

// changes is the change record of prod and its control: every run in
// prod during the period, each approved by someone other than its author
// and followed by a passed verification.
func (b *builder) changes(ctx context.Context, prod []string) Control {
	c := ctlChanges.control(b.pack.Jurisdiction, strings.Join(prod, ", "))
	if b.src.Runs == nil {
		c.unknown(Line{Resource: "prod", Finding: "AWS is not configured in this portal: nothing runs", At: b.now})
		return c
	}
	var runs []engine.Run
	for _, stack := range prod {
		before := int64(0)
		for {
			page, more, err := b.src.Runs.ListRuns(ctx, engine.RunFilter{Stack: stack, Since: b.pack.Period.From, Until: b.pack.Period.To, BeforeID: before, Limit: 500})
			if err != nil {
				c.unknown(Line{Resource: stack, Finding: "runs could not be listed: " + err.Error(), At: b.now, Link: "/runs?stack=" + stack})
				return c
			}
			runs = append(runs, page...)
			if !more || len(page) == 0 {
				break
			}
			before = page[len(page)-1].ID
		}
	}
	sort.Slice(runs, func(i, k int) bool { return runs[i].ID < runs[k].ID })
	plans := map[int64]int64{}
	for _, r := range runs {
		plans[r.ID] = r.PlanID
	}
	details := map[int64]workflows.RunDetail{}
	if b.src.Workflows != nil {
		d, err := b.src.Workflows.RunDetails(ctx, plans)
		if err != nil {
			c.unknown(Line{Resource: "prod", Finding: "approvals could not be read: " + err.Error(), At: b.now})
			return c
		}
		details = d
	}
	c.Status = Pass
	if len(runs) == 0 {
		c.add(Line{Resource: strings.Join(prod, ", "), Finding: "no run in prod during the period: nothing changed", At: b.pack.Period.To, Link: "/runs?stack=" + firstOr(prod)})
	}
	for _, r := range runs {
		d := details[r.ID]
		ch := Change{RunID: r.ID, PlanID: r.PlanID, Stack: r.Stack, Kind: r.Kind, State: r.State, BlueprintVersion: d.BlueprintVersion, PlanHash: d.PlanHash,
			Author: b.who(ctx, r.CreatedBy), CreatedAt: r.CreatedAt, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, Error: r.Error,
			VerificationID: d.VerificationID, VerificationState: d.VerificationState}
		author := actorID(r.CreatedBy)
		independent := 0
		for _, a := range d.Approvers {
			ch.Approvers = append(ch.Approvers, b.who(ctx, a))
			if id := actorID(a); id != "" && id != author {
				independent++
			}
		}
		if d.VerificationID != 0 && b.src.Workflows != nil {
			if v, err := b.src.Workflows.GetVerification(ctx, d.VerificationID); err == nil {
				ch.VerificationSummary = v.Result.Summary()
			}
		}
		b.pack.Changes = append(b.pack.Changes, ch)
		res := fmt.Sprintf("run #%d (%s %s, plan #%d, hash %s)", r.ID, r.Kind, r.Stack, r.PlanID, versions.Short(d.PlanHash))
		link := fmt.Sprintf("/runs/%d", r.ID)
		at := r.CreatedAt
		switch {
		case independent == 0:
			c.fail(Line{Resource: res, Finding: "started by " + ch.Author + " without an approval by anyone else", At: at, Link: link})
		case r.State == engine.RunSucceeded && r.Kind == "apply" && d.VerificationState != "passed":
			state := d.VerificationState
			if state == "" {
				state = "none"
			}
			l := Line{Resource: res, Finding: fmt.Sprintf("approved by %s; verification after it: %s", strings.Join(ch.Approvers, ", "), state), At: at, Link: link}
			if d.VerificationID != 0 {
				l.Link = fmt.Sprintf("/verifications/%d", d.VerificationID)
				l.Finding += " (" + ch.VerificationSummary + ")"
			}
			if state == "failed" || state == "none" {
				c.fail(l)
			} else {
				c.unknown(l)
			}
		default:
			f := fmt.Sprintf("started by %s, approved by %s, %s", ch.Author, strings.Join(ch.Approvers, ", "), r.State)
			if d.VerificationState != "" {
				f += ", verification " + d.VerificationState
			}
			c.add(Line{Resource: res, Finding: f, At: at, Link: link})
		}
	}
	return c
}

func firstOr(xs []string) string {
	if len(xs) == 0 {
		return ""
	}
	return xs[0]
}

// actorID is the staff id in an actor label ("user:2 …" is "2"), "" for
// the system or labels that name nobody.
func actorID(label string) string {
	rest, ok := strings.CutPrefix(label, "user:")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, " ")
	return id
}

// exceptions gathers the guardrail exceptions of the stacks in force at
// some time in the period.
func (b *builder) exceptions(ctx context.Context, stacks []string) {
	if b.src.Exceptions == nil {
		return
	}
	for _, st := range stacks {
		es, err := b.src.Exceptions.ListExceptions(ctx, versions.ExceptionFilter{Stack: st})
		if err != nil {
			continue
		}
		for _, e := range es {
			end := e.Expires
			if !e.RevokedAt.IsZero() && e.RevokedAt.Before(end) {
				end = e.RevokedAt
			}
			if !e.CreatedAt.Before(b.pack.Period.To) || !end.After(b.pack.Period.From) {
				continue
			}
			b.pack.Exceptions = append(b.pack.Exceptions, Exception{ID: e.ID, Rule: e.RuleID, Stack: e.Stack, Resource: e.Resource, Owner: e.Owner,
				Reason: e.Reason, Expires: e.Expires, CreatedAt: e.CreatedAt, RevokedAt: e.RevokedAt, CreatedBy: b.who(ctx, e.CreatedBy)})
		}
	}
	sort.Slice(b.pack.Exceptions, func(i, k int) bool { return b.pack.Exceptions[i].ID < b.pack.Exceptions[k].ID })
}

// drift gathers the drift checks of the period that found drift, with the
// run that reconciled each and the next clean check.
func (b *builder) drift(ctx context.Context, stacks []string) {
	if b.src.Workflows == nil {
		return
	}
	checks, err := b.src.Workflows.DriftHistory(ctx, stacks, b.pack.Period.From, b.pack.Period.To)
	if err != nil {
		return
	}
	sort.Slice(checks, func(i, k int) bool { return checks[i].ID < checks[k].ID })
	for i, d := range checks {
		if d.State != workflows.DriftDrifted {
			continue
		}
		rec := Drift{ID: d.ID, Stack: d.Stack, CheckedAt: d.CheckedAt, Resources: d.Drifted}
		for _, later := range checks[i+1:] {
			if later.Stack == d.Stack && later.State == workflows.DriftClean {
				rec.CleanAt = later.CheckedAt
				break
			}
		}
		if b.src.Runs != nil {
			runs, _, err := b.src.Runs.ListRuns(ctx, engine.RunFilter{Stack: d.Stack, State: engine.RunSucceeded, Since: d.CheckedAt, Until: b.pack.Period.To, Limit: 500})
			if err == nil && len(runs) > 0 {
				first := runs[len(runs)-1]
				rec.ReconciledBy, rec.ReconciledAt = first.ID, first.FinishedAt
			}
		}
		b.pack.Drift = append(b.pack.Drift, rec)
	}
}

// globalSources are the event sources of account-wide services: their
// events concern every jurisdiction.
var globalSources = []string{"iam.amazonaws.com", "signin.amazonaws.com", "sts.amazonaws.com", "organizations.amazonaws.com", "sso.amazonaws.com"}

// sensitive gathers the sensitive AWS events of the period in the
// jurisdiction's regions and of account-wide services, and whether each is
// the portal's own deploy.
func (b *builder) sensitive(ctx context.Context, j regions.Jurisdiction) Control {
	c := ctlReview.control(j.ID, "")
	if b.src.Activity == nil {
		c.unknown(Line{Resource: "CloudTrail", Finding: "activity is not configured", At: b.now})
		return c
	}
	f := activity.Filter{Since: b.pack.Period.From, Until: b.pack.Period.To, Sensitive: true, Limit: activity.MaxLimit}
	for {
		events, more, err := b.src.Activity.Search(ctx, f)
		if err != nil {
			c.unknown(Line{Resource: "CloudTrail", Finding: "events could not be read: " + err.Error(), At: b.now, Link: "/activity/sensitive"})
			return c
		}
		for _, e := range events {
			global := slices.Contains(globalSources, e.Source)
			if !global && !j.Allows(e.Region) {
				continue
			}
			who := e.PrincipalARN
			if who == "" {
				who = e.UserName
			}
			b.pack.Sensitive = append(b.pack.Sensitive, Sensitive{Seq: e.Seq, At: e.Time, Why: e.Sensitive, Event: e.Source + " " + e.Name, Who: who,
				Account: e.Account, Region: e.Region, Resources: e.Resources, Portal: activity.PortalCall(e), Global: global, Sandbox: e.Sandbox})
		}
		if !more || len(events) == 0 {
			break
		}
		last := events[len(events)-1]
		f.Before = activity.Cursor{At: last.Time, Seq: last.Seq}
	}
	sort.Slice(b.pack.Sensitive, func(i, k int) bool { return b.pack.Sensitive[i].At.Before(b.pack.Sensitive[k].At) })
	c.Status = Pass
	portal := b.pack.PortalSensitive()
	q := url.Values{"since": {b.pack.Period.From.Format("2006-01-02T15:04")}, "until": {b.pack.Period.To.Format("2006-01-02T15:04")}}
	c.add(Line{Resource: "CloudTrail (" + strings.Join(j.AllowedRegions, ", ") + " and account-wide services)", At: b.pack.Period.To,
		Link: "/activity/sensitive?" + q.Encode(),
		Finding: fmt.Sprintf("%d sensitive events recorded in the period: %d by people, %d by the portal's own deploys (its deployer role session); each is listed below",
			len(b.pack.Sensitive), len(b.pack.Sensitive)-portal, portal)})
	return c
}

// staff lists every member of staff with their second factor; the control
// counts everyone and fails when someone whose role requires two-factor
// has none.
func (b *builder) staff(ctx context.Context) Control {
	c := ctlTwoFactor.control(b.pack.Jurisdiction, "")
	if b.src.Staff == nil {
		c.unknown(Line{Resource: "staff", Finding: "staff accounts could not be read", At: b.now})
		return c
	}
	users, err := b.src.Staff.List(ctx)
	if err != nil {
		c.unknown(Line{Resource: "staff", Finding: "staff accounts could not be read: " + err.Error(), At: b.now})
		return c
	}
	c.Status = Pass
	active, with, required := 0, 0, 0
	for _, u := range users {
		p := Person{ID: u.ID, Name: u.DisplayName(), Email: u.Email, TwoFactor: u.HasSecondFactor(), Required: b.src.Staff.Requires2FA(u), Disabled: u.Disabled}
		for _, r := range u.Roles {
			p.Roles = append(p.Roles, string(r))
		}
		b.pack.Staff = append(b.pack.Staff, p)
		if u.Disabled {
			continue
		}
		active++
		if u.HasSecondFactor() {
			with++
		}
		if p.Required {
			required++
		}
		who := fmt.Sprintf("%s (%s; %s)", p.Name, u.Email, strings.Join(p.Roles, ", "))
		link := fmt.Sprintf("/access/staff/%d", u.ID)
		switch {
		case !u.HasSecondFactor() && p.Required:
			c.fail(Line{Resource: who, Finding: "has NO second factor, and their role requires one", At: b.now, Link: link})
		case !u.HasSecondFactor():
			c.add(Line{Resource: who, Finding: "has no second factor (not required for their roles)", At: b.now, Link: link})
		}
	}
	c.Lines = append([]Line{{Resource: "staff", At: b.now, Link: "/access",
		Finding: fmt.Sprintf("%d of %d active staff sign in with a second factor; %d hold a role that requires it", with, active, required)}}, c.Lines...)
	return c
}

// chain verifies the portal's audit chain and counts the period's records.
func (b *builder) chain(ctx context.Context) Control {
	c := ctlChain.control(b.pack.Jurisdiction, "")
	if b.src.Audit == nil {
		c.unknown(Line{Resource: "audit trail", Finding: "not configured", At: b.now})
		return c
	}
	v, err := b.src.Audit.Verify(ctx)
	if err != nil {
		b.pack.Chain.Err = err.Error()
		c.unknown(Line{Resource: "audit trail", Finding: "could not be verified: " + err.Error(), At: b.now, Link: "/audit/verify"})
		return c
	}
	n, _ := b.src.Audit.Count(ctx, audit.Filter{Since: b.pack.Period.From, Until: b.pack.Period.To})
	b.pack.Chain = Chain{OK: v.OK, Checked: v.Checked, HeadSeq: v.HeadSeq, HeadHash: v.HeadHash, FirstBroken: v.FirstBroken, Reason: v.Reason, InPeriod: n}
	if !v.OK {
		c.fail(Line{Resource: fmt.Sprintf("audit record #%d", v.FirstBroken), Finding: "the chain is broken: " + v.Reason, At: b.now, Link: "/audit/verify"})
		return c
	}
	c.Status = Pass
	c.add(Line{Resource: "audit trail", At: b.now, Link: "/audit/verify",
		Finding: fmt.Sprintf("%d records verified (%d written in the period); head #%d %s", v.Checked, n, v.HeadSeq, v.HeadHash)})
	return c
}

// logs lists the CloudTrail log validations of the period; the control
// passes when there was at least one and the last passed.
func (b *builder) logs(ctx context.Context) Control {
	c := ctlLogs.control(b.pack.Jurisdiction, "")
	if b.src.Activity == nil {
		c.unknown(Line{Resource: "CloudTrail", Finding: "activity is not configured", At: b.now})
		return c
	}
	vs, err := b.src.Activity.Validations(ctx, 1000)
	if err != nil {
		c.unknown(Line{Resource: "CloudTrail", Finding: "validations could not be read: " + err.Error(), At: b.now, Link: "/activity/integrity"})
		return c
	}
	var last *activity.Validation
	for i := range vs {
		v := vs[i]
		if !b.pack.Period.Contains(v.FinishedAt) {
			continue
		}
		if last == nil || v.FinishedAt.After(last.FinishedAt) {
			last = &vs[i]
		}
		val := Validation{ID: v.ID, FinishedAt: v.FinishedAt, OK: v.OK, Digests: v.Digests, LogFiles: v.LogFiles}
		for _, p := range v.Problems {
			val.Problems = append(val.Problems, fmt.Sprintf("%s s3://%s/%s: %s", p.Kind, p.Bucket, p.Key, p.Detail))
		}
		b.pack.Logs = append(b.pack.Logs, val)
	}
	sort.Slice(b.pack.Logs, func(i, k int) bool { return b.pack.Logs[i].ID < b.pack.Logs[k].ID })
	if last == nil {
		c.unknown(Line{Resource: "CloudTrail digests", Finding: "no log validation ran in the period", At: b.pack.Period.To, Link: "/activity/integrity"})
		return c
	}
	failed := 0
	for _, v := range b.pack.Logs {
		if !v.OK {
			failed++
		}
	}
	link := fmt.Sprintf("/activity/integrity/%d", last.ID)
	finding := fmt.Sprintf("%d validations in the period, %d found problems; the last (#%d): %d digests, %d log files, %d problems",
		len(b.pack.Logs), failed, last.ID, last.Digests, last.LogFiles, len(last.Problems))
	if last.OK {
		c.Status = Pass
		c.add(Line{Resource: "CloudTrail digests", Finding: finding, At: last.FinishedAt, Link: link})
	} else {
		c.fail(Line{Resource: "CloudTrail digests", Finding: finding, At: last.FinishedAt, Link: link})
	}
	return c
}
