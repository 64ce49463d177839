package web

import (
	"net/url"

	"portal/internal/billing"
)

// stripeDashboardURL is where Stripe's dashboard shows object id of kind
// (payments for a charge, customers, payouts): under /test/ unless the
// portal reads Stripe with a live key, whose objects are live ones.
func stripeDashboardURL(b *billing.Service, kind, id string) string {
	if b == nil || id == "" {
		return ""
	}
	base := "https://dashboard.stripe.com/"
	if b.KeyMode() != "live" {
		base += "test/"
	}
	return base + kind + "/" + url.PathEscape(id)
}
