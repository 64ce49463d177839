package web_test

import (
	"net/http"
	"strings"
	"testing"

	"portal/internal/staff"
)

// TestRoutingExplorer answers for patients in Germany, Texas and Singapore
// with and without their home region healthy, from the shipped blueprints,
// and refuses what it does not know.
func TestRoutingExplorer(t *testing.T) {
	h := newHarness(t)
	c, _ := h.signedIn(t, staff.Compliance)
	cases := []struct {
		query, answer, chain string
	}{
		{"country=DE", "eu-central-1", "origin_eu"},
		{"country=DE&down=prod-eu:health", "eu-west-1", "failover: PRIMARY origin is unhealthy, SECONDARY origin_standby answers"},
		{"country=DE&down=prod-eu:health&down=prod-eu:standby_health", "maintenance page", "error page"},
		{"country=US&state=TX", "us-east-1", "origin_us matches country US"},
		{"country=US&state=TX&down=prod-us:health", "us-east-2", "origin_standby"},
		{"country=SG", "ap-southeast-1", "origin_apac matches country SG"},
		{"country=SG&down=prod-apac:health", "maintenance page", "/maintenance.html from the assets bucket"},
		{"country=BR", "eu-central-1", "origin_default is the default record"},
	}
	for _, tc := range cases {
		r := c.get(t, "/routing?env=prod&"+tc.query)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d\n%s", tc.query, r.StatusCode, r.Body)
		}
		ans, _ := r.TestID(t, "routing-answer")
		chain, _ := r.TestID(t, "routing-chain")
		if !strings.Contains(ans, tc.answer) || !strings.Contains(chain, tc.chain) {
			t.Errorf("%s: answer %q, chain %q; want %q through %q", tc.query, ans, chain, tc.answer, tc.chain)
		}
		if strings.Contains(ans, "us-") && strings.Contains(tc.query, "DE") || strings.Contains(ans, "eu-") && strings.Contains(tc.query, "TX") {
			t.Errorf("%s: answered outside the patient's jurisdiction: %q", tc.query, ans)
		}
	}
	glance, _ := c.get(t, "/routing").TestID(t, "routing-glance")
	for _, want := range []string{"Texas, United States", "us-east-2 (prod-us)", "Germany", "eu-west-1 (prod-eu)", "Singapore", "maintenance page", "Brazil"} {
		if !strings.Contains(glance, want) {
			t.Errorf("the at-a-glance table lacks %q:\n%s", want, glance)
		}
	}
	for _, bad := range []string{"country=XX", "country=DE&down=prod-eu:nothing", "country=DE&state=TX", "env=staging"} {
		if r := c.get(t, "/routing?"+bad); r.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", bad, r.StatusCode)
		}
	}
}
