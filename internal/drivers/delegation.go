package drivers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"portal/internal/engine"
)

// NSResolver looks up the name servers public DNS gives for a name
// (*net.Resolver satisfies it).
type NSResolver interface {
	LookupNS(ctx context.Context, name string) ([]*net.NS, error)
}

// DNSDelegation delegates a hosted zone from its parent domain, the step
// without which nothing in the zone resolves on the internet and ACM never
// validates a certificate there.
//
// When the parent is a public hosted zone of the same account, the driver
// writes the NS records into it. When it lives outside (a registrar, or
// another account's zone), the driver cannot: the plan shows the NS records
// to add there (PlanNote), and whether public DNS already answers with them.
//
// Fields: zone (zone id), parent_domain. Outputs: name, name_servers
// (comma-joined), parent_zone (the parent's zone id when it is in the
// account), status (delegated, waiting, or in-account).
//
// The delegation has no tags of its own: it is the stack's when its zone
// is. A delegation into a zone of the account exists when the parent holds
// the zone's NS records; one outside exists once applied (the portal can
// only tell what to do) and its status says whether DNS agrees.
type DNSDelegation struct {
	// Resolver checks delegations outside the account; nil means
	// net.DefaultResolver.
	Resolver NSResolver
}

func (DNSDelegation) Type() string         { return "dns_delegation" }
func (DNSDelegation) ForceNew() []string   { return []string{"zone", "parent_domain"} }
func (DNSDelegation) GlobalRegion() string { return globalRegion }

// delegationState is what AWS and DNS say about a zone's delegation.
type delegationState struct {
	zoneID, name string
	ns           []string
	tags         map[string]string
	parentZone   string // the parent's zone id when it is a zone of the account
	inParent     bool   // the parent zone holds the zone's NS records
	publicNS     []string
	lookupErr    error
}

func (g DNSDelegation) state(ctx context.Context, env *engine.Env, zoneID, parent string) (*delegationState, error) {
	c := r53Client(env)
	out, err := c.GetHostedZone(ctx, &route53.GetHostedZoneInput{Id: aws.String(zoneID)})
	if engine.IsCode(err, "NoSuchHostedZone") {
		return nil, engine.ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("get hosted zone %s: %w", zoneID, err)
	}
	st := &delegationState{zoneID: bareZoneID(aws.ToString(out.HostedZone.Id)), name: r53Name(aws.ToString(out.HostedZone.Name))}
	if out.DelegationSet != nil {
		st.ns = out.DelegationSet.NameServers
	}
	if st.tags, err = r53ListTags(ctx, c, types.TagResourceTypeHostedzone, st.zoneID); err != nil {
		return nil, err
	}
	pz, err := c.ListHostedZonesByName(ctx, &route53.ListHostedZonesByNameInput{DNSName: aws.String(r53Name(parent) + ".")})
	if err != nil {
		return nil, fmt.Errorf("list hosted zones named %s: %w", parent, err)
	}
	for _, hz := range pz.HostedZones {
		if r53Name(aws.ToString(hz.Name)) == r53Name(parent) && (hz.Config == nil || !hz.Config.PrivateZone) {
			st.parentZone = bareZoneID(aws.ToString(hz.Id))
			break
		}
	}
	if st.parentZone != "" {
		rr, err := findRecord(ctx, c, recordKey{zone: st.parentZone, name: st.name, typ: string(types.RRTypeNs)})
		if err != nil {
			return nil, fmt.Errorf("list records of the parent zone %s: %w", st.parentZone, err)
		}
		if rr != nil {
			var have []string
			for _, v := range rr.ResourceRecords {
				have = append(have, strings.TrimSuffix(aws.ToString(v.Value), "."))
			}
			st.inParent = sameSet(have, trimDots(st.ns))
		}
		return st, nil
	}
	var r NSResolver = net.DefaultResolver
	if g.Resolver != nil {
		r = g.Resolver
	}
	lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	recs, err := r.LookupNS(lctx, st.name)
	st.lookupErr = err
	for _, n := range recs {
		st.publicNS = append(st.publicNS, strings.TrimSuffix(strings.ToLower(n.Host), "."))
	}
	return st, nil
}

func trimDots(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.TrimSuffix(strings.ToLower(s), ".")
	}
	return out
}

// delegated reports whether public DNS answers with the zone's servers.
func (st *delegationState) delegated() bool {
	return len(st.publicNS) > 0 && sameSet(st.publicNS, trimDots(st.ns))
}

// status is in-account, delegated, waiting (public DNS answers, without
// the zone's servers) or unverified (public DNS could not be asked: no
// network, as in the sandbox).
func (st *delegationState) status() string {
	switch {
	case st.parentZone != "":
		return "in-account"
	case st.delegated():
		return "delegated"
	}
	var dnsErr *net.DNSError
	if st.lookupErr != nil && !(errors.As(st.lookupErr, &dnsErr) && dnsErr.IsNotFound) {
		return "unverified"
	}
	return "waiting"
}

