package orgguard

import (
	"context"
	"fmt"
	"strings"
	"time"

	"portal/internal/engine"
	"portal/internal/evidence"
	"portal/internal/regions"
)

// Controls are the evidence pack's controls of the preventive layer for
// jurisdiction: the residency policy and the audit policy, each passing
// when AWS Organizations has the portal's document attached to the root,
// and failing without a management account.
func (s *Service) Controls(ctx context.Context, jurisdiction string) []evidence.Control {
	j, _ := regions.JurisdictionByID(jurisdiction)
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	link := "/blueprints/guardrails/jurisdictions/" + j.ID
	res := evidence.Control{ID: "scp-residency", Area: "AWS Organizations", Name: fmt.Sprintf("AWS refuses regions outside %s to principals acting for the %s jurisdiction (service control policy)", strings.Join(j.AllowedRegions, ", "), strings.ToUpper(j.ID)),
		Citation: j.Cite(residencySection(j.ID)), Status: evidence.Unknown}
	aud := evidence.Control{ID: "scp-audit", Area: "AWS Organizations", Name: "AWS refuses stopping or deleting a trail and deleting prod KMS keys (service control policy)",
		Citation: j.Cite(auditSection(j.ID)), Status: evidence.Unknown}
	line := func(resource, finding string, failing bool) []evidence.Line {
		return []evidence.Line{{Resource: resource, Finding: finding, At: now, Link: link, Failing: failing}}
	}
	if !s.Configured() {
		// Nothing makes AWS refuse: the control is not in place.
		res.Status, aud.Status = evidence.Fail, evidence.Fail
		res.Lines = line("AWS Organizations", "no management account is configured (-management-account-id): AWS enforces nothing beyond the portal's own rules", true)
		aud.Lines = res.Lines
		return []evidence.Control{res, aud}
	}
	st, err := s.Status(ctx)
	if err != nil {
		res.Lines = line("AWS Organizations", "could not be read: "+engine.Explain(err), true)
		aud.Lines = res.Lines
		return []evidence.Control{res, aud}
	}
	for _, p := range st {
		c := &aud
		if p.Jurisdiction == jurisdiction {
			c = &res
		} else if p.Jurisdiction != "" {
			continue
		}
		switch {
		case p.ID == "":
			c.Status, c.Lines = evidence.Fail, line(p.Name, "does not exist in the organization", true)
		case !p.AttachedToRoot:
			c.Status, c.Lines = evidence.Fail, line(p.Name+" ("+p.ID+")", "is not attached to the organization's root", true)
		case !p.Current:
			c.Status, c.Lines = evidence.Fail, line(p.Name+" ("+p.ID+")", "differs from the portal's document", true)
		default:
			c.Status, c.Lines = evidence.Pass, line(p.Name+" ("+p.ID+")", "attached to the organization's root, content as reviewed", false)
		}
	}
	return []evidence.Control{res, aud}
}

// residencySection is the transfer rule each regime's residency rests on.
func residencySection(j string) string {
	switch j {
	case "eu":
		return "Art. 44"
	case "apac":
		return "s26"
	default:
		return "164.308(b)(1)"
	}
}

// auditSection is the audit-controls rule the trail's protection serves
// (the one the trail's own control cites).
func auditSection(j string) string {
	switch j {
	case "eu":
		return "Art. 32(1)(d)"
	case "apac":
		return "s24"
	default:
		return "164.312(b)"
	}
}
