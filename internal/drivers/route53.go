package drivers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"portal/internal/engine"
	"portal/internal/regions"
)

// cloudFrontZoneID is the hosted zone of every CloudFront distribution, the
// one alias records to a distribution name.
const cloudFrontZoneID = "Z2FDTNDATAQYW2"

// r53Wait bounds the wait for a change to reach all Route 53 servers
// (usually under a minute).
const r53Wait = 10 * time.Minute

func r53Client(env *engine.Env) *route53.Client {
	return route53.NewFromConfig(env.Config(globalRegion))
}

func r53Tags(tags map[string]string) []types.Tag {
	out := make([]types.Tag, 0, len(tags))
	for _, k := range sortedKeys(tags) {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

func r53TagMap(tags []types.Tag) map[string]string {
	out := make(map[string]string, len(tags))
	for _, t := range tags {
		out[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return out
}

func r53ListTags(ctx context.Context, c *route53.Client, typ types.TagResourceType, id string) (map[string]string, error) {
	out, err := c.ListTagsForResource(ctx, &route53.ListTagsForResourceInput{ResourceType: typ, ResourceId: aws.String(id)})
	if err != nil {
		return nil, fmt.Errorf("list tags of %s %s: %w", typ, id, err)
	}
	if out.ResourceTagSet == nil {
		return map[string]string{}, nil
	}
	return r53TagMap(out.ResourceTagSet.Tags), nil
}

func r53SetTags(ctx context.Context, c *route53.Client, typ types.TagResourceType, id string, tags map[string]string) error {
	if _, err := c.ChangeTagsForResource(ctx, &route53.ChangeTagsForResourceInput{ResourceType: typ, ResourceId: aws.String(id), AddTags: r53Tags(tags)}); err != nil {
		return fmt.Errorf("tag %s %s: %w", typ, id, err)
	}
	return nil
}

// r53WaitInSync waits until change id has reached every Route 53 server.
func r53WaitInSync(ctx context.Context, c *route53.Client, ci *types.ChangeInfo) error {
	if ci == nil || ci.Status == types.ChangeStatusInsync {
		return nil
	}
	if err := route53.NewResourceRecordSetsChangedWaiter(c).Wait(ctx, &route53.GetChangeInput{Id: ci.Id}, r53Wait); err != nil {
		return fmt.Errorf("wait for change %s: %w", aws.ToString(ci.Id), err)
	}
	return nil
}

// r53Name is a DNS name as the blueprint writes it: lower case, without
// the trailing dot, with the wildcard Route 53 escapes as \052 unescaped.
func r53Name(s string) string {
	return strings.ToLower(strings.TrimSuffix(strings.ReplaceAll(s, `\052`, "*"), "."))
}

func bareZoneID(id string) string { return strings.TrimPrefix(id, "/hostedzone/") }

// adoptByReference marks a resource found by the caller reference the
// portal derives for it, but lacking ownership tags, as the stack's: it
// was created by an attempt that crashed before tagging. The other
// ownership tags stay missing, so the engine's diff re-applies them.
func adoptByReference(env *engine.Env, tags map[string]string) map[string]string {
	if tags[engine.TagStack] == "" {
		tags[engine.TagStack] = env.Stack.ID
	}
	return tags
}

// ---------------------------------------------------------------- route53_zone

// Route53Zone manages a public hosted zone.
//
// Fields: name, description (the zone's comment). Outputs: zone_id (bare,
// without /hostedzone/), name, name_servers (comma-joined).
//
// Zones are created with a caller reference derived from the stack, the
// resource and the name, so a Create repeated after a crash returns the
// first zone. Delete refuses while the zone holds records other than its
// own SOA and NS: the portal deletes the records it created first (they
// depend on the zone), so anything left was made by someone else.
type Route53Zone struct{}

func (Route53Zone) Type() string         { return "route53_zone" }
func (Route53Zone) ForceNew() []string   { return []string{"name"} }
func (Route53Zone) GlobalRegion() string { return globalRegion }

func (z Route53Zone) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	c := r53Client(env)
	id := ""
	if prior != nil {
		id = prior.PhysicalID
	} else {
		name := d.String("name")
		if name == "" || engine.IsUnknown(name) {
			return nil, engine.ErrNotFound
		}
		var err error
		if id, err = z.find(ctx, c, env, d.ID, name); err != nil {
			return nil, err
		}
	}
	if id == "" {
		return nil, engine.ErrNotFound
	}
	out, err := c.GetHostedZone(ctx, &route53.GetHostedZoneInput{Id: aws.String(id)})
	if engine.IsCode(err, "NoSuchHostedZone") {
		return nil, engine.ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("get hosted zone %s: %w", id, err)
	}
	hz := out.HostedZone
	id = bareZoneID(aws.ToString(hz.Id))
	name := r53Name(aws.ToString(hz.Name))
	var ns []string
	if out.DelegationSet != nil {
		ns = out.DelegationSet.NameServers
	}
	live := &engine.Live{
		PhysicalID: id,
		Region:     d.Region,
		Outputs:    map[string]string{"zone_id": id, "name": name, "name_servers": strings.Join(ns, ",")},
		Fields:     map[string]any{"name": name},
	}
	if d.Has("description") {
		comment := ""
		if hz.Config != nil {
			comment = aws.ToString(hz.Config.Comment)
		}
		live.Fields["description"] = comment
	}
	if live.Tags, err = r53ListTags(ctx, c, types.TagResourceTypeHostedzone, id); err != nil {
		return nil, err
	}
	if aws.ToString(hz.CallerReference) == z.reference(env, d.ID, name) {
		live.Tags = adoptByReference(env, live.Tags)
	}
	return live, nil
}

// find returns the public zone called name that the stack owns (by tags or
// caller reference), else the first public zone of that name (which the
// engine reports as not owned), else "".
func (z Route53Zone) find(ctx context.Context, c *route53.Client, env *engine.Env, resource, name string) (string, error) {
	fqdn := r53Name(name) + "."
	in := &route53.ListHostedZonesByNameInput{DNSName: aws.String(fqdn)}
	first := ""
	for {
		out, err := c.ListHostedZonesByName(ctx, in)
		if err != nil {
			return "", fmt.Errorf("list hosted zones named %s: %w", name, err)
		}
		for _, hz := range out.HostedZones {
			if r53Name(aws.ToString(hz.Name)) != r53Name(name) {
				return first, nil // listed in name order: past ours
			}
			if hz.Config != nil && hz.Config.PrivateZone {
				continue
			}
			id := bareZoneID(aws.ToString(hz.Id))
			if aws.ToString(hz.CallerReference) == z.reference(env, resource, name) {
				return id, nil
			}
			tags, err := r53ListTags(ctx, c, types.TagResourceTypeHostedzone, id)
			if err != nil {
				return "", err
			}
			if tags[engine.TagStack] == env.Stack.ID && tags[engine.TagResource] == resource {
				return id, nil
			}
			if first == "" {
				first = id
			}
		}
		if !out.IsTruncated {
			return first, nil
		}
		in.DNSName, in.HostedZoneId = out.NextDNSName, out.NextHostedZoneId
	}
}

func (Route53Zone) reference(env *engine.Env, resource, name string) string {
	return clientToken(env, resource, "route53_zone", r53Name(name))
}

func (z Route53Zone) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	c := r53Client(env)
	name := d.String("name")
	in := &route53.CreateHostedZoneInput{Name: aws.String(name), CallerReference: aws.String(z.reference(env, d.ID, name))}
	if desc := d.String("description"); desc != "" {
		in.HostedZoneConfig = &types.HostedZoneConfig{Comment: aws.String(desc)}
	}
	out, err := c.CreateHostedZone(ctx, in)
	if engine.IsCode(err, "HostedZoneAlreadyExists") {
		// Our reference was used before: by a zone that still exists (a
		// crashed attempt; adopt it) or by one deleted since (Route 53
		// remembers; make the reference unique).
		if id, ferr := z.find(ctx, c, env, d.ID, name); ferr == nil && id != "" {
			return z.finish(ctx, c, env, d, id, nil)
		}
		in.CallerReference = aws.String(fmt.Sprintf("%s-%d", aws.ToString(in.CallerReference), time.Now().Unix()))
		out, err = c.CreateHostedZone(ctx, in)
	}
	if err != nil {
		return nil, fmt.Errorf("create hosted zone %s: %w", name, err)
	}
	id := bareZoneID(aws.ToString(out.HostedZone.Id))
	env.Logf("created hosted zone %s (%s)", name, id)
	return z.finish(ctx, c, env, d, id, out.ChangeInfo)
}

func (z Route53Zone) finish(ctx context.Context, c *route53.Client, env *engine.Env, d *engine.Desired, id string, ci *types.ChangeInfo) (*engine.Live, error) {
	if err := r53SetTags(ctx, c, types.TagResourceTypeHostedzone, id, d.Tags); err != nil {
		return nil, err
	}
	if err := r53WaitInSync(ctx, c, ci); err != nil {
		return nil, err
	}
	return z.Read(ctx, env, d, &engine.Prior{PhysicalID: id, Region: d.Region})
}

func (z Route53Zone) Update(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live, changes []engine.FieldChange) (*engine.Live, error) {
	c := r53Client(env)
	id := live.PhysicalID
	for _, ch := range changes {
		switch ch.Path {
		case "description":
			if _, err := c.UpdateHostedZoneComment(ctx, &route53.UpdateHostedZoneCommentInput{Id: aws.String(id), Comment: aws.String(d.String("description"))}); err != nil {
				return nil, fmt.Errorf("update comment of hosted zone %s: %w", id, err)
			}
		case "tags":
			if err := r53SetTags(ctx, c, types.TagResourceTypeHostedzone, id, d.Tags); err != nil {
				return nil, err
			}
		}
	}
	return z.Read(ctx, env, d, &engine.Prior{PhysicalID: id, Region: d.Region})
}

// Delete deletes the zone if only its SOA and apex NS records are left.
func (Route53Zone) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	c := r53Client(env)
	id := live.PhysicalID
	apex := live.Outputs["name"]
	var others []string
	pg := route53.NewListResourceRecordSetsPaginator(c, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(id)})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if engine.IsCode(err, "NoSuchHostedZone") {
			return nil
		} else if err != nil {
			return fmt.Errorf("list records of hosted zone %s: %w", id, err)
		}
		for _, rr := range page.ResourceRecordSets {
			name := r53Name(aws.ToString(rr.Name))
			if (rr.Type == types.RRTypeSoa || rr.Type == types.RRTypeNs) && (apex == "" || name == apex) {
				continue
			}
			others = append(others, fmt.Sprintf("%s %s", name, rr.Type))
		}
	}
	if len(others) > 0 {
		shown := others
		if len(shown) > 5 {
			shown = append(shown[:5:5], fmt.Sprintf("and %d more", len(others)-5))
		}
		return fmt.Errorf("hosted zone %s (%s) still holds %d record(s) the portal did not create (%s): delete or move them, then destroy again",
			apex, id, len(others), strings.Join(shown, ", "))
	}
	out, err := c.DeleteHostedZone(ctx, &route53.DeleteHostedZoneInput{Id: aws.String(id)})
	if engine.IsCode(err, "NoSuchHostedZone") {
		return nil
	} else if err != nil {
		return fmt.Errorf("delete hosted zone %s: %w", id, err)
	}
	env.Logf("deleted hosted zone %s (%s)", apex, id)
	return r53WaitInSync(ctx, c, out.ChangeInfo)
}

