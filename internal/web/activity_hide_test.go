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

// insertEvents stores one event per name, made by the role session given.
func insertEvents(t *testing.T, h *harness, events ...[3]string) {
	t.Helper()
	var out []activity.Event
	for i, e := range events {
		raw := `{"eventVersion":"1.08","eventID":"ev-` + e[0] + `","eventTime":"2026-11-20T10:0` + string(rune('0'+i)) + `:00Z","eventName":"` + e[0] +
			`","eventSource":"` + e[1] + `","awsRegion":"eu-central-1","recipientAccountId":"111111111111","readOnly":false,"sourceIPAddress":"203.0.113.10",` +
			`"userIdentity":{"type":"AssumedRole","principalId":"AROA:` + e[2] + `","arn":"arn:aws:sts::111111111111:assumed-role/StaffOperator/` + e[2] +
			`","accountId":"111111111111","accessKeyId":"ASIA` + strings.ToUpper(strings.ReplaceAll(e[2], ".", "")) + `"}}`
		ev, err := activity.ParseRecord([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	if _, err := h.app.Activity.Insert(context.Background(), out); err != nil {
		t.Fatal(err)
	}
}

// eventNames are the event names listed on an explorer page, sorted.
func eventNames(t *testing.T, r *response) []string {
	t.Helper()
	var out []string
	r.Doc(t).Find(`[data-testid="event-row"] [data-testid="event-name"]`).Each(func(_ int, s *goquery.Selection) {
		out = append(out, strings.TrimSpace(s.Text()))
	})
	slices.Sort(out)
	return out
}

// TestActivityExclusions: the explorer and the API leave out the events of
// the principals, sources and names given, each as a comma-separated list
// or a repeated parameter, and keep them in the form.
func TestActivityExclusions(t *testing.T) {
	h := newHarness(t)
	insertEvents(t, h, [3]string{"Decrypt", "kms.amazonaws.com", "ana.ops"}, [3]string{"PutRolePolicy", "iam.amazonaws.com", "dara.sec"},
		[3]string{"CreateBucket", "s3.amazonaws.com", "ana.ops"}, [3]string{"GenerateDataKey", "kms.amazonaws.com", "dara.sec"})
	c, officer := h.signedIn(t, staff.Compliance)

	r := c.get(t, "/activity?hide_source=kms.amazonaws.com&hide_user=dara.sec")
	if got := eventNames(t, r); r.StatusCode != http.StatusOK || !slices.Equal(got, []string{"CreateBucket"}) {
		t.Errorf("hide kms and dara.sec: got %d %v, want 200 [CreateBucket]", r.StatusCode, got)
	}
	if v, _ := r.Doc(t).Find(`input[name="hide_user"]`).Attr("value"); v != "dara.sec" {
		t.Errorf("the Hide who field holds %q, want dara.sec", v)
	}
	r = c.get(t, "/activity?hide_name="+url.QueryEscape("Decrypt, CreateBucket,,"))
	if got := eventNames(t, r); !slices.Equal(got, []string{"GenerateDataKey", "PutRolePolicy"}) {
		t.Errorf("hide two names in one list: got %v", got)
	}
	if v, _ := r.Doc(t).Find(`input[name="hide_name"]`).Attr("value"); v != "Decrypt, CreateBucket" {
		t.Errorf("the Hide event names field holds %q, want the list tidied", v)
	}

	token := h.apiToken(t, officer.User)
	var page struct {
		Items []struct {
			Name string `json:"name"`
		} `json:"items"`
	}
	r = h.api(t, http.MethodGet, "/api/v1/activity/events?hide_name=Decrypt&hide_name=CreateBucket&hide_user=dara.sec", token, "", "")
	r.JSON(t, &page)
	if r.StatusCode != http.StatusOK || len(page.Items) != 0 {
		t.Errorf("API: got %d with %d events, want 200 and none\n%s", r.StatusCode, len(page.Items), r.Body)
	}
	r = h.api(t, http.MethodGet, "/api/v1/activity/events?hide_source=kms.amazonaws.com", token, "", "")
	r.JSON(t, &page)
	if r.StatusCode != http.StatusOK || len(page.Items) != 2 {
		t.Errorf("API hide kms: got %d with %d events, want 200 and 2", r.StatusCode, len(page.Items))
	}
	// More values than the limit is a request well formed but refused.
	many := make([]string, activity.MaxHidden+1)
	for i := range many {
		many[i] = "Name" + strings.Repeat("x", i)
	}
	r = h.api(t, http.MethodGet, "/api/v1/activity/events?hide_name="+url.QueryEscape(strings.Join(many, ",")), token, "", "")
	var ae apiError
	r.JSON(t, &ae)
	if r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(ae.Error.Fields["hide_name"], "at most 20") {
		t.Errorf("API 21 hidden names: got %d %s, want 422 naming hide_name", r.StatusCode, r.Body)
	}
	if msg, ok := c.get(t, "/activity?hide_name="+url.QueryEscape(strings.Join(many, ","))).TestID(t, "error-hide_name"); !ok || !strings.Contains(msg, "at most 20") {
		t.Errorf("explorer 21 hidden names: got %q, want the field's error", msg)
	}
}
