package web_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func TestHealthAndMetrics(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		path       string
		wantStatus int
		wantBody   string
	}{
		{"/healthz", http.StatusOK, `"ok"`},
		{"/readyz", http.StatusOK, `"ready"`},
		{"/static/app.css", http.StatusOK, ""},
	}
	for _, tt := range tests {
		r := h.client().get(t, tt.path)
		if r.StatusCode != tt.wantStatus || !strings.Contains(r.Body, tt.wantBody) {
			t.Errorf("GET %s: got %d %q, want %d containing %q", tt.path, r.StatusCode, r.Body, tt.wantStatus, tt.wantBody)
		}
	}
	h.client().get(t, "/login")

	r := h.client().get(t, "/metrics")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: got %d, want 200", r.StatusCode)
	}
	for _, re := range []string{
		`(?m)^portal_echo_requests_total\{[^}]*code="200"[^}]*url="/healthz"[^}]*\} 1$`,
		`(?m)^portal_echo_requests_total\{[^}]*url="/login"[^}]*\} 1$`,
		`(?m)^portal_echo_request_duration_seconds_bucket\{`,
		`(?m)^go_goroutines \d+`,
	} {
		if !regexp.MustCompile(re).MatchString(r.Body) {
			t.Errorf("GET /metrics: no line matches %s", re)
		}
	}
	// The label is the route, not the raw path, so ids do not explode it.
	if strings.Contains(r.Body, `url="/metrics"`) {
		t.Error("GET /metrics counts itself")
	}

	if err := h.app.DB.Close(); err != nil {
		t.Fatal(err)
	}
	r = h.client().get(t, "/readyz")
	if r.StatusCode != http.StatusServiceUnavailable || !strings.Contains(r.Body, "database") {
		t.Errorf("GET /readyz with the database closed: got %d %q, want 503 naming the database", r.StatusCode, r.Body)
	}
	if r := h.client().get(t, "/healthz"); r.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz with the database closed: got %d, want 200 (the process is up)", r.StatusCode)
	}
}

// TestMetricsLabelIsRoute: requests to /access/staff/1 and /access/staff/2
// count under one route label.
func TestMetricsLabelIsRoute(t *testing.T) {
	h := newHarness(t)
	c := h.client()
	c.get(t, "/access/staff/1")
	c.get(t, "/access/staff/2")
	c.get(t, "/no-such-page-1")
	c.get(t, "/no-such-page-2")
	r := h.client().get(t, "/metrics")
	// Unknown paths and client-chosen Host headers must not mint series.
	if strings.Contains(r.Body, "no-such-page") || strings.Contains(r.Body, `host="127.0.0.1`) {
		t.Errorf("metrics carry client-chosen labels:\n%s", grep(r.Body, "portal_echo_requests_total"))
	}
	if !regexp.MustCompile(`(?m)^portal_echo_requests_total\{[^}]*url="/access/staff/:id"[^}]*\} 2$`).MatchString(r.Body) {
		t.Errorf("want one series for /access/staff/:id counting 2 requests; got:\n%s", grep(r.Body, "portal_echo_requests_total"))
	}
}

func grep(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestStylesheets: every stylesheet a page links is served from /static.
func TestStylesheets(t *testing.T) {
	h := newHarness(t)
	for _, name := range []string{"app", "activity", "billing", "blueprints", "inventory"} {
		r := h.client().get(t, "/static/"+name+".css")
		if r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/css") || len(r.Body) < 100 {
			t.Errorf("GET /static/%s.css: %d %q (%d bytes), want a stylesheet", name, r.StatusCode, r.Header.Get("Content-Type"), len(r.Body))
		}
	}
}

// TestMetricsMethodLabel: the method label comes from a fixed set, so
// invented methods cannot mint series.
func TestMetricsMethodLabel(t *testing.T) {
	h := newHarness(t)
	for i := range 20 {
		h.client().do(t, "PROBE"+itoa(int64(i)), "/login", nil, nil)
	}
	h.client().do(t, http.MethodDelete, "/login", nil, nil)
	r := h.client().get(t, "/metrics")
	lines := grep(r.Body, "portal_echo_requests_total{")
	if strings.Contains(lines, "PROBE") {
		t.Errorf("metrics carry client-chosen methods:\n%s", lines)
	}
	if !regexp.MustCompile(`(?m)^portal_echo_requests_total\{[^}]*method="OTHER"[^}]*url="/login"[^}]*\} 20$`).MatchString(r.Body) {
		t.Errorf("want the 20 invented methods counted under method=\"OTHER\"; got:\n%s", lines)
	}
	if !strings.Contains(lines, `method="DELETE"`) {
		t.Errorf("want DELETE kept as its own label; got:\n%s", lines)
	}
}