// ---------------------------------------------------------------- route53_health_check

// Route53HealthCheck manages an HTTP(S) health check of a name (a load
// balancer's), tagged with the ownership tags and a Name.
//
// Fields: fqdn, port, path, protocol (HTTP or HTTPS; a change replaces
// the check), failure_threshold. Outputs: id.
//
// Without a record it is found by its ownership tags, or by the caller
// reference the portal derives for it (a Create that crashed before
// tagging).
type Route53HealthCheck struct{}

func (Route53HealthCheck) Type() string         { return "route53_health_check" }
func (Route53HealthCheck) ForceNew() []string   { return []string{"protocol"} }
func (Route53HealthCheck) GlobalRegion() string { return globalRegion }

func (Route53HealthCheck) reference(env *engine.Env, resource, protocol string) string {
	return clientToken(env, resource, "route53_health_check", protocol)
}

func (h Route53HealthCheck) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	c := r53Client(env)
	id := ""
	if prior != nil {
		id = prior.PhysicalID
	} else {
		var err error
		if id, err = h.find(ctx, c, env, d); err != nil {
			return nil, err
		}
	}
	if id == "" {
		return nil, engine.ErrNotFound
	}
	out, err := c.GetHealthCheck(ctx, &route53.GetHealthCheckInput{HealthCheckId: aws.String(id)})
	if engine.IsCode(err, "NoSuchHealthCheck") {
		return nil, engine.ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("get health check %s: %w", id, err)
	}
	hc := out.HealthCheck
	cfg := hc.HealthCheckConfig
	if cfg == nil {
		cfg = &types.HealthCheckConfig{}
	}
	fqdn := aws.ToString(cfg.FullyQualifiedDomainName)
	if want := d.String("fqdn"); strings.EqualFold(want, fqdn) {
		fqdn = want // DNS names are case-insensitive
	}
	live := &engine.Live{
		PhysicalID: id,
		Region:     d.Region,
		Outputs:    map[string]string{"id": id},
		Fields: map[string]any{
			"fqdn":              fqdn,
			"port":              int64(aws.ToInt32(cfg.Port)),
			"path":              aws.ToString(cfg.ResourcePath),
			"protocol":          string(cfg.Type),
			"failure_threshold": int64(aws.ToInt32(cfg.FailureThreshold)),
		},
	}
	if live.Tags, err = r53ListTags(ctx, c, types.TagResourceTypeHealthcheck, id); err != nil {
		return nil, err
	}
	if aws.ToString(hc.CallerReference) == h.reference(env, d.ID, string(cfg.Type)) {
		live.Tags = adoptByReference(env, live.Tags)
	}
	return live, nil
}

