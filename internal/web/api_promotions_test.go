package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/blueprints"
	"portal/internal/engine"
	"portal/internal/guardrails"
	"portal/internal/peers/peertest"
	"portal/internal/regions"
	"portal/internal/staff"
	"portal/internal/verify"
	"portal/internal/web"
)

// keyStack serves blueprint versions "v1" and "v2" of a one-key stack: the
// API test is about the JSON API, so its stacks apply in a second (the
// shipped blueprints are walked in the browser test of package app).
type keyStack struct{ accounts map[string]string }

func (b keyStack) Resolve(ctx context.Context, version, stack string) (*blueprints.Stack, string, error) {
	if version == "" {
		version = "v1"
	}
	if version != "v1" && version != "v2" {
		return nil, "", apperr.New(apperr.NotFound, "no blueprint version %q", version)
	}
	env, j, _ := strings.Cut(stack, "-")
	jur, _ := regions.JurisdictionByID(j)
	return &blueprints.Stack{ID: stack, Environment: env, Jurisdiction: j, Region: jur.HomeRegion, Version: version + "-" + stack,
		Resources: []blueprints.Resource{{ID: "documents_key", Type: "kms_key", Region: jur.HomeRegion, Fields: map[string]any{
			"data_class": "documents", "rotation": true, "description": "documents key " + version,
			"alias": "alias/" + stack + "-" + b.accounts[env] + "-documents"}}}}, version, nil
}

func (b keyStack) Exceptions(ctx context.Context, stack string) ([]guardrails.Exception, error) {
	var out []guardrails.Exception
	for _, r := range []string{"cloudtrail-integrity", "prod-alarms", "works-routing"} {
		out = append(out, guardrails.Exception{RuleID: r, Stack: stack, Owner: "ops@example.com", Reason: "API test stack", Expires: time.Now().Add(time.Hour)})
	}
	return out, nil
}

// passingVerifier is a fake verifier for the one-key stacks, which have no
// bucket or topic to verify: the real verifier is tested against moto in
// package verify and in the browser walk.
type passingVerifier struct{}

func (passingVerifier) VerifyStack(ctx context.Context, info engine.StackInfo, res []engine.StateResource) verify.Result {
	return verify.Result{State: verify.Passed, Steps: []verify.Step{{Name: verify.StepUpload, Title: verify.Title(verify.StepUpload), State: verify.Passed, Detail: "fake"}}}
}

