package analysis

import (
	"fmt"
	"slices"
	"strings"
)

// certNames returns the names a certificate covers.
func (a *analyzer) certNames(c res) []string {
	names := []string{a.dnsName(c.st, c.str("domain"))}
	for _, n := range c.strs("alternative_names") {
		names = append(names, a.dnsName(c.st, n))
	}
	return names
}

func coveredBy(names []string, host string) bool {
	return slices.ContainsFunc(names, func(p string) bool { return covers(p, host) })
}

// reaches returns every ALB a name can lead to, through any record of its
// record set and any alias chain.
func (a *analyzer) reaches(host string, seen map[string]bool) []res {
	if seen[host] {
		return nil
	}
	seen[host] = true
	var out []res
	for _, r := range a.recordsNamed(host) {
		t := r.get("alias.target")
		if tr, attr, ok := a.deref(r.st, t); ok && tr.ok() {
			switch {
			case tr.typ() == "alb":
				out = append(out, tr)
				continue
			case tr.typ() == "route53_record" && (attr == "fqdn" || attr == "name"):
				out = append(out, a.reaches(a.dnsName(tr.st, tr.str("name")), seen)...)
				continue
			}
		}
		if s, ok := t.(string); ok && !strings.Contains(s, "${ref.") {
			out = append(out, a.reaches(a.dnsName(r.st, s), seen)...)
		}
	}
	return out
}

// tls checks certificates and zone delegation.
func (a *analyzer) tls() {
	// Names clients use to reach each load balancer: records aliased to it
	// directly, and CloudFront origins whose name leads to it.
	type use struct{ host, why string }
	uses := map[res][]use{}
	for _, s := range a.stacks {
		for _, r := range ofType(s, "route53_record") {
			if t, ok := a.target(s, r.get("alias.target")); ok && t.typ() == "alb" {
				uses[t] = append(uses[t], use{a.dnsName(s, r.str("name")), "record " + r.id + " (" + s.StackID() + ") is an alias to it"})
			}
		}
		for _, cdn := range ofType(s, "cloudfront_distribution") {
			for _, o := range cdn.list("origins") {
				m, _ := o.(map[string]any)
				d, _ := m["domain"].(string)
				if d == "" {
					continue
				}
				host := a.dnsName(s, d)
				for _, alb := range a.reaches(host, map[string]bool{}) {
					uses[alb] = append(uses[alb], use{host, "CloudFront " + cdn.id + " connects to it as its origin " + fmt.Sprint(m["id"]) + " (TLS with that name)"})
				}
			}
		}
	}
	for _, s := range a.jurisdictionStacks() {
		for _, alb := range ofType(s, "alb") {
			l, ok := a.listenerOf(alb)
			if !ok || l.str("protocol") != "HTTPS" {
				continue
			}
			c := Check{Rule: RuleTLS, Stack: s.StackID(), Title: fmt.Sprintf("Certificate of %s covers every name that reaches it", alb.id)}
			cert, ok := a.target(l.st, l.get("certificate"))
			if !ok || cert.typ() != "acm_certificate" {
				c.Hops = append(c.Hops, fail("clients", l.id, l, "certificate", "the HTTPS listener names no certificate of the stack", "set certificate to an acm_certificate's arn"))
				a.add(c)
				continue
			}
			if cert.region() != alb.region() {
				c.Hops = append(c.Hops, fail(cert.id, alb.id, l, "certificate", fmt.Sprintf("certificate %s is in %s but the load balancer in %s: ACM certificates are regional", cert.id, cert.region(), alb.region()), "use a certificate of "+alb.region()))
			}
			names := a.certNames(cert)
			seen := map[string]bool{}
			for _, u := range uses[alb] {
				if seen[u.host] {
					continue
				}
				seen[u.host] = true
				if coveredBy(names, u.host) {
					c.Hops = append(c.Hops, pass(u.host, alb.id, u.why+"; "+cert.id+" covers it"))
				} else {
					c.Hops = append(c.Hops, fail(u.host, alb.id, cert, "alternative_names",
						fmt.Sprintf("%s, but %s covers only %s: the TLS handshake fails (CloudFront answers 502)", u.why, cert.id, strings.Join(names, ", ")),
						fmt.Sprintf("add %q to alternative_names of %s", u.host, cert.id)))
				}
			}
			if len(c.Hops) > 0 {
				a.add(c)
			}
		}
	}
	for _, s := range a.stacks {
		for _, cdn := range ofType(s, "cloudfront_distribution") {
			c := Check{Rule: RuleTLS, Stack: s.StackID(), Title: fmt.Sprintf("Certificate of CloudFront %s covers its aliases", cdn.id)}
			cert, ok := a.target(s, cdn.get("certificate"))
			if !ok {
				continue
			}
			if cert.region() != "us-east-1" {
				c.Hops = append(c.Hops, fail(cert.id, cdn.id, cert, "region", "CloudFront takes certificates from us-east-1 only; "+cert.id+" is in "+cert.region(), "request the certificate in us-east-1"))
			}
			names := a.certNames(cert)
			for _, al := range cdn.strs("aliases") {
				h := a.dnsName(s, al)
				if coveredBy(names, h) {
					c.Hops = append(c.Hops, pass(h, cdn.id, cert.id+" covers it"))
				} else {
					c.Hops = append(c.Hops, fail(h, cdn.id, cert, "alternative_names", fmt.Sprintf("%s covers only %s", cert.id, strings.Join(names, ", ")), fmt.Sprintf("add %q to the certificate", h)))
				}
			}
			a.add(c)
		}
	}
	// Validation: each certificate's names lie in its validation zone, and
	// the zone is delegated.
	for _, s := range a.stacks {
		for _, cert := range ofType(s, "acm_certificate") {
			c := Check{Rule: RuleTLS, Stack: s.StackID(), Title: fmt.Sprintf("ACM can validate %s", cert.id)}
			zone, ok := a.target(s, cert.get("validation_zone"))
			if z, _, isRef := a.deref(s, cert.get("validation_zone")); isRef && z.st == nil {
				continue // the zone is another stack's, not part of this analysis
			}
			if !ok || zone.typ() != "route53_zone" {
				c.Hops = append(c.Hops, fail(cert.id, "validation zone", cert, "validation_zone", "the certificate names no zone of the environment to validate in", "set validation_zone to ${layer.zone.zone_id}"))
				a.add(c)
				continue
			}
			zn := a.dnsName(zone.st, zone.str("name"))
			for _, n := range a.certNames(cert) {
				base := strings.TrimPrefix(n, "*.")
				if within(base, zn) {
					c.Hops = append(c.Hops, pass(n, "zone "+zn, "its validation record is written in "+zone.id+" ("+zone.st.StackID()+")"))
				} else {
					c.Hops = append(c.Hops, fail(n, "zone "+zn, cert, "alternative_names", fmt.Sprintf("%s is not under %s: ACM's validation record for it cannot be written there, and the certificate never issues", n, zn), "validate in a zone holding the name, or drop it"))
				}
			}
			c.Hops = append(c.Hops, a.delegation(zone))
			a.add(c)
		}
	}
}