// find looks for the stack's health check among all of the account's: by
// ownership tags first, then by caller reference.
func (h Route53HealthCheck) find(ctx context.Context, c *route53.Client, env *engine.Env, d *engine.Desired) (string, error) {
	var ids []string
	byRef := ""
	ref := h.reference(env, d.ID, d.String("protocol"))
	pg := route53.NewListHealthChecksPaginator(c, &route53.ListHealthChecksInput{})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("list health checks: %w", err)
		}
		for _, hc := range page.HealthChecks {
			ids = append(ids, aws.ToString(hc.Id))
			if aws.ToString(hc.CallerReference) == ref {
				byRef = aws.ToString(hc.Id)
			}
		}
	}
	for start := 0; start < len(ids); start += 10 { // the API takes ten at a time
		batch := ids[start:min(start+10, len(ids))]
		out, err := c.ListTagsForResources(ctx, &route53.ListTagsForResourcesInput{ResourceType: types.TagResourceTypeHealthcheck, ResourceIds: batch})
		if err != nil {
			return "", fmt.Errorf("list tags of health checks: %w", err)
		}
		for _, set := range out.ResourceTagSets {
			tags := r53TagMap(set.Tags)
			if tags[engine.TagStack] == env.Stack.ID && tags[engine.TagResource] == d.ID {
				return aws.ToString(set.ResourceId), nil
			}
		}
	}
	return byRef, nil
}

