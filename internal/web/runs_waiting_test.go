package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"portal/internal/staff"
)

// TestQueuedRunBehindInterruptedRun checks that a run queued behind one
// the portal stopped during says what it waits for: someone to resume or
// cancel that run, not for it to end by itself.
func TestQueuedRunBehindInterruptedRun(t *testing.T) {
	e := newActivityEstate(t)
	ctx := context.Background()
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	stuck := insertRun(t, e.h.app.DB, "dev-us", at, at.Add(time.Minute), "REQ-STUCK")
	waiting := insertRun(t, e.h.app.DB, "dev-us", at.Add(2*time.Minute), at.Add(3*time.Minute), "REQ-WAITING")
	for id, state := range map[int64]string{stuck: "interrupted", waiting: "queued"} {
		if _, err := e.h.app.DB.ExecContext(ctx, `UPDATE runs SET state = ?, finished_at = '' WHERE id = ?`, state, id); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := e.h.signedIn(t, staff.Ops)
	r := c.get(t, "/runs/"+itoa(waiting))
	got, ok := r.TestID(t, "run-waiting")
	if !ok || !strings.Contains(got, "#"+itoa(stuck)+" was interrupted") || !strings.Contains(got, "resumes or cancels it") {
		t.Errorf("queued run's page: %q, want it to name interrupted run #%d and what it needs", got, stuck)
	}
	if href, _ := r.Doc(t).Find(`[data-testid="run-waiting"] a`).Attr("href"); href != "/runs/"+itoa(stuck) {
		t.Errorf("link to the interrupted run: %q", href)
	}
}
