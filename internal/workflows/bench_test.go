package workflows_test

import (
	"context"
	"testing"

	"portal/internal/workflows"
)

// BenchmarkWaitingFor measures the approvals count the navigation shows on
// every page for ops, admins and compliance: 20 prod plans waiting (the
// newest current, the others replaced by it), judged for one approver.
func BenchmarkWaitingFor(b *testing.B) {
	t := &testing.T{}
	h := newHarness(t, true)
	p := h.toProd()
	for range 19 {
		if _, err := h.db.Exec(`INSERT INTO plans (stack, kind, version, blueprint_version, hash, body, blocking, calls, created_by, created_at)
			SELECT stack, kind, version, blueprint_version, hash, body, blocking, calls, created_by, created_at FROM plans WHERE id = ?`, p.ID); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w, err := h.wf.WaitingFor(ctx, opsTwo)
		if err != nil {
			b.Fatal(err)
		}
		if len(w) != 1 {
			b.Fatalf("waiting: got %d plans, want the current one", len(w))
		}
	}
	_ = workflows.PendingApproval{}
}