func (h Route53HealthCheck) config(d *engine.Desired) (*types.HealthCheckConfig, error) {
	proto := types.HealthCheckType(d.String("protocol"))
	if proto != types.HealthCheckTypeHttps && proto != types.HealthCheckTypeHttp {
		return nil, fmt.Errorf("protocol %q: want HTTP or HTTPS", proto)
	}
	cfg := &types.HealthCheckConfig{
		Type:                     proto,
		FullyQualifiedDomainName: aws.String(d.String("fqdn")),
		RequestInterval:          aws.Int32(30),
	}
	if d.Has("port") {
		cfg.Port = aws.Int32(int32(d.Int("port")))
	}
	if p := d.String("path"); p != "" {
		cfg.ResourcePath = aws.String(p)
	}
	if d.Has("failure_threshold") {
		cfg.FailureThreshold = aws.Int32(int32(d.Int("failure_threshold")))
	}
	if proto == types.HealthCheckTypeHttps {
		// The load balancer's certificate is chosen by SNI.
		cfg.EnableSNI = aws.Bool(true)
	}
	return cfg, nil
}

func (h Route53HealthCheck) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	c := r53Client(env)
	cfg, err := h.config(d)
	if err != nil {
		return nil, err
	}
	in := &route53.CreateHealthCheckInput{CallerReference: aws.String(h.reference(env, d.ID, string(cfg.Type))), HealthCheckConfig: cfg}
	out, err := c.CreateHealthCheck(ctx, in)
	if engine.IsCode(err, "HealthCheckAlreadyExists") {
		// The reference belongs to a check deleted since, or one with other
		// settings: make it unique (Read already looked for ours).
		in.CallerReference = aws.String(fmt.Sprintf("%s-%d", aws.ToString(in.CallerReference), time.Now().Unix()))
		out, err = c.CreateHealthCheck(ctx, in)
	}
	if err != nil {
		return nil, fmt.Errorf("create health check of %s: %w", d.String("fqdn"), err)
	}
	id := aws.ToString(out.HealthCheck.Id)
	env.Logf("created health check %s of %s://%s:%d%s", id, cfg.Type, d.String("fqdn"), aws.ToInt32(cfg.Port), d.String("path"))
	if err := r53SetTags(ctx, c, types.TagResourceTypeHealthcheck, id, h.tags(env, d)); err != nil {
		return nil, err
	}
	return h.Read(ctx, env, d, &engine.Prior{PhysicalID: id, Region: d.Region})
}