// delegation says whether zone is delegated from its parent domain.
func (a *analyzer) delegation(zone res) Hop {
	zn := a.dnsName(zone.st, zone.str("name"))
	for _, s := range a.stacks {
		for _, d := range ofType(s, "dns_delegation") {
			if t, ok := a.target(s, d.get("zone")); !ok || t != zone {
				continue
			}
			parent := strings.TrimSuffix(strings.ToLower(d.str("parent_domain")), ".")
			if !within(zn, parent) || zn == parent {
				return fail(parent, zn, d, "parent_domain", fmt.Sprintf("%s is not under %s", zn, parent), "name the domain directly above "+zn)
			}
			switch d.str("status") { // as read from AWS and public DNS
			case "waiting":
				return fail(parent, zn, d, "", fmt.Sprintf("public DNS does not delegate %s yet: nobody on the internet resolves its names, and ACM cannot validate certificates in it", zn), "add the NS records the plan lists at "+parent)
			case "delegated", "in-account":
				return pass(parent, zn, d.id+": delegated ("+d.str("status")+")")
			case "unverified":
				return pass(parent, zn, d.id+": not verified: public DNS could not be asked from the portal (the sandbox has no internet); on AWS the certificates validate only once "+parent+" delegates "+zn)
			}
			inEstate := false
			for _, st := range a.stacks {
				for _, z := range ofType(st, "route53_zone") {
					if a.dnsName(st, z.str("name")) == parent {
						inEstate = true
					}
				}
			}
			if inEstate {
				return pass(parent, zn, d.id+" writes the NS records into the parent zone of this account")
			}
			h := pass(parent, zn, d.id+": "+parent+" is outside the estate; the plan lists the NS records to add there, and certificates validate once public DNS answers with them")
			return h
		}
	}
	return fail("parent domain", zn, zone, "", fmt.Sprintf("nothing delegates %s from its parent: public DNS never answers its names, so ACM never issues the certificates validated in it", zn),
		"add a dns_delegation for the zone naming its parent_domain")
}
