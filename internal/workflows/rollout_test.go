package workflows_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"portal/internal/apperr"
	"portal/internal/blueprints"
	"portal/internal/regions"
	"portal/internal/workflows"
)

// layeredBlueprints serves the fake stacks of fakeBlueprints plus an
// environment layer wired to them the way the shipped one is: each stack's
// key names the layer's zone key (${layer...}), and the layer's routing key
// names the three stacks' keys (${jurisdiction...}).
type layeredBlueprints struct{ *fakeBlueprints }

func (b *layeredBlueprints) Resolve(ctx context.Context, version, stack string) (*blueprints.Stack, string, error) {
	env, j, _ := strings.Cut(stack, "-")
	if j != regions.LayerSuffix {
		st, v, err := b.fakeBlueprints.Resolve(ctx, version, stack)
		if err != nil {
			return nil, "", err
		}
		layer := regions.LayerID(env)
		st.Resources[0].Fields["description"] = fmt.Sprintf("documents key beside ${xref.%s.zone_key.arn}", layer)
		st.Resources[0].Cross = []string{layer + ":zone_key"}
		return st, v, nil
	}
	if version == "" {
		version = "v2"
	}
	prefix := "t-" + stack + "-" + b.account[env]
	routing := blueprints.Resource{ID: "routing_key", Type: "kms_key", Region: regions.LayerRegion,
		Fields: map[string]any{"data_class": "assets", "rotation": true, "alias": "alias/" + prefix + "-routing", "description": "routes to"}}
	for _, jj := range regions.Jurisdictions() {
		id := regions.StackID(env, jj.ID)
		routing.Fields["description"] = routing.Fields["description"].(string) + fmt.Sprintf(" ${xref.%s.documents_key.arn}", id)
		routing.Cross = append(routing.Cross, id+":documents_key")
	}
	st := blueprints.NewStack(stack, env, "", regions.LayerRegion, version+"-"+stack, []blueprints.Resource{
		{ID: "zone_key", Type: "kms_key", Region: regions.LayerRegion, Fields: map[string]any{"data_class": "trail", "rotation": true, "alias": "alias/" + prefix + "-zone"}},
		routing,
	})
	return st, version, nil
}

// TestRollOutInRounds rolls version v1 out to dev: the layer's first
// resources, then the three stacks (which need them), then the layer's
// routing (which needs theirs), each round after the previous one's runs
// succeeded; prod is refused until the version went through test.
func TestRollOutInRounds(t *testing.T) {
	h := newHarness(t, false)
	ctx := context.Background()
	fb := h.wf.Blueprints.(*fakeBlueprints)
	h.wf.Blueprints = &layeredBlueprints{fb}

	r, err := h.wf.StartRollOut(ctx, as(author), "dev", "v1")
	if err != nil {
		t.Fatal(err)
	}
	var rounds []string
	for _, round := range r.Rounds() {
		var ids []string
		for _, s := range round {
			ids = append(ids, s.Stack)
		}
		rounds = append(rounds, strings.Join(ids, " "))
	}
	if got, want := strings.Join(rounds, " | "), "dev-global | dev-us dev-eu dev-apac | dev-global"; got != want {
		t.Fatalf("rounds %q, want %q", got, want)
	}
	if s := r.Steps[0]; s.State != workflows.StepRunning || s.PlanID == 0 || s.RunID == 0 {
		t.Errorf("first step %+v, want its plan applied", s)
	}
	if s := r.Steps[1]; s.State != workflows.StepPending {
		t.Errorf("second round started before the first finished: %+v", s)
	}
	for i := 0; i < 10 && !r.Finished(); i++ {
		h.run()
		if err := h.wf.AdvanceRollOuts(ctx); err != nil {
			t.Fatal(err)
		}
		if r, err = h.wf.GetRollOut(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
	}
	if r.State != workflows.RollOutSucceeded {
		t.Fatalf("roll-out %s (%s): %+v", r.State, r.Message, r.Steps)
	}
	if first := r.Steps[0]; !strings.Contains(first.Message, "wait for other stacks") {
		t.Errorf("the layer's first run says %q, want that its routing waits for the stacks", first.Message)
	}
	for _, s := range r.Steps {
		if s.State != workflows.StepDone || s.RunID == 0 {
			t.Errorf("step %+v, want succeeded with its run", s)
		}
	}
	last, err := h.eng.GetPlan(ctx, r.Steps[len(r.Steps)-1].PlanID)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range last.Changes {
		if len(ch.Waits) > 0 {
			t.Errorf("the layer's last plan still waits: %s %v", ch.ID, ch.Waits)
		}
	}
	if n := h.auditActions("rollout.succeeded"); n != 1 {
		t.Errorf("audit holds %d rollout.succeeded, want 1", n)
	}

	// prod: test has not seen v1.
	_, err = h.wf.StartRollOut(ctx, as(author), "prod", "v1")
	if apperr.KindOf(err) != apperr.Conflict || !strings.Contains(err.Error(), "prod-global: version v1 has not been applied successfully in test-global") {
		t.Errorf("prod roll-out before test: %v, want refused naming test-global", err)
	}
	if _, err := h.wf.StartRollOut(ctx, as(author), "staging", ""); apperr.KindOf(err) != apperr.Invalid {
		t.Errorf("an unknown environment: %v, want invalid", err)
	}
}
