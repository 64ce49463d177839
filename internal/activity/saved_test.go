package activity_test

import (
	"context"
	"testing"

	"portal/internal/activity"
	"portal/internal/apperr"
	"portal/internal/peers/peertest"
	"portal/internal/store"
)

// TestSavedQueries: a search is kept per owner and page, replaced when
// saved again under its name, offered to others only when shared, deleted
// only by its owner; on either database.
func TestSavedQueries(t *testing.T) {
	db := peertest.StoreForTest(t)
	s := activity.New(activity.Config{}, db, nil, nil, nil)
	ctx := context.Background()
	var ids [2]int64
	for i, email := range []string{"olga@example.com", "carl@example.com"} {
		if err := db.QueryRowContext(ctx, `INSERT INTO users (email, password_hash, created_at, updated_at) VALUES (?, '', ?, ?) RETURNING id`,
			email, store.Time(t0), store.Time(t0)).Scan(&ids[i]); err != nil {
			t.Fatal(err)
		}
	}
	olga, carl := ids[0], ids[1]

	q, err := s.SaveQuery(ctx, activity.SavedQuery{OwnerID: olga, Owner: "user:1 olga@example.com", Page: activity.PageExplorer,
		Name: " No KMS ", Query: "hide_source=kms.amazonaws.com&before=123-4"})
	if err != nil {
		t.Fatal(err)
	}
	if q.Name != "No KMS" || q.Query != "hide_source=kms.amazonaws.com" || q.URL() != "/activity?hide_source=kms.amazonaws.com" {
		t.Errorf("saved %+v, want the name trimmed and the page position dropped", q)
	}
	again, err := s.SaveQuery(ctx, activity.SavedQuery{OwnerID: olga, Owner: "user:1 olga@example.com", Page: activity.PageExplorer,
		Name: "No KMS", Query: "hide_source=kms.amazonaws.com&access=write", Shared: true})
	if err != nil || again.ID != q.ID {
		t.Fatalf("saved again: %+v, %v; want the same search replaced", again, err)
	}
	if _, err := s.SaveQuery(ctx, activity.SavedQuery{OwnerID: olga, Page: activity.PageExplorer, Name: "a private one", Query: "q=x"}); err != nil {
		t.Fatal(err)
	}
	mine, err := s.SavedQueries(ctx, activity.PageExplorer, olga)
	if err != nil || len(mine) != 2 || mine[0].Name != "a private one" || !mine[1].Shared || mine[1].Query != "access=write&hide_source=kms.amazonaws.com" {
		t.Errorf("the owner's searches: %+v, %v", mine, err)
	}
	theirs, err := s.SavedQueries(ctx, activity.PageExplorer, carl)
	if err != nil || len(theirs) != 1 || theirs[0].Name != "No KMS" {
		t.Errorf("someone else's view: %+v, %v; want only the shared one", theirs, err)
	}
	if other, _ := s.SavedQueries(ctx, activity.PageSensitive, olga); len(other) != 0 {
		t.Errorf("another page lists %+v", other)
	}
	for _, bad := range []activity.SavedQuery{
		{OwnerID: olga, Page: activity.PageExplorer, Name: "  "},
		{OwnerID: olga, Page: "/access", Name: "x"},
		{OwnerID: olga, Page: activity.PageExplorer, Name: "tab\tname"},
	} {
		if _, err := s.SaveQuery(ctx, bad); apperr.KindOf(err) != apperr.Invalid {
			t.Errorf("save %+v: got %v, want invalid", bad, err)
		}
	}
	if _, err := s.DeleteQuery(ctx, carl, q.ID); apperr.KindOf(err) != apperr.Forbidden {
		t.Errorf("someone else deletes a shared search: got %v, want forbidden", err)
	}
	if _, err := s.DeleteQuery(ctx, carl, mine[0].ID); apperr.KindOf(err) != apperr.NotFound {
		t.Errorf("someone else deletes a private search: got %v, want not found", err)
	}
	if _, err := s.DeleteQuery(ctx, olga, q.ID); err != nil {
		t.Fatal(err)
	}
	if left, _ := s.SavedQueries(ctx, activity.PageExplorer, carl); len(left) != 0 {
		t.Errorf("after delete: %+v", left)
	}
}
