package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"portal/internal/peers/peertest"
	"portal/internal/staff"
)

// TestRollOutPages starts a roll-out of the shipped blueprints to dev from
// the form and reads its page: three rounds (the layer, the three stacks,
// the layer again), the first planned and applying; prod and unknown
// environments are refused with the reason, and compliance reads without
// the form.
func TestRollOutPages(t *testing.T) {
	moto := peertest.MotoForTest(t)
	peertest.SetAWSEnv(t, moto)
	h := newHarness(t, "-dev-account-id", peertest.AccountForTest(t), "-test-account-id", peertest.AccountForTest(t),
		"-prod-account-id", peertest.AccountForTest(t), "-drift-interval", "0")
	ops, _ := h.signedIn(t, staff.Ops)

	page := ops.get(t, "/rollouts")
	if page.StatusCode != http.StatusOK || !strings.Contains(page.Body, "No roll-outs yet") {
		t.Fatalf("GET /rollouts: %d, want the empty state\n%s", page.StatusCode, page.Body)
	}
	r := ops.submit(t, "/rollouts", "/rollouts", url.Values{"environment": {"staging"}})
	if msg, _ := r.TestID(t, "error-environment"); r.StatusCode != http.StatusBadRequest || !strings.Contains(msg, "dev, test or prod") {
		t.Errorf("roll out to staging: %d %q, want 400 naming the environments", r.StatusCode, msg)
	}
	r = ops.submit(t, "/rollouts", "/rollouts", url.Values{"environment": {"prod"}})
	if msg, _ := r.TestID(t, "rollout-error"); r.StatusCode != http.StatusConflict || !strings.Contains(msg, "prod-global") || !strings.Contains(msg, "test-global") {
		t.Errorf("roll out to prod first: %d %q, want 409 saying test-global has not applied it", r.StatusCode, msg)
	}

	r = ops.submit(t, "/rollouts", "/rollouts", url.Values{"environment": {"dev"}})
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Location(), "/rollouts/") {
		t.Fatalf("roll out to dev: %d to %q, want a redirect to the roll-out\n%s", r.StatusCode, r.Location(), r.Body)
	}
	show := ops.get(t, r.Location())
	doc := show.Doc(t)
	for i, want := range []string{"dev-global", "dev-us dev-eu dev-apac", "dev-global"} {
		var got []string
		doc.Find(`[data-testid="rollout-round-` + string(rune('1'+i)) + `"] tbody tr td:first-child`).Each(func(_ int, s *goquery.Selection) {
			got = append(got, strings.TrimSpace(s.Text()))
		})
		if strings.Join(got, " ") != want {
			t.Errorf("round %d: %v, want %s", i+1, got, want)
		}
	}
	if href, _ := doc.Find(`[data-testid="step-1-dev-global"] a[href^="/plans/"]`).Attr("href"); href == "" {
		t.Errorf("the first round has no plan link:\n%s", show.Body)
	}
	if _, ok := doc.Find(`[data-testid="rollout-progress"]`).Attr("hx-get"); !ok {
		t.Error("an unfinished roll-out's page does not refresh itself")
	}

	comp, _ := h.signedIn(t, staff.Compliance)
	list := comp.get(t, "/rollouts")
	if list.StatusCode != http.StatusOK || strings.Contains(list.Body, `data-testid="rollout-form"`) || !strings.Contains(list.Body, r.Location()) {
		t.Errorf("compliance reads the roll-outs without the form: %d", list.StatusCode)
	}
}
