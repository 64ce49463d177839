package analysis

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
)

// Prefix lists AWS manages, by name.
const (
	cloudFrontPrefixList = "com.amazonaws.global.cloudfront.origin-facing"
	anywhere             = "0.0.0.0/0"
)

func healthCheckPrefixList(region string) string {
	return "com.amazonaws." + region + ".route53-healthchecks"
}

func servicePrefixList(region, service string) string {
	return "com.amazonaws." + region + "." + service
}

// gatewayServices are the services AWS offers gateway endpoints for.
var gatewayServices = []string{"s3", "dynamodb"}

// endpointService maps an IAM action prefix to the VPC endpoint service
// the call goes to (https://docs.aws.amazon.com/vpc/latest/privatelink/aws-services-privatelink-support.html).
func endpointService(prefix string) string {
	switch prefix {
	case "iam", "sts", "route53", "cloudfront", "organizations":
		return "" // global or served without a regional endpoint of the app's own
	case "cloudwatch":
		return "monitoring"
	}
	return prefix
}

// network checks every path of every load balancer, and every AWS API the
// app's instances call.
func (a *analyzer) network() {
	for _, s := range a.jurisdictionStacks() {
		for _, alb := range ofType(s, "alb") {
			a.patientPath(alb)
			a.healthPath(alb)
		}
		for _, asg := range ofType(s, "autoscaling_group") {
			a.apiPaths(asg)
		}
	}
}

// network facts of one VPC
type vpcNet struct {
	a   *analyzer
	vpc res
}

func (a *analyzer) vpcOf(r res) (vpcNet, bool) {
	v, ok := a.target(r.st, r.get("vpc"))
	if !ok || v.typ() != "vpc" {
		return vpcNet{}, false
	}
	return vpcNet{a, v}, true
}

// cidrs returns the CIDRs of the subnets of tier.
func (n vpcNet) cidrs(tier string) []string {
	var out []string
	for _, s := range n.vpc.list("subnets") {
		m, _ := s.(map[string]any)
		if t, _ := m["tier"].(string); t == tier {
			if c, _ := m["cidr"].(string); c != "" {
				out = append(out, c)
			}
		}
	}
	return out
}

// routeTable returns the route table of the subnets of tier and its index.
func (n vpcNet) routeTable(tier string) (map[string]any, int) {
	for i, t := range n.vpc.list("route_tables") {
		m, _ := t.(map[string]any)
		if st, _ := m["subnet_tier"].(string); st == tier {
			return m, i
		}
	}
	return nil, -1
}

// defaultRoute returns the target of the 0.0.0.0/0 route of tier's table.
func (n vpcNet) defaultRoute(tier string) string {
	t, _ := n.routeTable(tier)
	routes, _ := t["routes"].([]any)
	for _, r := range routes {
		m, _ := r.(map[string]any)
		if d, _ := m["destination"].(string); d == anywhere {
			s, _ := m["target"].(string)
			return s
		}
	}
	return ""
}

// endpoints returns the VPC's endpoints of type typ ("Gateway",
// "Interface").
func (n vpcNet) endpoints(typ string) []res {
	var out []res
	for _, e := range ofType(n.vpc.st, "vpc_endpoints") {
		if v, ok := n.a.target(e.st, e.get("vpc")); ok && v == n.vpc && e.str("endpoint_type") == typ {
			out = append(out, e)
		}
	}
	return out
}

// rule is one security group rule.
type sgRule struct {
	group      res
	index      int
	protocol   string
	from, to   int64
	cidrs      []string
	source     string // canonical reference to a group, or a raw id
	prefixList string
}