// tags adds a Name (shown in the console's list) to the ownership tags.
func (Route53HealthCheck) tags(env *engine.Env, d *engine.Desired) map[string]string {
	out := map[string]string{"Name": env.Stack.ID + "-" + d.ID}
	for k, v := range d.Tags {
		out[k] = v
	}
	return out
}

func (h Route53HealthCheck) Update(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live, changes []engine.FieldChange) (*engine.Live, error) {
	c := r53Client(env)
	id := live.PhysicalID
	cfg, err := h.config(d)
	if err != nil {
		return nil, err
	}
	settings := false
	for _, ch := range changes {
		switch ch.Path {
		case "tags":
			if err := r53SetTags(ctx, c, types.TagResourceTypeHealthcheck, id, h.tags(env, d)); err != nil {
				return nil, err
			}
		default:
			settings = true
		}
	}
	if settings {
		cur, err := c.GetHealthCheck(ctx, &route53.GetHealthCheckInput{HealthCheckId: aws.String(id)})
		if err != nil {
			return nil, fmt.Errorf("get health check %s: %w", id, err)
		}
		// HealthCheckVersion makes Route 53 refuse the update if someone
		// changed the check since we read it.
		in := &route53.UpdateHealthCheckInput{
			HealthCheckId:            aws.String(id),
			HealthCheckVersion:       cur.HealthCheck.HealthCheckVersion,
			FullyQualifiedDomainName: cfg.FullyQualifiedDomainName,
			Port:                     cfg.Port,
			ResourcePath:             cfg.ResourcePath,
			FailureThreshold:         cfg.FailureThreshold,
			EnableSNI:                cfg.EnableSNI,
		}
		if _, err := c.UpdateHealthCheck(ctx, in); err != nil {
			return nil, fmt.Errorf("update health check %s: %w", id, err)
		}
		env.Logf("updated health check %s", id)
	}
	return h.Read(ctx, env, d, &engine.Prior{PhysicalID: id, Region: d.Region})
}

func (Route53HealthCheck) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	c := r53Client(env)
	if _, err := c.DeleteHealthCheck(ctx, &route53.DeleteHealthCheckInput{HealthCheckId: aws.String(live.PhysicalID)}); err != nil && !engine.IsCode(err, "NoSuchHealthCheck") {
		return fmt.Errorf("delete health check %s: %w", live.PhysicalID, err)
	}
	env.Logf("deleted health check %s", live.PhysicalID)
	return nil
}

// ---------------------------------------------------------------- route53_record

// Route53Record manages one alias record (A or AAAA) with simple, latency,
// geolocation or failover routing, written with UPSERT and deleted with a
// DELETE of the exact record Route 53 holds.
//
// Fields: zone (zone id), name, record_type, routing, set_identifier,
// latency_region, geolocation {continent | country}, failover
// (PRIMARY | SECONDARY), health_check (id), alias {target,
// evaluate_target_health}. zone, name, record_type, routing and
// set_identifier identify the record: a change replaces it.
// Outputs: fqdn.
//
// The alias target is a load balancer's DNS name (its canonical hosted
// zone is looked up with elbv2 DescribeLoadBalancers in the region the
// name carries, else the latency region, else the stack's) or a CloudFront
// distribution's (zone Z2FDTNDATAQYW2).
//
// Records cannot carry tags: their ownership is their zone's. Live.Tags
// reports the zone's ownership tags with this resource's id, so a record in
// a zone the stack owns is the stack's, and one in anybody else's zone is
// not.
type Route53Record struct{}

