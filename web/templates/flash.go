package templates

// flashClass is the style of a flash message of kind k; an unknown kind
// reads as a success, as every flash did before kinds.
func flashClass(k FlashKind) string {
	switch k {
	case FlashError:
		return "flash flash-error"
	case FlashWarning:
		return "flash flash-warn"
	}
	return "flash flash-ok"
}

// flashRole makes a failure an alert, which screen readers announce at
// once; other messages are polite status updates.
func flashRole(k FlashKind) string {
	if k == FlashError {
		return "alert"
	}
	return "status"
}
