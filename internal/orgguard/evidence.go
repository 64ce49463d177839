package orgguard

import (
	"context"
	"fmt"

	"portal/internal/activity"
	"portal/internal/engine"
	"portal/internal/regions"
)

// Controls are the evidence report's controls of the preventive layer for
// jurisdiction: the residency policy and the audit policy, each passing
// when AWS Organizations has the portal's document attached to the root.
func (s *Service) Controls(ctx context.Context, jurisdiction string) []activity.Control {
	j, _ := regions.JurisdictionByID(jurisdiction)
	res := activity.Control{Area: "AWS Organizations", Name: fmt.Sprintf("AWS refuses regions outside %v to principals acting for %s (service control policy)", j.AllowedRegions, j.ID),
		Citation: j.Cite(residencySection(j.ID)), Status: activity.Unknown}
	aud := activity.Control{Area: "AWS Organizations", Name: "AWS refuses stopping or deleting a trail and deleting prod KMS keys (service control policy)", Status: activity.Unknown}
	if !s.Configured() {
		res.Evidence = []string{"no management account is configured"}
		aud.Evidence = res.Evidence
		return []activity.Control{res, aud}
	}
	st, err := s.Status(ctx)
	if err != nil {
		res.Evidence = []string{"could not read AWS Organizations: " + engine.Explain(err)}
		aud.Evidence = res.Evidence
		return []activity.Control{res, aud}
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
			c.Status, c.Evidence = activity.Fail, []string{p.Name + " does not exist in the organization"}
		case !p.AttachedToRoot:
			c.Status, c.Evidence = activity.Fail, []string{p.Name + " (" + p.ID + ") is not attached to the organization's root"}
		case !p.Current:
			c.Status, c.Evidence = activity.Fail, []string{p.Name + " (" + p.ID + ") differs from the portal's document"}
		default:
			c.Status, c.Evidence = activity.Pass, []string{p.Name + " (" + p.ID + ") attached to the organization's root, content as reviewed"}
		}
	}
	return []activity.Control{res, aud}
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
