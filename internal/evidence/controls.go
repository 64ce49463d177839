package evidence

// controlDef is a control the pack checks, with the provision it answers
// to in each jurisdiction: HIPAA's Security Rule (45 CFR 164.3xx) in the
// US, GDPR Art. 32 (security of processing) and Art. 44-49 (transfers) in
// the EU, Singapore's PDPA s24 (protection) and s26 (transfers) in APAC.
type controlDef struct {
	id, area, name string
	cite           map[string]string
}

var (
	ctlEncryption = controlDef{"encryption-at-rest", "Encryption", "Every store of data is encrypted at rest with a customer-managed KMS key",
		map[string]string{"us": "45 CFR 164.312(a)(2)(iv)", "eu": "GDPR Art. 32(1)(a)", "apac": "PDPA s24"}}
	ctlTrail = controlDef{"audit-trail", "CloudTrail", "The trail is logging, with log file validation",
		map[string]string{"us": "45 CFR 164.312(b)", "eu": "GDPR Art. 32(1)(d)", "apac": "PDPA s24"}}
	ctlBackups = controlDef{"backups", "Backups", "Database backups are retained and buckets keep object versions",
		map[string]string{"us": "45 CFR 164.308(a)(7)(ii)(A)", "eu": "GDPR Art. 32(1)(c)", "apac": "PDPA s24"}}
	ctlPublic = controlDef{"public-access", "Access control", "Every bucket blocks public access",
		map[string]string{"us": "45 CFR 164.312(a)(1)", "eu": "GDPR Art. 32(1)(b)", "apac": "PDPA s24"}}
	ctlGuardrails = controlDef{"guardrails", "Blueprint guardrails", "The guardrails of the blueprint version in force pass",
		map[string]string{"us": "45 CFR 164.308(a)(1)(ii)(B)", "eu": "GDPR Art. 32(1)", "apac": "PDPA s24"}}
	ctlResidency = controlDef{"data-residency", "Residency and transfers", "Nothing that may hold patient data is outside the jurisdiction's regions",
		map[string]string{"us": "45 CFR 164.308(b)(1)", "eu": "GDPR Art. 44-49", "apac": "PDPA s26"}}
	ctlChanges = controlDef{"change-approval", "Change management", "Every change to prod was approved by someone other than its author and verified",
		map[string]string{"us": "45 CFR 164.312(c)(1)", "eu": "GDPR Art. 32(1)(b)", "apac": "PDPA s24"}}
	ctlTwoFactor = controlDef{"two-factor", "People", "Staff sign in with a second factor",
		map[string]string{"us": "45 CFR 164.312(d)", "eu": "GDPR Art. 32(1)(b)", "apac": "PDPA s24"}}
	ctlReview = controlDef{"activity-review", "Activity review", "Sensitive AWS events are recorded and reviewed",
		map[string]string{"us": "45 CFR 164.308(a)(1)(ii)(D)", "eu": "GDPR Art. 32(1)(d)", "apac": "PDPA s24"}}
	ctlChain = controlDef{"audit-chain", "Portal", "The portal's audit trail is intact (hash chain)",
		map[string]string{"us": "45 CFR 164.312(c)(1)", "eu": "GDPR Art. 32(1)(b)", "apac": "PDPA s24"}}
	ctlLogs = controlDef{"log-integrity", "CloudTrail", "CloudTrail log file integrity validation passes",
		map[string]string{"us": "45 CFR 164.312(c)(2)", "eu": "GDPR Art. 32(1)(d)", "apac": "PDPA s24"}}
)

// control starts control def for jurisdiction j (and stack, "" for one of
// the whole jurisdiction or the portal), unknown until checked.
func (d controlDef) control(j, stack string) Control {
	return Control{ID: d.id, Area: d.area, Name: d.name, Citation: d.cite[j], Stack: stack, Status: Unknown}
}

// add appends a line; a failing line makes the control fail.
func (c *Control) add(l Line) {
	c.Lines = append(c.Lines, l)
}

// fail appends a failing line and fails the control.
func (c *Control) fail(l Line) {
	l.Failing = true
	c.Status = Fail
	c.Lines = append(c.Lines, l)
}

// unknown appends a line saying what could not be checked; the control
// stays unknown unless it already failed.
func (c *Control) unknown(l Line) {
	l.Failing = true
	if c.Status != Fail {
		c.Status = Unknown
	}
	c.Lines = append(c.Lines, l)
}