func (Route53Record) Type() string { return "route53_record" }
func (Route53Record) ForceNew() []string {
	return []string{"zone", "name", "record_type", "routing", "set_identifier"}
}
func (Route53Record) GlobalRegion() string { return globalRegion }

// recordKey identifies a record set; its string form is the physical id.
type recordKey struct{ zone, name, typ, setID string }

func (k recordKey) String() string {
	s := k.zone + "/" + k.name + "/" + k.typ
	if k.setID != "" {
		s += "/" + k.setID
	}
	return s
}

func parseRecordKey(s string) (recordKey, bool) {
	p := strings.SplitN(s, "/", 4)
	if len(p) < 3 {
		return recordKey{}, false
	}
	k := recordKey{zone: p[0], name: p[1], typ: p[2]}
	if len(p) == 4 {
		k.setID = p[3]
	}
	return k, true
}

func desiredRecordKey(d *engine.Desired) recordKey {
	k := recordKey{zone: bareZoneID(d.String("zone")), name: r53Name(d.String("name")), typ: d.String("record_type")}
	if d.String("routing") != "simple" {
		k.setID = d.String("set_identifier")
	}
	return k
}

// findRecord returns the record set k names, or nil.
func findRecord(ctx context.Context, c *route53.Client, k recordKey) (*types.ResourceRecordSet, error) {
	pg := route53.NewListResourceRecordSetsPaginator(c, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(k.zone)})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for i, rr := range page.ResourceRecordSets {
			if r53Name(aws.ToString(rr.Name)) == k.name && string(rr.Type) == k.typ && aws.ToString(rr.SetIdentifier) == k.setID {
				return &page.ResourceRecordSets[i], nil
			}
		}
	}
	return nil, nil
}

func (r Route53Record) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	c := r53Client(env)
	k := desiredRecordKey(d)
	if prior != nil {
		var ok bool
		if k, ok = parseRecordKey(prior.PhysicalID); !ok {
			return nil, fmt.Errorf("record id %q: want zone/name/type[/set identifier]", prior.PhysicalID)
		}
	}
	if k.zone == "" || k.name == "" || engine.IsUnknown(k.zone) || engine.IsUnknown(k.name) {
		return nil, engine.ErrNotFound // its zone is known only after apply
	}
	rr, err := findRecord(ctx, c, k)
	if engine.IsCode(err, "NoSuchHostedZone") {
		return nil, engine.ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("list records of hosted zone %s: %w", k.zone, err)
	}
	if rr == nil {
		return nil, engine.ErrNotFound
	}
	zoneTags, err := r53ListTags(ctx, c, types.TagResourceTypeHostedzone, k.zone)
	if err != nil {
		return nil, err
	}
	tags := map[string]string{}
	for _, t := range []string{engine.TagStack, engine.TagManaged, engine.TagVersion} {
		if v, ok := zoneTags[t]; ok {
			tags[t] = v
		}
	}
	// A jurisdiction stack writes its names (origin, regions, certificate
	// validation) into its environment layer's zone: a record there is the
	// stack's as much as one in a zone of its own.
	if tags[engine.TagStack] == regions.LayerID(env.Stack.Environment) && tags[engine.TagManaged] == "portal" {
		tags[engine.TagStack] = env.Stack.ID
	}
	if tags[engine.TagStack] != "" {
		tags[engine.TagResource] = d.ID
	}
	live := &engine.Live{
		PhysicalID: k.String(),
		Region:     d.Region,
		Outputs:    map[string]string{"fqdn": k.name},
		Fields:     r.fields(d, k, rr),
		Tags:       tags,
	}
	return live, nil
}

