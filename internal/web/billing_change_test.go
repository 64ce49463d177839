package web

import "testing"

// TestRevenueChange: a period's net against the one before, as a share and
// an amount; from zero there is no share to give.
func TestRevenueChange(t *testing.T) {
	for _, c := range []struct {
		before, now int64
		want        string
	}{
		{100000, 112500, "+12.5% (+125.00 EUR)"},
		{100000, 96000, "-4.0% (-40.00 EUR)"},
		{100000, 100000, "+0.0% (0.00 EUR)"},
		{0, 5000, "+50.00 EUR"},
		{-2000, 1000, "+150.0% (+30.00 EUR)"},
	} {
		if got := change(c.before, c.now, "eur"); got != c.want {
			t.Errorf("change(%d, %d) = %q, want %q", c.before, c.now, got, c.want)
		}
	}
}