func (a *analyzer) rules(g res, dir string) []sgRule {
	var out []sgRule
	for i, r := range g.list(dir) {
		m, _ := r.(map[string]any)
		rule := sgRule{group: g, index: i}
		rule.protocol, _ = m["protocol"].(string)
		rule.from, rule.to = toInt(m["from_port"]), toInt(m["to_port"])
		if cs, ok := m["cidrs"].([]any); ok {
			for _, c := range cs {
				if s, ok := c.(string); ok {
					rule.cidrs = append(rule.cidrs, s)
				}
			}
		}
		if s, ok := m["source"].(string); ok {
			rule.source = canon(g.st, s)
		}
		rule.prefixList, _ = m["prefix_list"].(string)
		out = append(out, rule)
	}
	return out
}

func toInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case float64:
		return int64(x)
	case int:
		return int64(x)
	}
	return 0
}

// peer is the other side of a flow, as a security group rule may name it.
type peer struct {
	groups     []res    // its security groups
	cidrs      []string // the addresses it comes from or goes to
	prefixList string   // an AWS-managed prefix list that holds it
}

func (r sgRule) port(p int64) bool {
	if r.protocol == "-1" || r.protocol == "all" {
		return true
	}
	return r.protocol == "tcp" && r.from <= p && p <= r.to
}

func (r sgRule) admits(p peer) bool {
	for _, g := range p.groups {
		if r.source != "" && r.source == "${xref."+g.st.StackID()+"."+g.id+".id}" {
			return true
		}
	}
	if r.prefixList != "" && r.prefixList == p.prefixList {
		return true
	}
	if len(r.cidrs) > 0 && len(p.cidrs) > 0 {
		for _, c := range p.cidrs {
			if !anyContains(r.cidrs, c) {
				return false
			}
		}
		return true
	}
	return false
}

func (r sgRule) describe(dir string) string {
	what := r.source
	if m := refRe.FindStringSubmatch(what); m != nil {
		what = m[3]
		if m[1] != "" {
			what = m[1]
		}
	}
	switch {
	case r.prefixList != "":
		what = r.prefixList
	case len(r.cidrs) > 0:
		what = strings.Join(r.cidrs, ", ")
	}
	ports := fmt.Sprintf("tcp %d", r.from)
	if r.to != r.from {
		ports = fmt.Sprintf("tcp %d-%d", r.from, r.to)
	}
	if r.protocol == "-1" || r.protocol == "all" {
		ports = "all traffic"
	}
	word := "from"
	if dir == "egress" {
		word = "to"
	}
	return fmt.Sprintf("%s %s %s %s %s", r.group.id, dir, ports, word, what)
}

// allows returns the rule of groups that lets port through in direction
// dir ("ingress", "egress") for peer.
func (a *analyzer) allows(groups []res, dir string, port int64, p peer) (sgRule, bool) {
	for _, g := range groups {
		for _, r := range a.rules(g, dir) {
			if r.port(port) && r.admits(p) {
				return r, true
			}
		}
	}
	return sgRule{}, false
}

func anyContains(prefixes []string, cidr string) bool {
	in, err := netip.ParsePrefix(cidr)
	if err != nil {
		return false
	}
	for _, s := range prefixes {
		p, err := netip.ParsePrefix(s)
		if err == nil && p.Bits() <= in.Bits() && p.Contains(in.Addr()) {
			return true
		}
	}
	return false
}

// groupsOf returns the security groups a field lists.
func (a *analyzer) groupsOf(r res, path string) []res {
	var out []res
	for _, v := range r.list(path) {
		if g, ok := a.target(r.st, v); ok && g.typ() == "security_group" {
			out = append(out, g)
		}
	}
	return out
}

func ids(rs []res) string {
	var out []string
	for _, r := range rs {
		out = append(out, r.id)
	}
	return strings.Join(out, ", ")
}

