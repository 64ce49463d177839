package billing

import (
	"strconv"
	"strings"
)

// Money is an amount in a currency's minor units (cents for USD), with the
// currency as Stripe writes it (lower-case ISO 4217). Amounts in different
// currencies are never added together.
type Money struct {
	Amount   int64
	Currency string
}

// zeroDecimal and threeDecimal list the currencies whose minor unit is not
// a hundredth, as Stripe documents them.
var (
	zeroDecimal  = "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf"
	threeDecimal = "bhd jod kwd omr tnd"
)

// Exponent returns the number of decimal places of currency's minor unit.
func Exponent(currency string) int {
	c := strings.ToLower(currency)
	switch {
	case len(c) == 3 && strings.Contains(zeroDecimal, c):
		return 0
	case len(c) == 3 && strings.Contains(threeDecimal, c):
		return 3
	}
	return 2
}

// Decimal writes the amount in major units without grouping, e.g.
// "-1234.50", as exports carry it.
func (m Money) Decimal() string { return format(m.Amount, Exponent(m.Currency), false) }

// Display writes the amount in major units with thousands separators and
// the upper-case currency, e.g. "1,234.50 USD".
func (m Money) Display() string {
	return format(m.Amount, Exponent(m.Currency), true) + " " + strings.ToUpper(m.Currency)
}

// Plain is Display without the currency, for tables whose heading names it.
func (m Money) Plain() string { return format(m.Amount, Exponent(m.Currency), true) }

func format(amount int64, exp int, group bool) string {
	neg := amount < 0
	u := uint64(amount)
	if neg {
		u = uint64(-amount)
	}
	digits := strconv.FormatUint(u, 10)
	for len(digits) <= exp {
		digits = "0" + digits
	}
	whole, frac := digits[:len(digits)-exp], digits[len(digits)-exp:]
	if group && len(whole) > 3 {
		var b strings.Builder
		lead := len(whole) % 3
		if lead > 0 {
			b.WriteString(whole[:lead])
		}
		for i := lead; i < len(whole); i += 3 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(whole[i : i+3])
		}
		whole = b.String()
	}
	out := whole
	if exp > 0 {
		out += "." + frac
	}
	if neg {
		out = "-" + out
	}
	return out
}
