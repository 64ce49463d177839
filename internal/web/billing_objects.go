package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/internal/billing"
	"portal/web/templates"
)

var regionSources = map[string]string{
	"charge": "the charge's region metadata", "payment_intent": "the payment intent's region metadata",
	"customer": "the customer's region metadata", "": "no region metadata on the payment or the customer",
}

func (s *Server) billingCharge(c echo.Context) error {
	ch, err := s.deps.Billing.Charge(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	view := templates.ChargeView{ID: ch.ID, StripeURL: stripeDashboardURL(s.deps.Billing, "payments", ch.ID)}
	if view.Chrome, err = s.billingChrome(c, "transactions"); err != nil {
		return err
	}
	customer := templates.Fact{Label: "Customer", Value: "—"}
	if ch.CustomerID != "" {
		customer = templates.Fact{Label: "Customer", Value: ch.CustomerID, Href: "/billing/customers/" + url.PathEscape(ch.CustomerID), TestID: "charge-customer"}
	}
	view.Facts = []templates.Fact{
		{Label: "Amount", Value: ch.Amount.Display(), TestID: "charge-amount"},
		{Label: "Refunded", Value: ch.Refunded.Display()},
		{Label: "Status", Value: ch.Status + map[bool]string{true: ", disputed", false: ""}[ch.Disputed]},
		{Label: "Created", Value: ch.Created.Format("2006-01-02 15:04:05 UTC")},
		customer,
		{Label: "Payment intent", Value: orDash(ch.PaymentIntentID)},
		{Label: "Jurisdiction", Value: billing.JurisdictionLabel(ch.Jurisdiction) + ", from " + regionSources[ch.RegionSource], TestID: "charge-jurisdiction"},
		{Label: "Description", Value: orDash(ch.Description)},
	}
	for _, t := range ch.Transactions {
		view.Transactions = append(view.Transactions, txLine(t))
	}
	for _, r := range ch.Refunds {
		view.Refunds = append(view.Refunds, templates.RefundLine{ID: r.ID, Status: r.Status, Reason: r.Reason, Amount: r.Amount.Display(), Created: r.Created,
			Transaction: txLink(r.BalanceTransactionID)})
	}
	for _, d := range ch.Disputes {
		view.Disputes = append(view.Disputes, templates.RefundLine{ID: d.ID, Status: d.Status, Reason: d.Reason, Amount: d.Amount.Display(), Created: d.Created})
	}
	return s.render(c, http.StatusOK, templates.ChargeDetail(s.page(c, "Charge", "billing"), view))
}

func txLink(id string) templates.Link {
	if id == "" {
		return templates.Link{}
	}
	return templates.Link{Text: id, Href: "/billing/transactions/" + url.PathEscape(id)}
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func (s *Server) billingCustomer(c echo.Context) error {
	q := c.QueryParams()
	var v apperr.Validation
	offset := offsetParam(q, &v)
	if err := v.Err(); err != nil {
		return err
	}
	cu, err := s.deps.Billing.Customer(c.Request().Context(), c.Param("id"), offset)
	if err != nil {
		return err
	}
	view := templates.CustomerView{ID: cu.ID, StripeURL: stripeDashboardURL(s.deps.Billing, "customers", cu.ID)}
	if view.Chrome, err = s.billingChrome(c, "transactions"); err != nil {
		return err
	}
	region := "none (its charges count as unattributed unless the payment carries one)"
	if cu.Jurisdiction != "" {
		region = billing.JurisdictionLabel(cu.Jurisdiction)
	}
	view.Facts = []templates.Fact{
		{Label: "Stripe id", Value: cu.ID},
		{Label: "Region metadata", Value: region, TestID: "customer-region"},
		{Label: "Created", Value: cu.Created.Format("2006-01-02")},
	}
	if cu.Deleted {
		view.Facts = append(view.Facts, templates.Fact{Label: "Deleted", Value: "yes, in Stripe"})
	}
	for _, t := range cu.Totals {
		view.Totals = append(view.Totals, templates.Fact{Label: strings.ToUpper(t.Currency),
			Value: strconv.FormatInt(t.Count, 10) + " charges, " + t.Amount.Display() + ", of which " + t.Refunded.Display() + " refunded"})
	}
	for _, ch := range cu.Charges {
		view.Charges = append(view.Charges, templates.ChargeLine{ID: ch.ID, Href: "/billing/charges/" + url.PathEscape(ch.ID),
			Amount: ch.Amount.Display(), Refunded: ch.Refunded.Display(), Status: ch.Status, Jurisdiction: billing.JurisdictionLabel(ch.Jurisdiction),
			Created: ch.Created, Disputed: ch.Disputed})
	}
	path := "/billing/customers/" + url.PathEscape(cu.ID)
	view.PrevURL, view.NextURL = pageLinks(path, q, offset, 50, cu.MoreCharges)
	return s.render(c, http.StatusOK, templates.CustomerDetail(s.page(c, "Customer", "billing"), view))
}