// nacl judges the network ACLs (when the VPC has any besides its default,
// which allows everything) for traffic of tier on port to or from peer.
func (n vpcNet) nacl(tier, dir string, port int64, cidr string) (string, bool) {
	for _, acl := range n.vpc.list("network_acls") {
		m, _ := acl.(map[string]any)
		tiers, _ := m["subnet_tiers"].([]any)
		if !slices.ContainsFunc(tiers, func(t any) bool { s, _ := t.(string); return s == tier }) {
			continue
		}
		name, _ := m["id"].(string)
		entries, _ := m[dir].([]any)
		type entry struct {
			n        int64
			proto    string
			from, to int64
			cidr     string
			allow    bool
		}
		var es []entry
		for _, e := range entries {
			em, _ := e.(map[string]any)
			p, _ := em["protocol"].(string)
			c, _ := em["cidr"].(string)
			act, _ := em["action"].(string)
			es = append(es, entry{toInt(em["rule_number"]), p, toInt(em["from_port"]), toInt(em["to_port"]), c, act == "allow"})
		}
		sort.Slice(es, func(i, j int) bool { return es[i].n < es[j].n })
		for _, e := range es {
			if (e.proto == "-1" || e.proto == "all" || e.proto == "tcp" && e.from <= port && port <= e.to) && anyContains([]string{e.cidr}, cidr) {
				if e.allow {
					return "", true
				}
				return fmt.Sprintf("network ACL %s denies %s tcp %d (rule %d)", name, dir, port, e.n), false
			}
		}
		return fmt.Sprintf("network ACL %s has no rule allowing %s tcp %d (its last rule denies everything)", name, dir, port), false
	}
	return "", true
}

// naclPath judges both ends of a flow from tier a (addresses src) to tier b
// of the same VPC on port: out of a, into b, and the replies on ephemeral
// ports (network ACLs are stateless).
func (n vpcNet) naclPath(srcTier string, srcCIDRs []string, dstTier string, dstCIDRs []string, port int64) (string, bool) {
	for _, s := range orAnywhere(srcCIDRs) {
		for _, d := range orAnywhere(dstCIDRs) {
			if srcTier != "" {
				if why, ok := n.nacl(srcTier, "egress", port, d); !ok {
					return why, false
				}
				if why, ok := n.nacl(srcTier, "ingress", 1024, d); !ok {
					return why + " (replies on ephemeral ports)", false
				}
			}
			if dstTier != "" {
				if why, ok := n.nacl(dstTier, "ingress", port, s); !ok {
					return why, false
				}
				if why, ok := n.nacl(dstTier, "egress", 1024, s); !ok {
					return why + " (replies on ephemeral ports)", false
				}
			}
		}
	}
	return "", true
}

func orAnywhere(cs []string) []string {
	if len(cs) == 0 {
		return []string{anywhere}
	}
	return cs
}

// listenerOf returns the load balancer's HTTPS listener (or its first).
func (a *analyzer) listenerOf(alb res) (res, bool) {
	var first res
	for _, l := range ofType(alb.st, "listener") {
		if t, ok := a.target(l.st, l.get("load_balancer")); ok && t == alb {
			if l.str("protocol") == "HTTPS" {
				return l, true
			}
			if first.id == "" {
				first = l
			}
		}
	}
	return first, first.id != ""
}

// groupsBehind returns the Auto Scaling groups registered in target group tg.
func (a *analyzer) groupsBehind(tg res) []res {
	var out []res
	for _, g := range ofType(tg.st, "autoscaling_group") {
		for _, v := range g.list("target_groups") {
			if t, ok := a.target(g.st, v); ok && t == tg {
				out = append(out, g)
			}
		}
	}
	return out
}

// instanceGroups returns the security groups of an Auto Scaling group's
// instances (its launch template's).
func (a *analyzer) instanceGroups(asg res) (res, []res) {
	lt, ok := a.target(asg.st, asg.get("launch_template"))
	if !ok {
		return res{}, nil
	}
	return lt, a.groupsOf(lt, "security_groups")
}

