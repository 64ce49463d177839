// Package stripefixture is a Stripe-shaped HTTP server over a generated,
// deterministic dataset: customers, payment intents, charges, refunds,
// disputes, payouts and balance transactions across several currencies and
// regions, with one payout that does not reconcile. stripe-mock answers
// every list with one object, so sync, pagination, filters and
// reconciliation are tested against this server instead; it speaks only
// the subset of the API the portal uses (list with limit, starting_after,
// created ranges, payout and charge filters; retrieve by id).
package stripefixture

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"
)

// Options shape a generated dataset. The zero value gives a small one.
type Options struct {
	Seed          uint64
	Start         time.Time // first day (UTC); zero means 90 days before End
	End           time.Time // zero means now, to the second
	ChargesPerDay int       // zero means 20
	// Currencies by jurisdiction: us, eu and apac customers pay in these.
	// Zero means usd, eur and sgd.
	Currencies map[string]string
	// PayoutEveryDays is the payout schedule; zero means 7.
	PayoutEveryDays int
}

// Metadata is Stripe's string map.
type Metadata map[string]string

// Customer, PaymentIntent, Charge, Refund, Dispute, Payout and
// BalanceTransaction are the wire shapes the server writes (the fields the
// portal reads, and a few more so they look like Stripe's).
type Customer struct {
	ID       string   `json:"id"`
	Object   string   `json:"object"`
	Created  int64    `json:"created"`
	Livemode bool     `json:"livemode"`
	Metadata Metadata `json:"metadata"`
}

type PaymentIntent struct {
	ID           string   `json:"id"`
	Object       string   `json:"object"`
	Amount       int64    `json:"amount"`
	Currency     string   `json:"currency"`
	Created      int64    `json:"created"`
	Status       string   `json:"status"`
	Customer     string   `json:"customer"`
	LatestCharge string   `json:"latest_charge"`
	Livemode     bool     `json:"livemode"`
	Metadata     Metadata `json:"metadata"`
}

type Charge struct {
	ID                 string   `json:"id"`
	Object             string   `json:"object"`
	Amount             int64    `json:"amount"`
	AmountCaptured     int64    `json:"amount_captured"`
	AmountRefunded     int64    `json:"amount_refunded"`
	Currency           string   `json:"currency"`
	Created            int64    `json:"created"`
	Status             string   `json:"status"`
	Paid               bool     `json:"paid"`
	Captured           bool     `json:"captured"`
	Refunded           bool     `json:"refunded"`
	Disputed           bool     `json:"disputed"`
	Description        string   `json:"description"`
	Customer           string   `json:"customer"`
	PaymentIntent      string   `json:"payment_intent"`
	BalanceTransaction string   `json:"balance_transaction"`
	Livemode           bool     `json:"livemode"`
	Metadata           Metadata `json:"metadata"`
}

type Refund struct {
	ID                 string   `json:"id"`
	Object             string   `json:"object"`
	Amount             int64    `json:"amount"`
	Currency           string   `json:"currency"`
	Created            int64    `json:"created"`
	Status             string   `json:"status"`
	Reason             string   `json:"reason"`
	Charge             string   `json:"charge"`
	PaymentIntent      string   `json:"payment_intent"`
	BalanceTransaction string   `json:"balance_transaction"`
	Metadata           Metadata `json:"metadata"`
}

type Dispute struct {
	ID                  string                `json:"id"`
	Object              string                `json:"object"`
	Amount              int64                 `json:"amount"`
	Currency            string                `json:"currency"`
	Created             int64                 `json:"created"`
	Status              string                `json:"status"`
	Reason              string                `json:"reason"`
	Charge              string                `json:"charge"`
	PaymentIntent       string                `json:"payment_intent"`
	BalanceTransactions []*BalanceTransaction `json:"balance_transactions"`
	Livemode            bool                  `json:"livemode"`
	Metadata            Metadata              `json:"metadata"`
}

type Payout struct {
	ID                 string   `json:"id"`
	Object             string   `json:"object"`
	Amount             int64    `json:"amount"`
	Currency           string   `json:"currency"`
	Created            int64    `json:"created"`
	ArrivalDate        int64    `json:"arrival_date"`
	Status             string   `json:"status"`
	Automatic          bool     `json:"automatic"`
	Method             string   `json:"method"`
	Type               string   `json:"type"`
	Description        string   `json:"description"`
	BalanceTransaction string   `json:"balance_transaction"`
	Livemode           bool     `json:"livemode"`
	Metadata           Metadata `json:"metadata"`
}

type FeeDetail struct {
	Amount      int64  `json:"amount"`
	Currency    string `json:"currency"`
	Description string `json:"description"`
	Type        string `json:"type"`
}

