package analysis

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"portal/internal/regions"
)

// Step is one record (or service) a patient's request passes on its way to
// an answer.
type Step struct {
	Stack    string `json:"stack"`
	Resource string `json:"resource"`
	// Name is the DNS name asked, or the service ("CloudFront").
	Name    string `json:"name"`
	Routing string `json:"routing"`
	// Choice says why this record answered.
	Choice string `json:"choice"`
	// Target is what it points at.
	Target string `json:"target"`
}

// Resolution is where a patient's request ends.
type Resolution struct {
	Location Location `json:"location"`
	Chain    []Step   `json:"chain"`
	// Region and Stack answer the request ("" when nothing does).
	Region string `json:"region,omitempty"`
	Stack  string `json:"stack,omitempty"`
	// Maintenance is set when CloudFront answers with the maintenance page.
	Maintenance bool   `json:"maintenance,omitempty"`
	Summary     string `json:"summary"`
}

// HealthCheck is a Route 53 health check of the environment and the load
// balancer it watches.
type HealthCheck struct {
	Key    string `json:"key"` // "stack:id"
	Stack  string `json:"stack"`
	ID     string `json:"id"`
	Host   string `json:"host"`
	Region string `json:"region"`
}

// HealthChecks returns the environment's health checks, by stack and id.
func HealthChecks(env string, stacks []Stack) []HealthCheck {
	a := newAnalyzer(env, stacks)
	var out []HealthCheck
	for _, s := range a.stacks {
		for _, hc := range ofType(s, "route53_health_check") {
			h := HealthCheck{Key: s.StackID() + ":" + hc.id, Stack: s.StackID(), ID: hc.id, Host: a.dnsName(s, hc.str("fqdn"))}
			if d, _ := a.resolveName(h.Host, nil, nil); d.alb.ok() {
				h.Region = d.alb.region()
			}
			out = append(out, h)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Route follows a patient at loc to the region that answers them, with the
// health checks named in down failing: from the patients' hostname through
// CloudFront and every routing record.
func Route(env string, stacks []Stack, loc Location, down map[string]bool) Resolution {
	a := newAnalyzer(env, stacks)
	return a.route(loc, down)
}

// dest is where a name leads.
type dest struct {
	alb      res
	cdn      res
	external string // a name no record of the environment answers
	none     bool   // no record answers the location
}

// recordsNamed returns every record of the environment for host.
func (a *analyzer) recordsNamed(host string) []res {
	if a.records == nil {
		a.records = map[string][]res{}
		for _, s := range a.stacks {
			for _, r := range ofType(s, "route53_record") {
				n := a.dnsName(s, r.str("name"))
				a.records[n] = append(a.records[n], r)
			}
		}
	}
	return a.records[host]
}

// healthCheckOf returns the key of a record's health check.
func (a *analyzer) healthCheckOf(r res) string {
	if hc, ok := a.target(r.st, r.get("health_check")); ok {
		return hc.st.StackID() + ":" + hc.id
	}
	return ""
}

// albHealthy reports whether no failing health check watches alb.
func (a *analyzer) albHealthy(alb res, down map[string]bool) bool {
	if len(down) == 0 {
		return true
	}
	for key := range down {
		st, id, _ := strings.Cut(key, ":")
		s := a.byID[st]
		if s == nil || s.ResourceType(id) != "route53_health_check" {
			continue
		}
		hc := res{s, id}
		if d, _ := a.resolveName(a.dnsName(s, hc.str("fqdn")), nil, nil); d.alb == alb {
			return false
		}
	}
	return true
}

// healthy reports whether Route 53 considers record r healthy: its health
// check passes and, when it evaluates its target's health, the target is.
func (a *analyzer) healthy(r res, loc *Location, down map[string]bool, depth int) bool {
	if k := a.healthCheckOf(r); k != "" && down[k] {
		return false
	}
	if depth > 8 || !r.boolean("alias.evaluate_target_health") {
		return true
	}
	d, _ := a.follow(r, loc, down, depth+1)
	switch {
	case d.alb.ok():
		return a.albHealthy(d.alb, down)
	case d.none:
		return false
	}
	return true
}

// follow returns where record r's alias leads.
func (a *analyzer) follow(r res, loc *Location, down map[string]bool, depth int) (dest, []Step) {
	t := r.get("alias.target")
	if tr, attr, ok := a.deref(r.st, t); ok && tr.ok() {
		switch tr.typ() {
		case "alb":
			return dest{alb: tr}, nil
		case "cloudfront_distribution":
			return dest{cdn: tr}, nil
		case "route53_record", "route53_zone":
			if attr == "fqdn" || attr == "name" {
				return a.resolve(a.dnsName(tr.st, tr.str("name")), loc, down, depth+1)
			}
		}
	}
	s, _ := t.(string)
	if strings.Contains(s, "${") && !strings.Contains(canon(r.st, s), ".fqdn}") && !strings.Contains(s, ".name}") {
		return dest{external: s}, nil
	}
	return a.resolve(a.dnsName(r.st, s), loc, down, depth+1)
}

func (a *analyzer) resolveName(host string, loc *Location, down map[string]bool) (dest, []Step) {
	return a.resolve(host, loc, down, 0)
}

// resolve answers host as Route 53 would for a query from loc (nil: no
// location, every geolocation's default) with the health checks in down
// failing.
func (a *analyzer) resolve(host string, loc *Location, down map[string]bool, depth int) (dest, []Step) {
	recs := a.recordsNamed(host)
	if len(recs) == 0 || depth > 10 {
		return dest{external: host}, nil
	}
	r, routing, choice := a.choose(recs, loc, down, depth)
	if !r.ok() {
		return dest{none: true}, []Step{{Name: host, Routing: routing, Choice: choice}}
	}
	step := Step{Stack: r.st.StackID(), Resource: r.id, Name: host, Routing: routing, Choice: choice}
	d, rest := a.follow(r, loc, down, depth)
	switch {
	case len(rest) > 0:
		step.Target = rest[0].Name
	case d.alb.ok():
		step.Target = "load balancer " + d.alb.name()
	case d.cdn.ok():
		step.Target = "CloudFront " + d.cdn.id
	case d.external != "":
		step.Target = d.external
	}
	return d, append([]Step{step}, rest...)
}

// choose picks the record of a record set that answers.
func (a *analyzer) choose(recs []res, loc *Location, down map[string]bool, depth int) (res, string, string) {
	routing := recs[0].str("routing")
	switch routing {
	case "geolocation":
		return a.chooseGeo(recs, loc, down, depth)
	case "failover":
		var primary, secondary res
		for _, r := range recs {
			switch r.str("failover") {
			case "PRIMARY":
				primary = r
			case "SECONDARY":
				secondary = r
			}
		}
		if primary.ok() && a.healthy(primary, loc, down, depth) {
			return primary, routing, "failover: PRIMARY " + primary.id + " is healthy"
		}
		if secondary.ok() && a.healthy(secondary, loc, down, depth) {
			return secondary, routing, "failover: PRIMARY " + primary.id + " is unhealthy, SECONDARY " + secondary.id + " answers"
		}
		if primary.ok() {
			if secondary.ok() {
				return primary, routing, "failover: PRIMARY and SECONDARY are both unhealthy; Route 53 answers PRIMARY " + primary.id
			}
			return primary, routing, "failover: PRIMARY " + primary.id + " is unhealthy and there is no SECONDARY; Route 53 answers it anyway"
		}
		return secondary, routing, "failover: only SECONDARY " + secondary.id
	case "latency":
		for _, r := range recs {
			if a.healthy(r, loc, down, depth) {
				return r, routing, "latency: the nearest healthy region, " + r.str("latency_region")
			}
		}
		return recs[0], routing, "latency: no healthy region; Route 53 answers " + recs[0].id
	}
	return recs[0], "simple", "the only record"
}

// geoMatch says how specifically a geolocation record matches loc: 4 a
// subdivision, 3 a country, 2 a continent, 1 the default, 0 not at all.
func geoMatch(r res, loc *Location) int {
	g, _ := r.get("geolocation").(map[string]any)
	country, _ := g["country"].(string)
	continent, _ := g["continent"].(string)
	sub, _ := g["subdivision"].(string)
	switch {
	case country == "*":
		return 1
	case loc == nil:
		return 0
	case sub != "" && country == loc.Country && sub == loc.Subdivision:
		return 4
	case sub == "" && country != "" && country == loc.Country:
		return 3
	case continent != "" && continent == loc.Continent:
		return 2
	}
	return 0
}

func (a *analyzer) chooseGeo(recs []res, loc *Location, down map[string]bool, depth int) (res, string, string) {
	cands := slices.Clone(recs)
	sort.SliceStable(cands, func(i, j int) bool { return geoMatch(cands[i], loc) > geoMatch(cands[j], loc) })
	var first res
	for _, r := range cands {
		m := geoMatch(r, loc)
		if m == 0 {
			break
		}
		if !first.ok() {
			first = r
		}
		if a.healthy(r, loc, down, depth) {
			why := "geolocation: " + geoWhy(r, loc, m)
			if r != first {
				why += " (the more specific " + first.id + " is unhealthy)"
			}
			return r, "geolocation", why
		}
	}
	if first.ok() {
		return first, "geolocation", "geolocation: " + geoWhy(first, loc, geoMatch(first, loc)) + "; unhealthy, but nothing else matches"
	}
	where := "the query's location"
	if loc != nil {
		where = loc.Describe()
	}
	return res{}, "geolocation", "geolocation: no record matches " + where + " and there is no default record: Route 53 answers with no address"
}

func geoWhy(r res, loc *Location, m int) string {
	g, _ := r.get("geolocation").(map[string]any)
	switch m {
	case 4:
		return fmt.Sprintf("%s matches subdivision %v of country %v", r.id, g["subdivision"], g["country"])
	case 3:
		return fmt.Sprintf("%s matches country %v", r.id, g["country"])
	case 2:
		return fmt.Sprintf("%s matches continent %v (%s)", r.id, g["continent"], ContinentName(fmt.Sprint(g["continent"])))
	}
	return r.id + " is the default record (no location record matches)"
}

// entry returns the patients' record (an alias to CloudFront) and the
// distribution.
func (a *analyzer) entry() (res, res, bool) {
	l := a.layer()
	if l == nil {
		return res{}, res{}, false
	}
	for _, r := range ofType(l, "route53_record") {
		if t, ok := a.target(l, r.get("alias.target")); ok && t.typ() == "cloudfront_distribution" {
			return r, t, true
		}
	}
	return res{}, res{}, false
}

// appOrigin returns the distribution's default origin and, for an origin
// by name, the name.
func (a *analyzer) appOrigin(cdn res) (map[string]any, string) {
	def := cdn.str("default_origin")
	for _, o := range cdn.list("origins") {
		m, _ := o.(map[string]any)
		if id, _ := m["id"].(string); id == def {
			d, _ := m["domain"].(string)
			return m, a.dnsName(cdn.st, d)
		}
	}
	return nil, ""
}

// maintenancePage returns the path CloudFront answers with when the app's
// origin fails with status code, served from an S3 origin, if any.
func (a *analyzer) maintenancePage(cdn res, code int64) (string, bool) {
	for _, e := range cdn.list("error_pages") {
		m, _ := e.(map[string]any)
		if toInt(m["code"]) != code {
			continue
		}
		p, _ := m["path"].(string)
		for _, b := range cdn.list("behaviors") {
			bm, _ := b.(map[string]any)
			bp, _ := bm["path"].(string)
			bo, _ := bm["origin"].(string)
			if pathMatches(bp, p) && a.isS3Origin(cdn, bo) {
				return p, true
			}
		}
	}
	return "", false
}

func pathMatches(pattern, p string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(p, prefix)
	}
	return pattern == p
}

func (a *analyzer) isS3Origin(cdn res, id string) bool {
	for _, o := range cdn.list("origins") {
		m, _ := o.(map[string]any)
		if oid, _ := m["id"].(string); oid == id {
			_, ok := m["s3_bucket"]
			return ok
		}
	}
	return false
}

func (a *analyzer) route(loc Location, down map[string]bool) Resolution {
	out := Resolution{Location: loc}
	rec, cdn, ok := a.entry()
	if !ok {
		out.Summary = "the environment layer has no record for patients aliased to CloudFront"
		return out
	}
	host := a.dnsName(rec.st, rec.str("name"))
	out.Chain = append(out.Chain, Step{Stack: rec.st.StackID(), Resource: rec.id, Name: host, Routing: "simple", Choice: "the patients' hostname", Target: "CloudFront " + cdn.id})
	o, origin := a.appOrigin(cdn)
	if o == nil || origin == "" {
		out.Summary = "CloudFront's default origin is not a hostname the environment routes"
		return out
	}
	out.Chain = append(out.Chain, Step{Stack: cdn.st.StackID(), Resource: cdn.id, Name: "CloudFront", Routing: "origin", Choice: "default behaviour, origin " + fmt.Sprint(o["id"]), Target: origin})
	d, steps := a.resolveName(origin, &loc, down)
	out.Chain = append(out.Chain, steps...)
	switch {
	case d.alb.ok() && a.albHealthy(d.alb, down):
		out.Region, out.Stack = d.alb.region(), d.alb.st.StackID()
		out.Summary = fmt.Sprintf("answered by %s in %s (%s)", d.alb.id, out.Region, out.Stack)
	case d.alb.ok():
		if p, ok := a.maintenancePage(cdn, 503); ok {
			out.Maintenance = true
			out.Chain = append(out.Chain, Step{Stack: cdn.st.StackID(), Resource: cdn.id, Name: "CloudFront", Routing: "error page",
				Choice: fmt.Sprintf("%s in %s does not answer (5xx)", d.alb.id, d.alb.region()), Target: p + " from the assets bucket"})
			out.Summary = fmt.Sprintf("%s is down and no other region may serve %s: CloudFront shows the maintenance page", d.alb.region(), loc.Describe())
		} else {
			out.Summary = fmt.Sprintf("%s is down and nothing else answers: CloudFront returns an error", d.alb.region())
		}
	case d.none:
		out.Summary = "no record answers this location"
	default:
		out.Summary = "the chain ends outside the environment at " + d.external
	}
	return out
}

// routing checks the routing of the environment: every jurisdiction
// served, every failover with a secondary (or a maintenance page where the
// catalogue allows one region), geolocation that never spills a
// jurisdiction's patients into another's region.
func (a *analyzer) routing() {
	a.failovers()
	l := a.layer()
	if l == nil {
		return
	}
	rec, cdn, ok := a.entry()
	c := Check{Rule: RuleRouting, Stack: l.StackID(), Title: "Every jurisdiction's patients reach their jurisdiction"}
	if !ok {
		c.Hops = append(c.Hops, fail("Patients", "CloudFront", res{l, ""}, "", "no record of the layer aliases the patients' hostname to CloudFront", "add a route53_record aliased to the distribution"))
		a.add(c)
		return
	}
	_, origin := a.appOrigin(cdn)
	if origin == "" {
		c.Hops = append(c.Hops, fail("CloudFront", "origin", cdn, "origins", "the default origin is not a hostname: it cannot be routed by location", "make the default origin {id: app, domain: origin.<domain>}"))
		a.add(c)
		return
	}
	c.Hops = append(c.Hops, pass("Patients", "CloudFront "+cdn.id, a.dnsName(l, rec.str("name"))+" is an alias to the distribution"))
	geo := a.recordsNamed(origin)
	if len(geo) == 0 || geo[0].str("routing") != "geolocation" {
		c.Hops = append(c.Hops, fail("CloudFront "+cdn.id, origin, cdn, "origins", "no geolocation records answer "+origin, "add one geolocation record per jurisdiction and a default on "+origin))
		a.add(c)
		return
	}
	hasDefault := false
	for _, g := range geo {
		if geoMatch(g, nil) == 1 {
			hasDefault = true
			if t, _ := a.follow(g, nil, nil, 0); !t.alb.ok() && t.external != "" && len(a.missing()) > 0 {
				// leads to a stack not part of this analysis
			} else if !t.alb.ok() {
				c.Hops = append(c.Hops, fail(origin, "default", g, "alias.target", "the default record leads to no load balancer of the environment", "point it at a jurisdiction's origin name"))
			} else {
				c.Hops = append(c.Hops, pass(origin+" (default)", t.alb.st.StackID(), g.id+" serves every location no jurisdiction's record covers"))
			}
		}
		if g.boolean("alias.evaluate_target_health") || a.healthCheckOf(g) != "" {
			c.Hops = append(c.Hops, fail(origin, g.id, g, "alias.evaluate_target_health",
				"geolocation record "+g.id+" is health-checked: when its jurisdiction is down Route 53 answers a broader record (the default), sending patients to another jurisdiction's region",
				"set evaluate_target_health: false and no health_check on geolocation records; fail over inside the jurisdiction instead"))
		}
	}
	if !hasDefault {
		c.Hops = append(c.Hops, fail(origin, "default", geo[0], "geolocation", "no default geolocation record: patients no location record covers get no answer", `add a record with geolocation {country: "*"} pointing at the default jurisdiction's origin`))
	}
	for _, j := range regions.Jurisdictions() {
		sid := regions.StackID(a.env, j.ID)
		if a.byID[sid] == nil {
			continue // not part of this analysis
		}
		var found res
		for _, g := range geo {
			if geoMatch(g, nil) == 1 {
				continue
			}
			if t, steps := a.follow(g, nil, nil, 0); len(steps) > 0 && steps[0].Stack == sid || t.alb.ok() && t.alb.st.StackID() == sid {
				found = g
			}
		}
		if !found.ok() {
			c.Hops = append(c.Hops, fail(origin, sid, geo[0], "", fmt.Sprintf("no geolocation record sends %s's patients to %s", j.Name, sid),
				fmt.Sprintf("add a geolocation record for %s's location aliased to %s's origin record", j.Name, sid)))
			continue
		}
		g, _ := found.get("geolocation").(map[string]any)
		c.Hops = append(c.Hops, pass(origin, sid, fmt.Sprintf("%s (%s) -> %s's origin record", found.id, geoText(g), sid)))
	}
	a.spill(&c, origin)
	a.add(c)
}

func geoText(g map[string]any) string {
	if c, ok := g["country"].(string); ok && c != "" {
		if c == "*" {
			return "default"
		}
		return "country " + c
	}
	if c, ok := g["continent"].(string); ok {
		return "continent " + c
	}
	return "no location"
}

// spill resolves every known location with every health check failing in
// turn, and every jurisdiction's all at once: the region answering must
// always be one the location's jurisdiction allows.
func (a *analyzer) spill(c *Check, origin string) {
	var checks []string
	byStack := map[string][]string{}
	for _, s := range a.stacks {
		for _, hc := range ofType(s, "route53_health_check") {
			k := s.StackID() + ":" + hc.id
			checks = append(checks, k)
			byStack[s.StackID()] = append(byStack[s.StackID()], k)
		}
	}
	scenarios := []map[string]bool{{}}
	for _, k := range checks {
		scenarios = append(scenarios, map[string]bool{k: true})
	}
	for _, ks := range byStack {
		m := map[string]bool{}
		for _, k := range ks {
			m[k] = true
		}
		scenarios = append(scenarios, m)
	}
	bad := 0
	for _, country := range countries {
		loc, _ := LocationOf(country.Code, "")
		home, steps := a.resolveName(origin, &loc, nil)
		if !home.alb.ok() || len(steps) < 2 {
			continue
		}
		j, ok := regions.JurisdictionByID(home.alb.st.JurisdictionID())
		if !ok {
			continue
		}
		for _, down := range scenarios {
			d, chain := a.resolveName(origin, &loc, down)
			if !d.alb.ok() || j.Allows(d.alb.region()) {
				continue
			}
			bad++
			if bad > 3 {
				continue
			}
			var failing []string
			for k := range down {
				failing = append(failing, k)
			}
			sort.Strings(failing)
			via := chain[0]
			c.Hops = append(c.Hops, fail(country.Name+" ("+j.Name+")", d.alb.region(), res{a.byID[via.Stack], via.Resource}, "",
				fmt.Sprintf("with %s failing, patients in %s are answered by %s in %s, a region %s does not allow", strings.Join(failing, ", "), country.Name, d.alb.id, d.alb.region(), j.Name),
				"keep geolocation records unhealth-checked and fail over only to regions of the same jurisdiction"))
		}
	}
	if bad == 0 {
		c.Hops = append(c.Hops, pass("every location", "its jurisdiction's regions", fmt.Sprintf("%d locations resolved with each of %d health checks failing, and each jurisdiction's all at once: none is answered outside its jurisdiction", len(countries), len(checks))))
	}
}

// failovers checks, in each jurisdiction stack, that the origin name fails
// over from the home region to the standby, or to the maintenance page
// where the catalogue allows one region.
func (a *analyzer) failovers() {
	var cdn res
	if _, d, ok := a.entry(); ok {
		cdn = d
	}
	for _, s := range a.jurisdictionStacks() {
		j, ok := regions.JurisdictionByID(s.JurisdictionID())
		if !ok {
			continue
		}
		sets := map[string][]res{}
		var names []string
		for _, r := range ofType(s, "route53_record") {
			if r.str("routing") != "failover" {
				continue
			}
			n := a.dnsName(s, r.str("name"))
			if sets[n] == nil {
				names = append(names, n)
			}
			sets[n] = append(sets[n], r)
		}
		if len(names) == 0 {
			c := Check{Rule: RuleRouting, Stack: s.StackID(), Title: j.Name + ": failover inside the jurisdiction"}
			c.Hops = append(c.Hops, fail("origin", j.HomeRegion, res{s, ""}, "", "the stack has no failover records: nothing takes its patients elsewhere when "+j.HomeRegion+" fails", "add failover PRIMARY and SECONDARY origin records"))
			a.add(c)
			continue
		}
		for _, n := range names {
			c := Check{Rule: RuleRouting, Stack: s.StackID(), Title: fmt.Sprintf("%s: %s fails over inside the jurisdiction", j.Name, n)}
			var primary, secondary res
			for _, r := range sets[n] {
				if r.str("failover") == "PRIMARY" {
					primary = r
				} else {
					secondary = r
				}
			}
			if !primary.ok() {
				c.Hops = append(c.Hops, fail(n, "PRIMARY", sets[n][0], "failover", "no PRIMARY record", "mark the home region's record PRIMARY"))
				a.add(c)
				continue
			}
			pd, _ := a.follow(primary, nil, nil, 0)
			switch {
			case !pd.alb.ok():
				c.Hops = append(c.Hops, fail(n, "PRIMARY", primary, "alias.target", "the PRIMARY leads to no load balancer", "alias it to the home region's load balancer"))
			case !j.Allows(pd.alb.region()):
				c.Hops = append(c.Hops, fail(n, pd.alb.region(), primary, "alias.target", fmt.Sprintf("the PRIMARY answers from %s, which %s does not allow", pd.alb.region(), j.Name), "alias it to a load balancer in "+strings.Join(j.AllowedRegions, ", ")))
			case a.healthCheckOf(primary) == "" && !primary.boolean("alias.evaluate_target_health"):
				c.Hops = append(c.Hops, fail(n, "PRIMARY", primary, "health_check", "the PRIMARY has no health check: Route 53 never fails over", "give it a health_check on the home region"))
			default:
				c.Hops = append(c.Hops, pass(n, "PRIMARY "+pd.alb.name(), primary.id+", health check "+strings.TrimPrefix(a.healthCheckOf(primary), s.StackID()+":")))
			}
			switch {
			case j.HasStandby() && !secondary.ok():
				c.Hops = append(c.Hops, fail(n, "SECONDARY", primary, "", fmt.Sprintf("no SECONDARY: when %s fails, %s's patients get errors though the catalogue allows a standby in %s", j.HomeRegion, j.Name, j.StandbyRegion),
					fmt.Sprintf("add a failover SECONDARY record aliased to the standby load balancer in %s (enabled: ${stack.has_standby})", j.StandbyRegion)))
			case secondary.ok():
				sd, _ := a.follow(secondary, nil, nil, 0)
				switch {
				case !sd.alb.ok():
					c.Hops = append(c.Hops, fail(n, "SECONDARY", secondary, "alias.target", "the SECONDARY leads to no load balancer", "alias it to the standby load balancer"))
				case !j.Allows(sd.alb.region()):
					c.Hops = append(c.Hops, fail(n, sd.alb.region(), secondary, "alias.target", fmt.Sprintf("the SECONDARY answers from %s, which %s does not allow", sd.alb.region(), j.Name), "use the standby region "+j.StandbyRegion))
				case pd.alb.ok() && sd.alb.region() == pd.alb.region():
					c.Hops = append(c.Hops, fail(n, sd.alb.region(), secondary, "alias.target", "the SECONDARY is in the same region as the PRIMARY: a regional outage takes both", "alias it to the standby region's load balancer"))
				default:
					c.Hops = append(c.Hops, pass(n, "SECONDARY "+sd.alb.name(), secondary.id+" answers while the home region's health check fails"))
				}
			default:
				// One allowed region: the maintenance page.
				if !cdn.ok() {
					c.Hops = append(c.Hops, pass(n, "maintenance page", j.Name+" is allowed one region; the layer's CloudFront (not checked here) serves the maintenance page"))
					break
				}
				missing := []string{}
				for _, code := range []int64{502, 503, 504} {
					if _, ok := a.maintenancePage(cdn, code); !ok {
						missing = append(missing, fmt.Sprint(code))
					}
				}
				if len(missing) > 0 {
					c.Hops = append(c.Hops, fail(n, "maintenance page", cdn, "error_pages", fmt.Sprintf("%s is allowed one region (%s) and CloudFront has no maintenance page for %s from its origin: patients get a bare error while %s is down", j.Name, j.HomeRegion, strings.Join(missing, ", "), j.HomeRegion),
						"add error_pages for 502, 503 and 504 with a path served by the assets origin"))
				} else {
					p, _ := a.maintenancePage(cdn, 503)
					c.Hops = append(c.Hops, pass(n, "maintenance page", fmt.Sprintf("%s is allowed only %s (%s): while it is down CloudFront answers %s from the assets bucket", j.Name, j.HomeRegion, j.Basis[j.HomeRegion], p)))
				}
			}
			if act := j.ActiveRegions(); len(act) > 1 {
				lat := 0
				for _, r := range ofType(s, "route53_record") {
					if r.str("routing") == "latency" {
						lat++
					}
				}
				if lat < len(act) {
					c.Hops = append(c.Hops, fail(n, "latency", primary, "routing", fmt.Sprintf("%s has %d active regions but %d latency records", j.Name, len(act), lat), "add a latency record per active region"))
				}
			}
			a.add(c)
		}
	}
}