// databasesOf returns the databases in the app's VPC: the primary and
// replicas beside it, or the standby region's replica.
func (a *analyzer) databasesOf(n vpcNet) []res {
	var out []res
	for _, db := range ofType(n.vpc.st, "rds_instance", "rds_read_replica") {
		if db.region() != n.vpc.region() || db.typ() == "rds_read_replica" && db.get("count") != nil && db.num("count") == 0 {
			continue
		}
		sg := db
		if db.typ() == "rds_read_replica" && db.get("subnet_group") == nil {
			// a replica in its source's region inherits its subnet group
			if src, ok := a.target(db.st, db.get("source")); ok {
				sg = src
			}
		}
		if group, ok := a.target(sg.st, sg.get("subnet_group")); ok {
			if v, ok := a.target(group.st, group.get("vpc")); ok && v == n.vpc {
				out = append(out, db)
			}
		}
	}
	return out
}

func dbPort(db res) int64 {
	if p := db.num("port"); p > 0 {
		return p
	}
	return 5432 // PostgreSQL, the only engine the schema allows
}

// patientPath: internet -> CloudFront -> load balancer -> instances ->
// database.
func (a *analyzer) patientPath(alb res) {
	n, ok := a.vpcOf(alb)
	c := Check{Rule: RuleNetwork, Stack: alb.st.StackID(), Title: fmt.Sprintf("Patients -> CloudFront -> %s -> app -> database (%s)", alb.id, alb.region())}
	if !ok {
		c.Hops = append(c.Hops, fail("CloudFront", alb.name(), alb, "vpc", "the load balancer names no VPC of the stack", "set vpc to the VPC of its region"))
		a.add(c)
		return
	}
	albTier := alb.str("subnet_tier")
	albCIDRs := n.cidrs(albTier)
	albGroups := a.groupsOf(alb, "security_groups")

	// Internet -> the load balancer's subnets.
	switch {
	case alb.boolean("internal"):
		c.Hops = append(c.Hops, fail("Internet", alb.name(), alb, "internal", "the load balancer is internal: CloudFront cannot reach it", "set internal: false"))
	case n.defaultRoute(albTier) != "internet_gateway":
		_, i := n.routeTable(albTier)
		path := "route_tables"
		if i >= 0 {
			path = fmt.Sprintf("route_tables[%d].routes", i)
		}
		c.Hops = append(c.Hops, fail("Internet", alb.name(), n.vpc, path,
			fmt.Sprintf("the %s subnets' route table has no route 0.0.0.0/0 to the internet gateway, so the load balancer cannot answer", albTier),
			fmt.Sprintf("add {destination: 0.0.0.0/0, target: internet_gateway} to the route table of the %s tier of %s", albTier, n.vpc.id)))
	default:
		c.Hops = append(c.Hops, pass("Internet", alb.name(), fmt.Sprintf("%s subnets route 0.0.0.0/0 to the internet gateway of %s", albTier, n.vpc.id)))
	}

	// CloudFront -> the listener.
	l, ok := a.listenerOf(alb)
	if !ok {
		c.Hops = append(c.Hops, fail("CloudFront", alb.name(), alb, "", "the load balancer has no listener", "add an HTTPS listener on port 443"))
		a.add(c)
		return
	}
	port := l.num("port")
	if l.str("protocol") != "HTTPS" {
		c.Hops = append(c.Hops, fail("CloudFront", alb.name(), l, "protocol", fmt.Sprintf("listener %s speaks %s; CloudFront's origin protocol is https-only", l.id, l.str("protocol")), "make the listener HTTPS with a certificate"))
	} else if r, ok := a.allows(albGroups, "ingress", port, peer{prefixList: cloudFrontPrefixList, cidrs: []string{anywhere}}); ok {
		via := r.describe("ingress")
		if why, ok := n.naclPath("", nil, albTier, albCIDRs, port); !ok {
			c.Hops = append(c.Hops, fail("CloudFront", alb.name(), n.vpc, "network_acls", why, "allow tcp "+fmt.Sprint(port)+" in and ephemeral ports out in the network ACL of the "+albTier+" subnets"))
		} else {
			c.Hops = append(c.Hops, pass("CloudFront", fmt.Sprintf("%s :%d", alb.name(), port), via))
		}
	} else {
		first := alb
		if len(albGroups) > 0 {
			first = albGroups[0]
		}
		c.Hops = append(c.Hops, fail("CloudFront", fmt.Sprintf("%s :%d", alb.name(), port), first, "ingress",
			fmt.Sprintf("no security group of the load balancer (%s) admits tcp %d from CloudFront", ids(albGroups), port),
			fmt.Sprintf("add {protocol: tcp, from_port: %d, to_port: %d, prefix_list: %s} to the ingress of %s", port, port, cloudFrontPrefixList, first.id)))
	}

	// The load balancer -> the app's instances.
	tg, ok := a.target(l.st, l.get("default_target_group"))
	if !ok {
		c.Hops = append(c.Hops, fail(alb.id, "app", l, "default_target_group", "the listener forwards to no target group of the stack", "set default_target_group"))
		a.add(c)
		return
	}
	appPort := tg.num("port")
	asgs := a.groupsBehind(tg)
	if len(asgs) == 0 {
		c.Hops = append(c.Hops, fail(alb.id, tg.id, tg, "", "no Auto Scaling group registers instances in target group "+tg.id, "add "+tg.id+" to an Auto Scaling group's target_groups"))
		a.add(c)
		return
	}
	asg := asgs[0]
	lt, appGroups := a.instanceGroups(asg)
	appTier := asg.str("subnet_tier")
	appCIDRs := n.cidrs(appTier)
	if av, ok := a.vpcOf(asg); !ok || av.vpc != n.vpc {
		c.Hops = append(c.Hops, fail(alb.id, asg.name(), asg, "vpc", "the app's instances are not in the load balancer's VPC", "place the Auto Scaling group in "+n.vpc.id))
		a.add(c)
		return
	}
	out, okOut := a.allows(albGroups, "egress", appPort, peer{groups: appGroups, cidrs: appCIDRs})
	in, okIn := a.allows(appGroups, "ingress", appPort, peer{groups: albGroups, cidrs: albCIDRs})
	to := fmt.Sprintf("%s :%d", asg.name(), appPort)
	switch {
	case !okOut:
		first := alb
		if len(albGroups) > 0 {
			first = albGroups[0]
		}
		c.Hops = append(c.Hops, fail(alb.id, to, first, "egress",
			fmt.Sprintf("no security group of the load balancer lets it open tcp %d to the app's groups (%s)", appPort, ids(appGroups)),
			fmt.Sprintf("add {protocol: tcp, from_port: %d, to_port: %d, source: ${ref.%s.id}} to the egress of %s", appPort, appPort, firstID(appGroups), first.id)))
	case !okIn:
		c.Hops = append(c.Hops, fail(alb.id, to, lt, "security_groups",
			fmt.Sprintf("no security group of the app's instances (%s) admits tcp %d from the load balancer", ids(appGroups), appPort),
			fmt.Sprintf("give the instances a group with {protocol: tcp, from_port: %d, to_port: %d, source: ${ref.%s.id}} in its ingress", appPort, appPort, firstID(albGroups))))
	default:
		if why, ok := n.naclPath(albTier, albCIDRs, appTier, appCIDRs, appPort); !ok {
			c.Hops = append(c.Hops, fail(alb.id, to, n.vpc, "network_acls", why, "allow the flow in the network ACLs of both tiers"))
		} else {
			c.Hops = append(c.Hops, pass(alb.id, to, out.describe("egress")+"; "+in.describe("ingress")+"; local route of "+n.vpc.id))
		}
	}

	// The app -> its database.
	dbs := a.databasesOf(n)
	if len(dbs) == 0 {
		c.Hops = append(c.Hops, fail(asg.id, "database", asg, "", "no database of the stack is in the app's VPC ("+n.vpc.id+"): its DB subnet group must be in this VPC", "give the database a DB subnet group in "+n.vpc.id))
		a.add(c)
		return
	}
	for _, db := range dbs {
		dport := dbPort(db)
		dbGroups := a.groupsOf(db, "security_groups")
		dbTier := "private"
		if g, ok := a.target(db.st, db.get("subnet_group")); ok {
			dbTier = g.str("subnet_tier")
		}
		dbCIDRs := n.cidrs(dbTier)
		to := fmt.Sprintf("%s :%d", db.name(), dport)
		out, okOut := a.allows(appGroups, "egress", dport, peer{groups: dbGroups, cidrs: dbCIDRs})
		in, okIn := a.allows(dbGroups, "ingress", dport, peer{groups: appGroups, cidrs: appCIDRs})
		switch {
		case !okOut:
			c.Hops = append(c.Hops, fail(asg.id, to, groups0(appGroups, lt), "egress",
				fmt.Sprintf("no security group of the app's instances (%s) lets them open tcp %d to the database's groups (%s)", ids(appGroups), dport, ids(dbGroups)),
				fmt.Sprintf("add {protocol: tcp, from_port: %d, to_port: %d, source: ${ref.%s.id}} to the egress of one of %s", dport, dport, firstID(dbGroups), ids(appGroups))))
		case !okIn:
			first := db
			if len(dbGroups) > 0 {
				first = dbGroups[0]
			}
			c.Hops = append(c.Hops, fail(asg.id, to, first, "ingress",
				fmt.Sprintf("no security group of the database (%s) admits tcp %d from the app", ids(dbGroups), dport),
				fmt.Sprintf("add {protocol: tcp, from_port: %d, to_port: %d, source: ${ref.%s.id}} to the ingress of %s", dport, dport, firstID(appGroups), first.id)))
		default:
			if why, ok := n.naclPath(appTier, appCIDRs, dbTier, dbCIDRs, dport); !ok {
				c.Hops = append(c.Hops, fail(asg.id, to, n.vpc, "network_acls", why, "allow the flow in the network ACLs of both tiers"))
			} else {
				c.Hops = append(c.Hops, pass(asg.id, to, out.describe("egress")+"; "+in.describe("ingress")))
			}
		}
	}
	a.add(c)
}