// fields shapes rr like the blueprint's fields.
func (Route53Record) fields(d *engine.Desired, k recordKey, rr *types.ResourceRecordSet) map[string]any {
	routing := "simple"
	switch {
	case rr.Region != "":
		routing = "latency"
	case rr.GeoLocation != nil:
		routing = "geolocation"
	case rr.Failover != "":
		routing = "failover"
	}
	f := map[string]any{
		"zone":           k.zone,
		"name":           k.name,
		"record_type":    string(rr.Type),
		"routing":        routing,
		"set_identifier": aws.ToString(rr.SetIdentifier),
		"latency_region": string(rr.Region),
		"failover":       string(rr.Failover),
		"health_check":   aws.ToString(rr.HealthCheckId),
	}
	if want := d.String("name"); r53Name(want) == k.name {
		f["name"] = want
	}
	if g := rr.GeoLocation; g != nil {
		geo := map[string]any{}
		if g.ContinentCode != nil {
			geo["continent"] = aws.ToString(g.ContinentCode)
		}
		if g.CountryCode != nil {
			geo["country"] = aws.ToString(g.CountryCode)
		}
		f["geolocation"] = geo
	}
	if a := rr.AliasTarget; a != nil {
		target := strings.TrimSuffix(aws.ToString(a.DNSName), ".")
		if want := d.String("alias.target"); strings.EqualFold(strings.TrimSuffix(want, "."), target) {
			target = want
		}
		alias := map[string]any{"target": target, "evaluate_target_health": a.EvaluateTargetHealth}
		if _, set := d.Map("alias")["evaluate_target_health"]; !set && !a.EvaluateTargetHealth {
			delete(alias, "evaluate_target_health") // the default, left out of the blueprint
		}
		f["alias"] = alias
	}
	return f
}

// recordSet builds the record set d asks for.
func (r Route53Record) recordSet(ctx context.Context, env *engine.Env, d *engine.Desired) (*types.ResourceRecordSet, error) {
	k := desiredRecordKey(d)
	rr := &types.ResourceRecordSet{Name: aws.String(k.name), Type: types.RRType(k.typ)}
	routing := d.String("routing")
	if routing != "simple" {
		if k.setID == "" {
			return nil, fmt.Errorf("set_identifier is required with %s routing", routing)
		}
		rr.SetIdentifier = aws.String(k.setID)
	}
	switch routing {
	case "simple":
	case "latency":
		region := d.String("latency_region")
		if region == "" {
			region = env.Stack.Region
		}
		rr.Region = types.ResourceRecordSetRegion(region)
	case "geolocation":
		g := &types.GeoLocation{}
		if v := d.String("geolocation.continent"); v != "" {
			g.ContinentCode = aws.String(v)
		}
		if v := d.String("geolocation.country"); v != "" {
			g.CountryCode = aws.String(v)
		}
		if g.ContinentCode == nil && g.CountryCode == nil {
			return nil, fmt.Errorf("geolocation: set continent or country for geolocation routing")
		}
		rr.GeoLocation = g
	case "failover":
		fo := types.ResourceRecordSetFailover(d.String("failover"))
		if fo != types.ResourceRecordSetFailoverPrimary && fo != types.ResourceRecordSetFailoverSecondary {
			return nil, fmt.Errorf("failover %q: want PRIMARY or SECONDARY", fo)
		}
		rr.Failover = fo
	default:
		return nil, fmt.Errorf("routing %q: want simple, latency, geolocation or failover", routing)
	}
	if hc := d.String("health_check"); hc != "" {
		rr.HealthCheckId = aws.String(hc)
	}
	target := strings.TrimSuffix(d.String("alias.target"), ".")
	if target == "" {
		return nil, fmt.Errorf("alias.target is required")
	}
	zone, err := r.aliasZone(ctx, env, d, k.zone, target)
	if err != nil {
		return nil, err
	}
	rr.AliasTarget = &types.AliasTarget{DNSName: aws.String(target), HostedZoneId: aws.String(zone), EvaluateTargetHealth: d.Bool("alias.evaluate_target_health")}
	return rr, nil
}