func (g DNSDelegation) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	zone := d.String("zone")
	if prior != nil && prior.PhysicalID != "" {
		zone, _, _ = strings.Cut(prior.PhysicalID, "@")
	}
	if !known(zone) {
		return nil, engine.ErrNotFound
	}
	parent := d.String("parent_domain")
	st, err := g.state(ctx, env, zone, parent)
	if err != nil {
		return nil, err
	}
	if st.parentZone != "" && !st.inParent {
		return nil, engine.ErrNotFound // the parent in the account does not delegate yet
	}
	if st.parentZone == "" && prior == nil {
		return nil, engine.ErrNotFound // outside: exists once applied (the portal only tells)
	}
	live := &engine.Live{
		PhysicalID: st.zoneID + "@" + r53Name(parent),
		Region:     d.Region,
		Outputs: map[string]string{"name": st.name, "name_servers": strings.Join(trimDots(st.ns), ","), "parent_zone": st.parentZone,
			"status": st.status(), "id": st.zoneID},
		// status is for the live re-check of "will it work"; never diffed.
		Fields: map[string]any{"zone": st.zoneID, "parent_domain": parent, "status": st.status()},
		Tags:   map[string]string{},
	}
	for _, t := range []string{engine.TagStack, engine.TagManaged, engine.TagVersion} {
		if v, ok := st.tags[t]; ok {
			live.Tags[t] = v
		}
	}
	if live.Tags[engine.TagStack] != "" {
		live.Tags[engine.TagResource] = d.ID
	}
	return live, nil
}

// PlanNote says what the delegation needs: nothing in the account, or the
// NS records to add at a parent outside it.
func (g DNSDelegation) PlanNote(d *engine.Desired, live *engine.Live) string {
	parent := d.String("parent_domain")
	switch {
	case live != nil && live.Outputs["status"] == "in-account":
		return fmt.Sprintf("delegated by its NS records in the parent zone %s of this account", parent)
	case live != nil && live.Outputs["status"] == "delegated":
		return fmt.Sprintf("public DNS answers with the zone's name servers: %s delegates it", parent)
	case live != nil:
		return fmt.Sprintf("%s is outside this account: add these NS records for %s there: %s. Certificates validated in this zone wait for them (public DNS does not answer with them yet)",
			parent, live.Outputs["name"], strings.ReplaceAll(live.Outputs["name_servers"], ",", ", "))
	}
	return fmt.Sprintf("once applied, the zone's name servers are shown here to be added as NS records at %s if that domain is outside this account; certificates validated in the zone wait for them", parent)
}

func (g DNSDelegation) put(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	parent := d.String("parent_domain")
	st, err := g.state(ctx, env, d.String("zone"), parent)
	if err != nil {
		return nil, err
	}
	if st.parentZone != "" {
		var recs []types.ResourceRecord
		for _, n := range st.ns {
			recs = append(recs, types.ResourceRecord{Value: aws.String(n)})
		}
		rr := &types.ResourceRecordSet{Name: aws.String(st.name), Type: types.RRTypeNs, TTL: aws.Int64(172800), ResourceRecords: recs}
		if err := (Route53Record{}).change(ctx, r53Client(env), st.parentZone, types.ChangeActionUpsert, rr); err != nil {
			return nil, err
		}
		env.Logf("delegated %s from %s (zone %s): %s", st.name, parent, st.parentZone, strings.Join(trimDots(st.ns), ", "))
	} else if st.delegated() {
		env.Logf("%s is delegated from %s: public DNS answers with its name servers", st.name, parent)
	} else {
		env.Logf("%s is outside this account: add NS records for %s there: %s; certificates validated in %s wait for them", parent, st.name, strings.Join(trimDots(st.ns), ", "), st.name)
	}
	return g.Read(ctx, env, d, &engine.Prior{PhysicalID: st.zoneID + "@" + r53Name(parent), Region: d.Region})
}

func (g DNSDelegation) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	return g.put(ctx, env, d)
}

func (g DNSDelegation) Update(ctx context.Context, env *engine.Env, d *engine.Desired, _ *engine.Live, _ []engine.FieldChange) (*engine.Live, error) {
	return g.put(ctx, env, d)
}

// Delete removes the NS records from a parent zone of the account; a parent
// outside keeps its records, which the log says to remove.
func (g DNSDelegation) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	zone, parent, _ := strings.Cut(live.PhysicalID, "@")
	pz := live.Outputs["parent_zone"]
	if pz == "" {
		env.Logf("%s is outside this account: remove the NS records of %s there", parent, live.Outputs["name"])
		return nil
	}
	c := r53Client(env)
	rr, err := findRecord(ctx, c, recordKey{zone: pz, name: live.Outputs["name"], typ: string(types.RRTypeNs)})
	if engine.IsCode(err, "NoSuchHostedZone") || (err == nil && rr == nil) {
		return nil
	} else if err != nil {
		return fmt.Errorf("list records of the parent zone %s: %w", pz, err)
	}
	if err := (Route53Record{}).change(ctx, c, pz, types.ChangeActionDelete, rr); err != nil {
		return err
	}
	env.Logf("removed the delegation of %s (zone %s) from %s", live.Outputs["name"], zone, parent)
	return nil
}