func firstID(rs []res) string {
	if len(rs) == 0 {
		return "GROUP"
	}
	return rs[0].id
}

// healthPath: Route 53's health checkers -> the load balancer, for each
// health check whose name leads to it.
func (a *analyzer) healthPath(alb res) {
	l, ok := a.listenerOf(alb)
	if !ok {
		return
	}
	for _, hc := range ofType(alb.st, "route53_health_check") {
		host := a.dnsName(hc.st, hc.str("fqdn"))
		dest, _ := a.resolveName(host, nil, nil)
		if dest.alb != alb {
			continue
		}
		port := hc.num("port")
		if port == 0 {
			port = l.num("port")
		}
		c := Check{Rule: RuleNetwork, Stack: alb.st.StackID(), Title: fmt.Sprintf("Route 53 health check %s -> %s", hc.id, alb.id)}
		groups := a.groupsOf(alb, "security_groups")
		pl := healthCheckPrefixList(alb.region())
		if r, ok := a.allows(groups, "ingress", port, peer{prefixList: pl, cidrs: []string{anywhere}}); ok {
			c.Hops = append(c.Hops, pass("Route 53 health checkers", fmt.Sprintf("%s :%d (%s)", alb.name(), port, host), r.describe("ingress")))
		} else {
			first := alb
			if len(groups) > 0 {
				first = groups[len(groups)-1]
			}
			c.Hops = append(c.Hops, fail("Route 53 health checkers", fmt.Sprintf("%s :%d", alb.name(), port), first, "ingress",
				fmt.Sprintf("no security group of the load balancer admits tcp %d from Route 53's health checkers: the check fails and the region is taken out of service while healthy", port),
				fmt.Sprintf("add {protocol: tcp, from_port: %d, to_port: %d, prefix_list: %s} to a group of the load balancer", port, port, pl)))
		}
		a.add(c)
	}
}

