package templates

// WorksView is a plan's "will it work?" section: from the blueprint, or
// from AWS (the live re-check).
type WorksView struct {
	Live    bool
	Checks  []WorksCheck
	Failed  int
	Missing []string
	Note    string
	// Blocking is set when failures block the apply (prod).
	Blocking bool
}

// WorksCheck is one path or question with its hops.
type WorksCheck struct {
	Rule, Title string
	OK          bool
	Hops        []WorksHop
}

// WorksHop is one step of a check.
type WorksHop struct {
	From, To, Via, Problem, Fix, Resource, Stack string
	OK                                           bool
}

// worksRuleTitle names a rule for the reader.
func worksRuleTitle(rule string) string {
	switch rule {
	case "works-network":
		return "Network paths"
	case "works-keys":
		return "Key policies"
	case "works-tls-dns":
		return "Certificates and DNS"
	case "works-routing":
		return "Routing"
	}
	return rule
}

// WorksGroup is the checks of one rule.
type WorksGroup struct {
	Rule, Title string
	Checks      []WorksCheck
	Failed      int
}

// Groups returns the checks grouped by rule, in order.
func (w WorksView) Groups() []WorksGroup {
	var out []WorksGroup
	for _, rule := range []string{"works-network", "works-keys", "works-tls-dns", "works-routing"} {
		g := WorksGroup{Rule: rule, Title: worksRuleTitle(rule)}
		for _, c := range w.Checks {
			if c.Rule == rule {
				g.Checks = append(g.Checks, c)
				if !c.OK {
					g.Failed++
				}
			}
		}
		if len(g.Checks) > 0 {
			out = append(out, g)
		}
	}
	return out
}