// TestPromotionAPI walks promotion, approvals, emergency changes and drift
// through the JSON API, as a release pipeline would.
func TestPromotionAPI(t *testing.T) {
	moto := peertest.MotoForTest(t)
	peertest.SetAWSEnv(t, moto)
	accounts := map[string]string{}
	var args []string
	for _, env := range regions.EnvironmentNames() {
		accounts[env] = peertest.AccountForTest(t)
		args = append(args, "-"+env+"-account-id", accounts[env], "-"+env+"-role-arn", "arn:aws:iam::"+accounts[env]+":role/"+peertest.TestRole)
	}
	h := newHarness(t, append(args, "-drift-interval", "0")...)
	h.app.Estate.Workflows.Blueprints = keyStack{accounts: accounts}
	h.app.Estate.Workflows.Verifier = passingVerifier{}
	ops, admin, comp := h.newUser(t, staff.Ops), h.newUser(t, staff.Admin), h.newUser(t, staff.Compliance)
	opsTok, adminTok, compTok := h.apiToken(t, ops.User), h.apiToken(t, admin.User), h.apiToken(t, comp.User)

	call := func(method, path, token, body string, want int, out any) string {
		t.Helper()
		ct := ""
		if body != "" {
			ct = "application/json"
		}
		res := h.api(t, method, path, token, ct, body)
		if res.StatusCode != want {
			t.Fatalf("%s %s: got %d %s, want %d", method, path, res.StatusCode, res.Body, want)
		}
		if out != nil {
			if err := json.Unmarshal([]byte(res.Body), out); err != nil {
				t.Fatalf("%s %s: %v in %s", method, path, err, res.Body)
			}
		}
		return res.Body
	}
	// settle waits until promotion id has run and verified every stack
	// that needs no approval.
	settle := func(id int64) web.APIPromotion {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			var pr web.APIPromotion // fresh: decoding reuses slices
			call("GET", fmt.Sprintf("/api/v1/promotions/%d", id), opsTok, "", http.StatusOK, &pr)
			done := true
			for _, s := range pr.Stacks {
				if s.Approval == "needed" {
					continue
				}
				done = done && s.RunState == "succeeded" && s.Verification == "passed"
			}
			if done {
				return pr
			}
			if time.Now().After(deadline) {
				t.Fatalf("promotion %d did not finish: %+v", id, pr)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	body := call("POST", "/api/v1/promotions", opsTok, `{"version": "v1", "environment": "test", "jurisdictions": ["eu"]}`, http.StatusConflict, nil)
	if !strings.Contains(body, "test-eu: version v1 has not been applied successfully in dev-eu") {
		t.Errorf("promotion to test before dev: got %s, want the refusal naming dev-eu", body)
	}
	var pr web.APIPromotion
	call("POST", "/api/v1/promotions", opsTok, `{"version": "v1", "environment": "dev", "jurisdictions": ["eu"]}`, http.StatusCreated, &pr)
	settle(pr.ID)
	pr = web.APIPromotion{}
	call("POST", "/api/v1/promotions", opsTok, `{"version": "v1", "environment": "test", "jurisdictions": ["eu"]}`, http.StatusCreated, &pr)
	settle(pr.ID)
	pr = web.APIPromotion{}
	call("POST", "/api/v1/promotions", opsTok, `{"version": "v1", "environment": "prod", "jurisdictions": ["eu"]}`, http.StatusCreated, &pr)
	if len(pr.Stacks) != 1 || pr.Stacks[0].Approval != "needed" || pr.Stacks[0].RunID != 0 {
		t.Fatalf("prod promotion: got %+v, want a plan waiting for approval", pr.Stacks)
	}
	planID := pr.Stacks[0].PlanID
	var list struct {
		Items []web.APIPromotion `json:"items"`
	}
	call("GET", "/api/v1/promotions?limit=2", opsTok, "", http.StatusOK, &list)
	if len(list.Items) != 2 || list.Items[0].ID != pr.ID {
		t.Errorf("promotions page: got %d items, want the 2 newest", len(list.Items))
	}

	// The author's inbox is empty; the admin's holds the plan.
	var inbox struct {
		Items []web.APIApproval `json:"items"`
	}
	call("GET", "/api/v1/approvals?mine=true", opsTok, "", http.StatusOK, &inbox)
	if len(inbox.Items) != 0 {
		t.Errorf("the author's inbox: got %+v, want empty", inbox.Items)
	}
	inbox.Items = nil
	call("GET", "/api/v1/approvals?mine=true", adminTok, "", http.StatusOK, &inbox)
	if len(inbox.Items) != 1 || inbox.Items[0].PlanID != planID || !inbox.Items[0].CanDecide || len(inbox.Items[0].Lower) != 2 {
		t.Fatalf("the admin's inbox: got %+v, want plan %d with the verifications below", inbox.Items, planID)
	}
	hash := inbox.Items[0].Hash
	call("POST", fmt.Sprintf("/api/v1/plans/%d/decide", planID), adminTok, `{"decision": "approved", "hash": "not-the-plan"}`, http.StatusConflict, nil)
	call("POST", fmt.Sprintf("/api/v1/plans/%d/decide", planID), opsTok, `{"decision": "approved", "hash": "`+hash+`"}`, http.StatusForbidden, nil)
	var d web.APIDecision
	call("POST", fmt.Sprintf("/api/v1/plans/%d/decide", planID), adminTok, `{"decision": "approved", "hash": "`+hash+`"}`, http.StatusCreated, &d)
	var a web.APIApproval
	call("GET", fmt.Sprintf("/api/v1/plans/%d/approval", planID), opsTok, "", http.StatusOK, &a)
	if a.State != "approved" || len(a.Decisions) != 1 || a.Decisions[0].ID != d.ID {
		t.Errorf("approval after the decision: got %+v, want approved by the admin", a)
	}
	call("POST", fmt.Sprintf("/api/v1/plans/%d/apply", planID), opsTok, "", http.StatusAccepted, nil)
	settle(pr.ID)

	// v2 has not gone the road: refused, unless named an emergency, which
	// an admin and a compliance officer approve.
	body = call("POST", "/api/v1/plans", opsTok, `{"stack": "prod-eu", "version": "v2"}`, http.StatusConflict, nil)
	if !strings.Contains(body, "prod-eu: version v2 has not been applied successfully in test-eu") {
		t.Errorf("plan of prod-eu with v2: got %s", body)
	}
	call("POST", "/api/v1/plans", opsTok, `{"stack": "prod-eu", "version": "v2", "emergency_reason": "too short"}`, http.StatusBadRequest, nil)
	var plan web.APIPlan
	call("POST", "/api/v1/plans", opsTok, `{"stack": "prod-eu", "version": "v2", "emergency_reason": "INC-77: the documents key description must change now"}`, http.StatusCreated, &plan)
	a = web.APIApproval{}
	call("GET", fmt.Sprintf("/api/v1/plans/%d/approval", plan.ID), compTok, "", http.StatusOK, &a)
	if a.Emergency == "" || !a.CanDecide || !strings.Contains(a.Policy, "compliance") {
		t.Fatalf("emergency approval for compliance: got %+v", a)
	}
	for _, tok := range []string{adminTok, compTok} {
		call("POST", fmt.Sprintf("/api/v1/plans/%d/decide", plan.ID), tok, `{"decision": "approved", "hash": "`+plan.Hash+`"}`, http.StatusCreated, nil)
	}
	call("POST", fmt.Sprintf("/api/v1/plans/%d/apply", plan.ID), opsTok, "", http.StatusAccepted, nil)
	var em struct {
		Items []web.APIEmergency `json:"items"`
	}
	deadline := time.Now().Add(time.Minute)
	for {
		em.Items = nil
		call("GET", "/api/v1/emergencies", compTok, "", http.StatusOK, &em)
		if len(em.Items) == 1 && em.Items[0].State == "in force" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("emergencies: got %+v, want prod-eu in force", em.Items)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(em.Items[0].Missing, "test-eu") {
		t.Errorf("emergency: got %+v, want it to name what test-eu lacks", em.Items[0])
	}

	// Drift: checked by the caller, shown, reconciled.
	var checks struct {
		Checked int                 `json:"checked"`
		Items   []web.APIDriftCheck `json:"items"`
	}
	call("POST", "/api/v1/drift/check", opsTok, "", http.StatusOK, &checks)
	if checks.Checked != 3 || len(checks.Items) != 3 || !strings.HasPrefix(checks.Items[0].RequestedBy, "user:") {
		t.Fatalf("drift check: got %+v, want three stacks checked as the caller", checks)
	}
	var dc web.APIDriftCheck
	call("GET", fmt.Sprintf("/api/v1/drift/%d", checks.Items[0].ID), compTok, "", http.StatusOK, &dc)
	if dc.State != "clean" {
		t.Errorf("drift of %s: got %+v, want clean", dc.Stack, dc)
	}
	call("POST", fmt.Sprintf("/api/v1/drift/%d/reconcile", checks.Items[0].ID), compTok, "", http.StatusForbidden, nil)
	pr = web.APIPromotion{}
	call("POST", fmt.Sprintf("/api/v1/drift/%d/reconcile", checks.Items[0].ID), opsTok, "", http.StatusCreated, &pr)
	if pr.Purpose != "reconcile" {
		t.Errorf("reconcile: got %+v", pr)
	}

	// A token limited to blueprints may not promote.
	plain, _, err := h.app.Staff.CreateToken(context.Background(), audit.Entry{Actor: "test"}, ops.ID, staff.NewToken{Name: "blueprints only", Scopes: []string{"blueprints"}})
	if err != nil {
		t.Fatal(err)
	}
	call("GET", "/api/v1/promotions", plain, "", http.StatusForbidden, nil)
}