// servicesOf returns the endpoint services the instances' role may call,
// from the actions of its policies, sorted.
func (a *analyzer) servicesOf(lt res) ([]string, res) {
	prof, ok := a.target(lt.st, lt.get("instance_profile"))
	if !ok {
		return nil, res{}
	}
	role, ok := a.target(prof.st, prof.get("role"))
	if !ok {
		return nil, res{}
	}
	seen := map[string]bool{}
	for _, pv := range role.list("policies") {
		pol, ok := a.target(role.st, pv)
		if !ok {
			continue
		}
		for _, st := range pol.list("statements") {
			m, _ := st.(map[string]any)
			if e, _ := m["effect"].(string); e == "Deny" {
				continue
			}
			acts, _ := m["actions"].([]any)
			for _, act := range acts {
				s, _ := act.(string)
				prefix, _, _ := strings.Cut(s, ":")
				if svc := endpointService(prefix); svc != "" && svc != "*" {
					seen[svc] = true
				}
			}
		}
	}
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	sort.Strings(out)
	return out, role
}

// apiPaths: the app's instances -> every AWS API their role may call.
func (a *analyzer) apiPaths(asg res) {
	n, ok := a.vpcOf(asg)
	if !ok {
		return
	}
	lt, groups := a.instanceGroups(asg)
	if lt.id == "" {
		return
	}
	services, role := a.servicesOf(lt)
	if len(services) == 0 {
		return
	}
	tier := asg.str("subnet_tier")
	cidrs := n.cidrs(tier)
	region := asg.region()
	c := Check{Rule: RuleNetwork, Stack: asg.st.StackID(), Title: fmt.Sprintf("%s -> the AWS APIs %s may call (%s)", asg.id, role.id, region)}
	table, ti := n.routeTable(tier)
	tableName, _ := table["name"].(string)
	for _, svc := range services {
		from, to := asg.id, fmt.Sprintf("%s in %s", strings.ToUpper(svc), region)
		if h, ok := a.viaGateway(n, svc, tableName, groups, cidrs, region, from, to); ok {
			c.Hops = append(c.Hops, h)
			continue
		}
		if h, ok := a.viaInterface(n, svc, tier, groups, cidrs, from, to); ok {
			c.Hops = append(c.Hops, h)
			continue
		}
		if n.defaultRoute(tier) == "nat_gateway" {
			if r, ok := a.allows(groups, "egress", 443, peer{cidrs: []string{anywhere}}); ok {
				c.Hops = append(c.Hops, pass(from, to, "the "+tier+" route table's NAT gateway; "+r.describe("egress")))
				continue
			}
		}
		problem := fmt.Sprintf("the %s subnets have no route to %s: no endpoint for it in %s and no NAT route", tier, strings.ToUpper(svc), n.vpc.id)
		if n.defaultRoute(tier) == "internet_gateway" {
			problem += " (instances in them have no public address, so the internet gateway route does not help)"
		}
		fix := fmt.Sprintf("add %s to the services of the VPC's Interface endpoints (and let them admit tcp 443 from the app)", svc)
		at, path := n.vpc, "route_tables"
		if ti >= 0 {
			path = fmt.Sprintf("route_tables[%d]", ti)
		}
		if slices.Contains(gatewayServices, svc) {
			fix = fmt.Sprintf("add a Gateway endpoint for %s on route table %q, and let the app's groups open tcp 443 to prefix list %s", svc, tableName, servicePrefixList(region, svc))
		}
		if eps := n.endpoints("Interface"); len(eps) > 0 && !slices.Contains(gatewayServices, svc) {
			at, path = eps[0], "services"
		}
		if eps := n.endpoints("Gateway"); len(eps) > 0 && slices.Contains(gatewayServices, svc) {
			at, path = eps[0], "services"
			fix = fmt.Sprintf("add %s to the services of %s (and let the app's groups open tcp 443 to prefix list %s)", svc, eps[0].id, servicePrefixList(region, svc))
		}
		c.Hops = append(c.Hops, fail(from, to, at, path, problem, fix))
	}
	a.add(c)
}

