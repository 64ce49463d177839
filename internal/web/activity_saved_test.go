package web_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"portal/internal/activity"
	"portal/internal/staff"
)

// savedNames are the saved searches listed on a page, in order.
func savedNames(t *testing.T, r *response) []string {
	t.Helper()
	var out []string
	r.Doc(t).Find(`[data-testid="saved-query"]`).Each(func(_ int, s *goquery.Selection) {
		out = append(out, strings.TrimSpace(s.Find("a, [aria-current]").First().Text()))
	})
	return out
}

// TestActivitySavedSearches: a search is saved under a name for its owner
// or shared with everyone who may open the page; saving again under the
// name replaces it; only the owner deletes it; bad names are refused with
// a message and nothing saved.
func TestActivitySavedSearches(t *testing.T) {
	h := newHarness(t)
	insertEvents(t, h, [3]string{"Decrypt", "kms.amazonaws.com", "ana.ops"}, [3]string{"PutRolePolicy", "iam.amazonaws.com", "dara.sec"})
	olga, _ := h.signedIn(t, staff.Compliance)
	carl, _ := h.signedIn(t, staff.Ops)

	if _, ok := olga.get(t, "/activity").TestID(t, "saved-queries-empty"); !ok {
		t.Error("no saved searches: the strip does not say so")
	}
	query := "hide_source=kms.amazonaws.com&access=write"
	r := olga.submit(t, "/activity?"+query, "/saved-searches", url.Values{"page": {"/activity"}, "name": {"  No KMS  "}, "query": {query + "&before=1700000000000-5"}})
	if r.StatusCode != http.StatusSeeOther || r.Location() != "/activity?access=write&hide_source=kms.amazonaws.com" {
		t.Fatalf("save: got %d to %q, want 303 to the search without its page position", r.StatusCode, r.Location())
	}
	page := olga.get(t, r.Location())
	if text, _, _, _ := flashOf(t, page); !strings.Contains(text, `Saved the search "No KMS" for you`) {
		t.Errorf("flash %q", text)
	}
	if got := savedNames(t, page); !slices.Equal(got, []string{"No KMS"}) {
		t.Errorf("saved searches %v, want [No KMS]", got)
	}
	if cur := page.Doc(t).Find(`[data-testid="saved-query"] [aria-current]`).Text(); cur != "No KMS" {
		t.Errorf("the search shown is not marked current (%q)", cur)
	}
	if got := savedNames(t, carl.get(t, "/activity")); len(got) != 0 {
		t.Errorf("someone else sees a search not shared: %v", got)
	}

	// Shared, and saved again under its name with another query.
	r = olga.submit(t, "/activity", "/saved-searches", url.Values{"page": {"/activity"}, "name": {"People's IAM"}, "query": {"source=iam.amazonaws.com"}, "shared": {"1"}})
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("save shared: got %d", r.StatusCode)
	}
	r = olga.submit(t, "/activity", "/saved-searches", url.Values{"page": {"/activity"}, "name": {"People's IAM"}, "query": {"source=iam.amazonaws.com&made_by=people"}, "shared": {"1"}})
	if r.StatusCode != http.StatusSeeOther || r.Location() != "/activity?made_by=people&source=iam.amazonaws.com" {
		t.Fatalf("save again: got %d to %q", r.StatusCode, r.Location())
	}
	cp := carl.get(t, "/activity")
	if got := savedNames(t, cp); !slices.Equal(got, []string{"People's IAM"}) {
		t.Errorf("shared searches seen by another: %v, want [People's IAM]", got)
	}
	if href, _ := cp.Doc(t).Find(`[data-testid="saved-query"] a`).First().Attr("href"); href != "/activity?made_by=people&source=iam.amazonaws.com" {
		t.Errorf("the shared search opens %q, want the query saved last", href)
	}
	if who, _ := cp.TestID(t, "actor"); !strings.Contains(who, "@") {
		t.Errorf("the shared search does not say who shared it (%q)", who)
	}
	if cp.Doc(t).Find(`[data-testid="saved-query-delete"]`).Length() != 0 {
		t.Error("another person is offered to delete a shared search")
	}
	list, err := h.app.Activity.SavedQueries(context.Background(), activity.PageExplorer, 0)
	if err != nil || len(list) != 1 {
		t.Fatalf("shared searches: %v, %v", list, err)
	}
	if r := carl.submit(t, "/activity", "/saved-searches/"+itoa(list[0].ID)+"/delete", nil); r.StatusCode != http.StatusForbidden {
		t.Errorf("delete someone else's shared search: got %d, want 403", r.StatusCode)
	}
	// The sensitive tab keeps its own searches.
	if got := savedNames(t, olga.get(t, "/activity/sensitive")); len(got) != 0 {
		t.Errorf("the sensitive tab lists the explorer's searches: %v", got)
	}

	// The audit trail keeps its own, for those who may read it.
	r = olga.submit(t, "/audit", "/saved-searches", url.Values{"page": {"/audit"}, "name": {"Sign-ins"}, "query": {"action=auth.sign_in"}})
	if r.StatusCode != http.StatusSeeOther || r.Location() != "/audit?action=auth.sign_in" {
		t.Fatalf("save an audit search: got %d to %q", r.StatusCode, r.Location())
	}
	if got := savedNames(t, olga.get(t, "/audit")); !slices.Equal(got, []string{"Sign-ins"}) {
		t.Errorf("audit saved searches %v, want [Sign-ins]", got)
	}
	if r := carl.submit(t, "/activity", "/saved-searches", url.Values{"page": {"/audit"}, "name": {"x"}, "query": {""}}); r.StatusCode != http.StatusForbidden {
		t.Errorf("ops saves an audit search: got %d, want 403", r.StatusCode)
	}

	// Refused: no name, a page that has no saved searches.
	for _, bad := range []url.Values{
		{"page": {"/activity"}, "name": {"   "}, "query": {"q=x"}},
		{"page": {"/activity"}, "name": {strings.Repeat("n", 81)}, "query": {"q=x"}},
	} {
		r := olga.submit(t, "/activity", "/saved-searches", bad)
		if r.StatusCode != http.StatusSeeOther {
			t.Fatalf("bad save %v: got %d", bad, r.StatusCode)
		}
		if text, kind, _, _ := flashOf(t, olga.get(t, r.Location())); kind != "error" || !strings.Contains(text, "name") {
			t.Errorf("bad save %v: flash %q (%s), want an error naming the name", bad, text, kind)
		}
	}
	if r := olga.submit(t, "/activity", "/saved-searches", url.Values{"page": {"/access"}, "name": {"x"}}); r.StatusCode != http.StatusBadRequest {
		t.Errorf("save a search of /access: got %d, want 400", r.StatusCode)
	}
	if got := savedNames(t, olga.get(t, "/activity")); !slices.Equal(got, []string{"No KMS", "People's IAM"}) {
		t.Errorf("after refusals: %v, want the two saved", got)
	}

	// The owner deletes it.
	page = olga.get(t, "/activity")
	del, _ := page.Doc(t).Find(`[data-testid="saved-query"]`).Last().Find("form").Attr("action")
	r = olga.submit(t, "/activity", del, nil)
	if r.StatusCode != http.StatusSeeOther || r.Location() != "/activity" {
		t.Fatalf("delete: got %d to %q", r.StatusCode, r.Location())
	}
	if got := savedNames(t, carl.get(t, "/activity")); len(got) != 0 {
		t.Errorf("after delete, others still see %v", got)
	}
}
