// Package csvcell keeps text exported as CSV from being read as a formula
// when the file is opened in a spreadsheet ("CSV injection"). Exports whose
// cells can hold text from outside the portal (CloudTrail fields, AWS tag
// keys, Stripe descriptions) pass those cells through Text.
package csvcell

import "strings"

// triggers are the first characters that make Excel, LibreOffice and Google
// Sheets treat a cell as a formula (OWASP's list): = + - @, tab and
// carriage return.
const triggers = "=+-@\t\r"

// Text returns s so that a spreadsheet shows it as text: when s begins with
// a formula trigger it is prefixed with a single quote, which spreadsheets
// hide and treat as "this is text". Other text is returned as is, so
// ordinary values round-trip unchanged. Do not pass numbers that may be
// negative (a leading "-" would gain a quote); they are not text.
func Text(s string) string {
	if s != "" && strings.IndexByte(triggers, s[0]) >= 0 {
		return "'" + s
	}
	return s
}

// Row applies Text to every cell of a row of text cells, in place, and
// returns it.
func Row(cells []string) []string {
	for i, c := range cells {
		cells[i] = Text(c)
	}
	return cells
}