func (a *analyzer) viaGateway(n vpcNet, svc, table string, groups []res, cidrs []string, region, from, to string) (Hop, bool) {
	for _, ep := range n.endpoints("Gateway") {
		if !slices.Contains(ep.strs("services"), svc) {
			continue
		}
		if !slices.Contains(ep.strs("route_tables"), table) {
			return fail(from, to, ep, "route_tables", fmt.Sprintf("gateway endpoint %s serves %s but not on route table %q of the app's subnets", ep.id, svc, table),
				fmt.Sprintf("add %q to route_tables of %s", table, ep.id)), true
		}
		pl := servicePrefixList(region, svc)
		r, ok := a.allows(groups, "egress", 443, peer{prefixList: pl, cidrs: []string{anywhere}})
		if !ok {
			return fail(from, to, groups0(groups, ep), "egress", fmt.Sprintf("no security group of the app (%s) lets it open tcp 443 to %s's prefix list", ids(groups), strings.ToUpper(svc)),
				fmt.Sprintf("add {protocol: tcp, from_port: 443, to_port: 443, prefix_list: %s} to the egress of one of the app's groups", pl)), true
		}
		return pass(from, to, fmt.Sprintf("gateway endpoint %s on route table %q; %s", ep.id, table, r.describe("egress"))), true
	}
	return Hop{}, false
}

