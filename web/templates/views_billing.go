package templates

import (
	"time"
)

// shortWhen is a table's compact UTC time, to the minute.
func shortWhen(t time.Time) string { return t.UTC().Format("2006-01-02 15:04") }

// BillingChrome is what every finance page shows above its content: the
// tabs, how fresh the data is, and whether it is sandbox data.
type BillingChrome struct {
	Tab         string // revenue, transactions, payouts, reconciliation, settings
	AsOf        time.Time
	LastWebhook time.Time
	Syncing     bool
	SyncPhase   string
	SyncObjects int64
	Sandbox     string
	Configured  bool
	CanSync     bool
}

// Option is a select option.
type Option struct {
	Value, Label string
	Selected     bool
}

// Link is a text with an optional address.
type Link struct {
	Text, Href string
}

// Figure is one money figure in a table, linking to the transactions
// behind it.
type Figure struct {
	Text     string
	Href     string
	Negative bool
	TestID   string
}

// RevenueLine is one row of a revenue table.
type RevenueLine struct {
	Label                               string
	Href                                string // the period or jurisdiction's transactions
	Gross, Refunds, Disputes, Fees, Net Figure
	Count                               int64
	// Change is the net against the period before, in a period table
	// ("+12.5% (+1,020.00 EUR)"); "—" for the first period or after a gap.
	Change string
}

// ChartBar is one period in a currency's chart; geometry is worked out by
// the handler (SVG user units).
type ChartBar struct {
	X, W           int
	GrossY, GrossH int
	NetY, NetH     int
	Title          string
	Label          string // axis label, "" to skip
	Href           string
}

// RevenueChart is a bar chart of gross and net per period.
type RevenueChart struct {
	Width, Height int
	Bars          []ChartBar
	MaxLabel      string
	BaseY         int
}

// CurrencyRevenueView is one currency's revenue section.
type CurrencyRevenueView struct {
	Currency       string // upper case
	Code           string // lower case, for test ids
	Rows           []RevenueLine
	Total          RevenueLine
	ByJurisdiction []RevenueLine
	Chart          RevenueChart
}

// RevenueView is the revenue page.
type RevenueView struct {
	Chrome        BillingChrome
	Period        string
	From, To      string
	Currency      string
	Jurisdiction  string
	Periods       []Option
	Currencies    []Option
	Jurisdictions []Option
	Errors        FormErrors
	Sections      []CurrencyRevenueView
	ExportURL     string
	RangeText     string
}

// TxLine is one balance transaction in a table.
type TxLine struct {
	ID, Href     string
	Created      time.Time
	Type         string
	Category     string
	Status       string
	Description  string
	Amount       Figure
	Fee          string
	Net          Figure
	Source       Link
	Customer     Link
	Jurisdiction string
	Payout       Link
}

// TotalLine sums a selection in one currency.
type TotalLine struct {
	Currency              string
	Count                 int64
	Amount, Fee, Net      string
	NetNegative, AmtNegat bool
}

// SortLink is a sortable column heading.
type SortLink struct {
	Label, Href string
	Current     string // "", "asc" or "desc"
}

// TxListView is the balance transactions page.
type TxListView struct {
	Chrome        BillingChrome
	Heading       string
	Currency      string
	Jurisdiction  string
	Category      string
	Payout        string
	Charge        string
	From, To      string
	Currencies    []Option
	Jurisdictions []Option
	Categories    []Option
	Errors        FormErrors
	Rows          []TxLine
	Totals        []TotalLine
	Sorts         []SortLink // created, amount, net
	NextURL       string
	PrevURL       string
	ExportURL     string
	PageText      string
}

// Fact is a labelled value on a detail page.
type Fact struct {
	Label, Value, Href, TestID string
}

// TxDetailView is one balance transaction.
type TxDetailView struct {
	Chrome BillingChrome
	ID     string
	Facts  []Fact
}

// RefundLine and DisputeLine are a charge's refunds and disputes.
type RefundLine struct {
	ID, Status, Reason, Amount string
	Created                    time.Time
	Transaction                Link
}