// aliasZone returns the hosted zone of an alias target: CloudFront's fixed
// zone, a load balancer's canonical hosted zone, or the record's own zone
// for another record of it (Route 53 aliases to records of the same zone
// only).
func (Route53Record) aliasZone(ctx context.Context, env *engine.Env, d *engine.Desired, zoneID, target string) (string, error) {
	host := strings.ToLower(target)
	if strings.HasSuffix(host, ".cloudfront.net") {
		return cloudFrontZoneID, nil
	}
	if !strings.HasSuffix(host, ".elb.amazonaws.com") {
		hz, err := r53Client(env).GetHostedZone(ctx, &route53.GetHostedZoneInput{Id: aws.String(zoneID)})
		if err != nil {
			return "", fmt.Errorf("alias.target %s: get hosted zone %s: %w", target, zoneID, err)
		}
		if zone := r53Name(aws.ToString(hz.HostedZone.Name)); host == zone || strings.HasSuffix(host, "."+zone) {
			return zoneID, nil
		}
		return "", fmt.Errorf("alias.target %s: not a load balancer (*.elb.amazonaws.com), a CloudFront distribution (*.cloudfront.net) or a record of the zone %s", target, r53Name(aws.ToString(hz.HostedZone.Name)))
	}
	host = strings.TrimPrefix(host, "dualstack.")
	// name-123.eu-central-1.elb.amazonaws.com carries its region.
	var regions []string
	if labels := strings.Split(strings.TrimSuffix(host, ".elb.amazonaws.com"), "."); len(labels) >= 2 {
		regions = append(regions, labels[len(labels)-1])
	}
	for _, r := range []string{d.String("latency_region"), env.Stack.Region} {
		if r != "" && !slices.Contains(regions, r) {
			regions = append(regions, r)
		}
	}
	for _, region := range regions {
		c := elb.NewFromConfig(env.Config(region))
		pg := elb.NewDescribeLoadBalancersPaginator(c, &elb.DescribeLoadBalancersInput{})
		for pg.HasMorePages() {
			page, err := pg.NextPage(ctx)
			if err != nil {
				return "", fmt.Errorf("alias.target %s: describe load balancers in %s: %w", target, region, err)
			}
			for _, lb := range page.LoadBalancers {
				if strings.EqualFold(aws.ToString(lb.DNSName), host) {
					return aws.ToString(lb.CanonicalHostedZoneId), nil
				}
			}
		}
	}
	return "", fmt.Errorf("alias.target %s: no load balancer has that DNS name in %s", target, strings.Join(regions, ", "))
}

// change sends one change of rr to zone and waits until it is in sync.
func (Route53Record) change(ctx context.Context, c *route53.Client, zone string, action types.ChangeAction, rr *types.ResourceRecordSet) error {
	out, err := c.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(zone),
		ChangeBatch:  &types.ChangeBatch{Changes: []types.Change{{Action: action, ResourceRecordSet: rr}}},
	})
	if err != nil {
		return fmt.Errorf("%s record %s %s in zone %s: %w", strings.ToLower(string(action)), aws.ToString(rr.Name), rr.Type, zone, err)
	}
	return r53WaitInSync(ctx, c, out.ChangeInfo)
}

func (r Route53Record) upsert(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	c := r53Client(env)
	rr, err := r.recordSet(ctx, env, d)
	if err != nil {
		return nil, err
	}
	k := desiredRecordKey(d)
	if err := r.change(ctx, c, k.zone, types.ChangeActionUpsert, rr); err != nil {
		return nil, err
	}
	env.Logf("record %s %s -> %s (%s routing)", k.name, k.typ, aws.ToString(rr.AliasTarget.DNSName), d.String("routing"))
	return r.Read(ctx, env, d, &engine.Prior{PhysicalID: k.String(), Region: d.Region})
}

func (r Route53Record) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	return r.upsert(ctx, env, d)
}

func (r Route53Record) Update(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live, changes []engine.FieldChange) (*engine.Live, error) {
	// Tags are the zone's: nothing to do for them here.
	return r.upsert(ctx, env, d)
}

// Delete deletes exactly the record Route 53 holds (a DELETE must match
// it in every value).
func (r Route53Record) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	c := r53Client(env)
	k, ok := parseRecordKey(live.PhysicalID)
	if !ok {
		return fmt.Errorf("record id %q: want zone/name/type[/set identifier]", live.PhysicalID)
	}
	rr, err := findRecord(ctx, c, k)
	if engine.IsCode(err, "NoSuchHostedZone") {
		return nil
	} else if err != nil {
		return fmt.Errorf("list records of hosted zone %s: %w", k.zone, err)
	}
	if rr == nil {
		return nil
	}
	if err := r.change(ctx, c, k.zone, types.ChangeActionDelete, rr); err != nil {
		return err
	}
	env.Logf("deleted record %s", k)
	return nil
}