func groups0(groups []res, or res) res {
	if len(groups) > 0 {
		return groups[len(groups)-1]
	}
	return or
}

func (a *analyzer) viaInterface(n vpcNet, svc, tier string, groups []res, cidrs []string, from, to string) (Hop, bool) {
	for _, ep := range n.endpoints("Interface") {
		if !slices.Contains(ep.strs("services"), svc) {
			continue
		}
		if !ep.boolean("private_dns") {
			return fail(from, to, ep, "private_dns", fmt.Sprintf("interface endpoint %s has private DNS off: the SDK's usual name for %s still resolves to the public endpoint, which the app cannot reach", ep.id, strings.ToUpper(svc)),
				"set private_dns: true"), true
		}
		epTier := ep.str("subnet_tier")
		epGroups := a.groupsOf(ep, "security_groups")
		epCIDRs := n.cidrs(epTier)
		out, ok := a.allows(groups, "egress", 443, peer{groups: epGroups, cidrs: epCIDRs})
		if !ok {
			return fail(from, to, groups0(groups, ep), "egress", fmt.Sprintf("no security group of the app (%s) lets it open tcp 443 to the endpoints' groups (%s)", ids(groups), ids(epGroups)),
				fmt.Sprintf("add {protocol: tcp, from_port: 443, to_port: 443, source: ${ref.%s.id}} to the egress of one of the app's groups", firstID(epGroups))), true
		}
		in, ok := a.allows(epGroups, "ingress", 443, peer{groups: groups, cidrs: cidrs})
		if !ok {
			return fail(from, to, groups0(epGroups, ep), "ingress", fmt.Sprintf("no security group of endpoint %s (%s) admits tcp 443 from the app", ep.id, ids(epGroups)),
				fmt.Sprintf("add {protocol: tcp, from_port: 443, to_port: 443, source: ${ref.%s.id}} to the ingress of %s", firstID(groups), firstID(epGroups))), true
		}
		if why, ok := n.naclPath(tier, cidrs, epTier, epCIDRs, 443); !ok {
			return fail(from, to, n.vpc, "network_acls", why, "allow the flow in the network ACLs"), true
		}
		return pass(from, to, fmt.Sprintf("interface endpoint %s (private DNS, %s subnets); %s; %s", ep.id, epTier, out.describe("egress"), in.describe("ingress"))), true
	}
	return Hop{}, false
}