// ChargeView is one charge with everything behind it.
type ChargeView struct {
	// StripeURL opens the object in Stripe's dashboard.
	StripeURL    string
	Chrome       BillingChrome
	ID           string
	Facts        []Fact
	Refunds      []RefundLine
	Disputes     []RefundLine
	Transactions []TxLine
}

// ChargeLine is a charge in a customer's list.
type ChargeLine struct {
	ID, Href, Amount, Refunded, Status, Jurisdiction string
	Created                                          time.Time
	Disputed                                         bool
}

// CustomerView is one customer: an id and a region, and its charges.
type CustomerView struct {
	// StripeURL opens the object in Stripe's dashboard.
	StripeURL string
	Chrome    BillingChrome
	ID        string
	Facts     []Fact
	Totals    []Fact
	Charges   []ChargeLine
	NextURL   string
	PrevURL   string
}

// PayoutLine is one payout in a table.
type PayoutLine struct {
	ID, Href    string
	Created     time.Time
	Arrival     time.Time
	Status      string
	Amount      string
	TxCount     int64
	TxNet       string
	Difference  string
	State       string
	StateLabel  string
	StateClass  string
	Explanation string
}

// PayoutListView is the payouts page.
type PayoutListView struct {
	Chrome     BillingChrome
	Month      string
	Currency   string
	State      string
	Currencies []Option
	States     []Option
	Errors     FormErrors
	Rows       []PayoutLine
	Sorts      []SortLink
	NextURL    string
	PrevURL    string
	ExportURL  string
}

// CategoryLine is one category of a payout's transactions.
type CategoryLine struct {
	Category, Href   string
	Count            int64
	Amount, Fee, Net string
}

// PayoutView is one payout and its reconciliation.
type PayoutView struct {
	// Notes are what finance wrote about its reconciliation, oldest first;
	// CanNote offers the form, NoteError and Note keep a refused one.
	Notes     []PayoutNoteLine
	CanNote   bool
	NoteError string
	Note      string
	CSRF      string
	// StripeURL opens the object in Stripe's dashboard.
	StripeURL    string
	Chrome       BillingChrome
	Payout       PayoutLine
	Facts        []Fact
	Breakdown    []CategoryLine
	Unlinked     int64
	Transactions []TxLine
	MoreURL      string
	ExportURL    string
	TxCountText  string
}

// MonthLine is one month and currency of the reconciliation.
type MonthLine struct {
	Month, Currency                 string
	Payouts                         int
	Amount, TxNet, Difference       string
	Reconciled                      bool
	Summary                         string
	PayoutsHref, MismatchHref       string
	Mismatched                      int
	ExportHref, TransactionsCSVHref string
}

// ReconciliationView is the monthly reconciliation page.
type ReconciliationView struct {
	Chrome     BillingChrome
	Currency   string
	Currencies []Option
	Months     []MonthLine
	ExportURL  string
}

// SyncRunLine is one sync in the settings page's history.
type SyncRunLine struct {
	ID              int64
	Started         time.Time
	Finished        time.Time
	Trigger, Status string
	Phase, Error    string
	Objects         int64
}

// FailedEventLine is a webhook event that could not be processed.
type FailedEventLine struct {
	ID, Type, Object, Error string
	Attempts                int
}

// BillingSettingsView is the Stripe settings and sync page.
type BillingSettingsView struct {
	Chrome           BillingChrome
	KeySet           bool
	KeyMode          string
	KeyRestricted    bool
	KeyLastFour      string
	WebhookSecretSet bool
	WebhookURL       string
	APIURL           string
	SyncInterval     string
	NextRun          time.Time
	Runs             []SyncRunLine
	Events           struct{ Pending, Done, Ignored, Failed, Duplicates int }
	LastEvent        time.Time
	Failures         []FailedEventLine
}

// PayoutNoteLine is one note on a payout's reconciliation.
type PayoutNoteLine struct {
	Text   string
	Author ActorView
	At     time.Time
}