type BalanceTransaction struct {
	ID                string      `json:"id"`
	Object            string      `json:"object"`
	Amount            int64       `json:"amount"`
	Fee               int64       `json:"fee"`
	Net               int64       `json:"net"`
	Currency          string      `json:"currency"`
	Created           int64       `json:"created"`
	AvailableOn       int64       `json:"available_on"`
	Type              string      `json:"type"`
	ReportingCategory string      `json:"reporting_category"`
	Status            string      `json:"status"`
	Source            string      `json:"source"`
	Description       string      `json:"description"`
	FeeDetails        []FeeDetail `json:"fee_details"`
}

// Dataset is a generated Stripe account.
type Dataset struct {
	Customers           []*Customer
	PaymentIntents      []*PaymentIntent
	Charges             []*Charge
	Refunds             []*Refund
	Disputes            []*Dispute
	Payouts             []*Payout
	BalanceTransactions []*BalanceTransaction
	// PayoutTransactions lists, per payout, the balance transactions its
	// listing returns (including the payout's own).
	PayoutTransactions map[string][]*BalanceTransaction
	// Unreconciled is the payout whose listing leaves out Missing, so its
	// transactions fall short of its amount by Missing's net.
	Unreconciled string
	Missing      *BalanceTransaction
}

const day = 24 * 60 * 60

