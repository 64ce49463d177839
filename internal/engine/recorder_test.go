package engine_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"portal/internal/blueprints"
	"portal/internal/engine"
)

// TestStepsRecordRequestIDs: every step of a run keeps the AWS request ids
// of its calls, the same ids OnCall reports, S3's included. A CloudTrail
// event names the run that made it by that id.
func TestStepsRecordRequestIDs(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	byOp := map[string][]string{}
	h.eng.OnCall = func(ctx context.Context, c engine.Call) {
		mu.Lock()
		defer mu.Unlock()
		byOp[c.Service+" "+c.Operation] = append(byOp[c.Service+" "+c.Operation], c.RequestID)
	}
	s := keyStack(true)
	s.Resources = append(s.Resources, blueprints.Resource{ID: "documents_bucket", Type: "s3_bucket", Region: "eu-central-1", Fields: map[string]any{
		"name": "t-docs-" + h.account, "data_class": "documents", "kms_key": "${ref.documents_key.arn}", "versioning": true, "public_access_block": true,
		"tls_only": true}, DependsOn: []string{"documents_key"}})
	_, run := h.planApply(t, s, "apply")
	_, steps, err := h.eng.GetRun(context.Background(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string][]string{}
	for _, st := range steps {
		ids[st.ResourceID] = st.RequestIDs
		if len(st.RequestIDs) == 0 {
			t.Errorf("step %s recorded no request id", st.ResourceID)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if got := byOp["S3 CreateBucket"]; len(got) != 1 || got[0] == "" || !slices.Contains(ids["documents_bucket"], got[0]) {
		t.Errorf("CreateBucket's request ids %q, want one, among step documents_bucket's %v", got, ids["documents_bucket"])
	}
	keys := append(slices.Clone(ids["documents_key"]), ids["logs_key"]...)
	if got := byOp["KMS CreateKey"]; len(got) != 2 || !slices.Contains(keys, got[0]) || !slices.Contains(keys, got[1]) {
		t.Errorf("CreateKey's request ids %q, want two, among the key steps' %v", got, keys)
	}
}
