package activity

// SetTextPlans changes the match counts that choose how Text filters are
// searched (see plan), so that small test data runs every plan, and
// returns a func that restores them.
func SetTextPlans(rowsMax, eachFrom int) (restore func()) {
	r, e := textRowsMax, textEachFrom
	textRowsMax, textEachFrom = rowsMax, eachFrom
	return func() { textRowsMax, textEachFrom = r, e }
}
