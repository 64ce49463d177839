package activity

// SetTextPlans changes the match counts that choose how Text filters are
// searched (see plan), so that small test data runs every plan, and
// returns a func that restores them.
func SetTextPlans(rowsMax, scanFrom, scanShare int) (restore func()) {
	r, f, sh := textRowsMax, textScanFrom, textScanShare
	textRowsMax, textScanFrom, textScanShare = rowsMax, scanFrom, scanShare
	return func() { textRowsMax, textScanFrom, textScanShare = r, f, sh }
}