// Generate builds a dataset. The same options give the same dataset.
func Generate(o Options) *Dataset {
	if o.End.IsZero() {
		o.End = time.Now().UTC().Truncate(time.Second)
	}
	if o.Start.IsZero() {
		o.Start = o.End.Add(-90 * day * time.Second)
	}
	if o.ChargesPerDay == 0 {
		o.ChargesPerDay = 20
	}
	if o.Currencies == nil {
		o.Currencies = map[string]string{"us": "usd", "eu": "eur", "apac": "sgd"}
	}
	if o.PayoutEveryDays == 0 {
		o.PayoutEveryDays = 7
	}
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	start, end := o.Start.UTC().Truncate(24*time.Hour).Unix(), o.End.Unix()
	days := int((end-start)/day) + 1
	d := &Dataset{PayoutTransactions: map[string][]*BalanceTransaction{}}
	seq := 0
	id := func(prefix string) string {
		seq++
		return fmt.Sprintf("%s_%016d", prefix, seq)
	}
	juris := []string{"us", "eu", "apac"}
	var currencies []string
	for _, j := range juris {
		currencies = append(currencies, o.Currencies[j])
	}

	type cust struct {
		c        *Customer
		region   string
		currency string
	}
	nCust := max(3, days*o.ChargesPerDay/6)
	custs := make([]cust, nCust)
	for i := range custs {
		region := juris[rng.IntN(3)]
		md := Metadata{}
		if rng.IntN(100) < 88 {
			md["region"] = region
		}
		c := &Customer{ID: id("cus"), Object: "customer", Created: start - int64(rng.IntN(365*day)), Metadata: md}
		custs[i] = cust{c: c, region: region, currency: o.Currencies[region]}
		d.Customers = append(d.Customers, c)
	}

	for dd := 0; dd < days; dd++ {
		for i := 0; i < o.ChargesPerDay; i++ {
			created := start + int64(dd*day) + int64(rng.IntN(day))
			if created > end {
				continue
			}
			cu := custs[rng.IntN(len(custs))]
			currency := cu.currency
			if rng.IntN(100) < 8 {
				currency = currencies[rng.IntN(len(currencies))]
			}
			amount := int64(500 + rng.IntN(40000))
			if currency == "jpy" {
				amount /= 100
			}
			pimd, chmd := Metadata{}, Metadata{}
			switch r := rng.IntN(100); {
			case r < 60:
				pimd["region"] = cu.region
			case r < 70:
				chmd["region"] = cu.region
			}
			pi := &PaymentIntent{ID: id("pi"), Object: "payment_intent", Amount: amount, Currency: currency, Created: created,
				Status: "succeeded", Customer: cu.c.ID, Metadata: pimd}
			fee := amount*29/1000 + 30
			bt := &BalanceTransaction{ID: id("txn"), Object: "balance_transaction", Amount: amount, Fee: fee, Net: amount - fee,
				Currency: currency, Created: created, AvailableOn: created + 2*day, Type: "charge", ReportingCategory: "charge",
				Status: "available", Description: "Consultation",
				FeeDetails: []FeeDetail{{Amount: fee, Currency: currency, Description: "Stripe processing fees", Type: "stripe_fee"}}}
			ch := &Charge{ID: id("ch"), Object: "charge", Amount: amount, AmountCaptured: amount, Currency: currency, Created: created,
				Status: "succeeded", Paid: true, Captured: true, Description: "Consultation", Customer: cu.c.ID, PaymentIntent: pi.ID,
				BalanceTransaction: bt.ID, Metadata: chmd}
			bt.Source, pi.LatestCharge = ch.ID, ch.ID
			d.PaymentIntents = append(d.PaymentIntents, pi)
			d.Charges = append(d.Charges, ch)
			d.BalanceTransactions = append(d.BalanceTransactions, bt)

			switch r := rng.IntN(1000); {
			case r < 60: // refund, full or partial
				rc := created + int64(1+rng.IntN(10))*day + int64(rng.IntN(day))
				if rc > end {
					break
				}
				ra := amount
				if rng.IntN(2) == 0 {
					ra = amount / 2
				}
				rbt := &BalanceTransaction{ID: id("txn"), Object: "balance_transaction", Amount: -ra, Net: -ra, Currency: currency,
					Created: rc, AvailableOn: rc, Type: "refund", ReportingCategory: "refund", Status: "available",
					Description: "REFUND FOR CHARGE (Consultation)", FeeDetails: []FeeDetail{}}
				re := &Refund{ID: id("re"), Object: "refund", Amount: ra, Currency: currency, Created: rc, Status: "succeeded",
					Reason: "requested_by_customer", Charge: ch.ID, PaymentIntent: pi.ID, BalanceTransaction: rbt.ID, Metadata: Metadata{}}
				rbt.Source = re.ID
				ch.AmountRefunded, ch.Refunded = ra, ra == amount
				d.Refunds = append(d.Refunds, re)
				d.BalanceTransactions = append(d.BalanceTransactions, rbt)
			case r < 72: // dispute, lost
				dc := created + int64(5+rng.IntN(25))*day + int64(rng.IntN(day))
				if dc > end {
					break
				}
				dbt := &BalanceTransaction{ID: id("txn"), Object: "balance_transaction", Amount: -amount, Fee: 1500, Net: -amount - 1500,
					Currency: currency, Created: dc, AvailableOn: dc, Type: "adjustment", ReportingCategory: "dispute", Status: "available",
					Description: "Chargeback withdrawal", FeeDetails: []FeeDetail{{Amount: 1500, Currency: currency, Description: "Dispute fee", Type: "stripe_fee"}}}
				dp := &Dispute{ID: id("dp"), Object: "dispute", Amount: amount, Currency: currency, Created: dc, Status: "lost",
					Reason: "fraudulent", Charge: ch.ID, PaymentIntent: pi.ID, BalanceTransactions: []*BalanceTransaction{dbt}, Metadata: Metadata{}}
				dbt.Source = dp.ID
				ch.Disputed = true
				d.Disputes = append(d.Disputes, dp)
				d.BalanceTransactions = append(d.BalanceTransactions, dbt)
			}
		}
	}

	// Payouts: every PayoutEveryDays, per currency, of everything
	// available by then and not yet paid out.
	sort.Slice(d.BalanceTransactions, func(i, j int) bool {
		return d.BalanceTransactions[i].AvailableOn < d.BalanceTransactions[j].AvailableOn
	})
	next := map[string]int{}
	byCurrency := map[string][]*BalanceTransaction{}
	for _, bt := range d.BalanceTransactions {
		byCurrency[bt.Currency] = append(byCurrency[bt.Currency], bt)
	}
	var payoutBTs []*BalanceTransaction
	for p := start + int64(o.PayoutEveryDays*day); p <= end; p += int64(o.PayoutEveryDays * day) {
		for _, cur := range currencies {
			list := byCurrency[cur]
			var incl []*BalanceTransaction
			var sum int64
			i := next[cur]
			for ; i < len(list) && list[i].AvailableOn <= p; i++ {
				incl = append(incl, list[i])
				sum += list[i].Net
			}
			if sum <= 0 {
				continue
			}
			next[cur] = i
			status, arrival := "paid", p+2*day
			if arrival > end {
				status = "in_transit"
			}
			pbt := &BalanceTransaction{ID: id("txn"), Object: "balance_transaction", Amount: -sum, Net: -sum, Currency: cur,
				Created: p, AvailableOn: p, Type: "payout", ReportingCategory: "payout", Status: "available",
				Description: "STRIPE PAYOUT", FeeDetails: []FeeDetail{}}
			po := &Payout{ID: id("po"), Object: "payout", Amount: sum, Currency: cur, Created: p, ArrivalDate: arrival, Status: status,
				Automatic: true, Method: "standard", Type: "bank_account", Description: "STRIPE PAYOUT", BalanceTransaction: pbt.ID, Metadata: Metadata{}}
			pbt.Source = po.ID
			payoutBTs = append(payoutBTs, pbt)
			d.Payouts = append(d.Payouts, po)
			d.PayoutTransactions[po.ID] = append(incl, pbt)
		}
	}
	d.BalanceTransactions = append(d.BalanceTransactions, payoutBTs...)

	// One paid payout's listing leaves out a charge: it does not reconcile.
	for i := len(d.Payouts) / 2; i < len(d.Payouts); i++ {
		po := d.Payouts[i]
		txs := d.PayoutTransactions[po.ID]
		if po.Status != "paid" || len(txs) < 3 {
			continue
		}
		for j, bt := range txs {
			if bt.Type == "charge" {
				d.Unreconciled, d.Missing = po.ID, bt
				d.PayoutTransactions[po.ID] = append(txs[:j:j], txs[j+1:]...)
				break
			}
		}
		break
	}
	return d
}
