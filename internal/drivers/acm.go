package drivers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"

	"portal/internal/engine"
	"portal/internal/regions"
)

// ACMCertificate requests a public certificate validated by DNS: it writes
// the validation records into a Route 53 zone and waits until ACM has
// issued the certificate, so listeners and distributions can use it.
//
// Fields: domain, alternative_names, validation_zone (a zone id).
// Outputs: arn, id, status.
//
// ACM validates only once the zone answers on the internet, that is once
// its parent delegates it. When the certificate is not issued within a few
// minutes, the driver asks public DNS for the validation records: if they
// do not resolve, it stops at once, saying the zone is not delegated yet
// (the environment layer's plan lists the NS records to add at the parent),
// rather than wait out the 45 minutes issuance may take.
//
// ACM gives one account the same validation record for the same name, so
// certificates of several stacks covering one name (the environment's
// origin hostname) share it: Delete removes only records no other
// certificate of the account's stack regions names.
type ACMCertificate struct {
	// Resolver checks validation records in public DNS; nil means
	// net.DefaultResolver.
	Resolver CNAMEResolver
}

// CNAMEResolver looks a name's CNAME up in public DNS (*net.Resolver
// satisfies it).
type CNAMEResolver interface {
	LookupCNAME(ctx context.Context, host string) (string, error)
}

// certFirstWait is how long issuance is awaited before the driver checks
// that the validation records resolve at all.
const certFirstWait = 3 * time.Minute

func (ACMCertificate) Type() string       { return "acm_certificate" }
func (ACMCertificate) ForceNew() []string { return []string{"domain", "alternative_names"} }

// certIssueTimeout bounds the wait for issuance; DNS validation usually
// takes minutes on AWS (moto issues at once in the sandbox).
const certIssueTimeout = 45 * time.Minute

func (a ACMCertificate) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	c := acm.NewFromConfig(env.Config(d.Region))
	arn := ""
	if prior != nil {
		arn = prior.PhysicalID
	} else {
		found, err := a.find(ctx, c, env, d)
		if err != nil {
			return nil, err
		}
		arn = found
	}
	out, err := c.DescribeCertificate(ctx, &acm.DescribeCertificateInput{CertificateArn: aws.String(arn)})
	if engine.IsCode(err, "ResourceNotFoundException") {
		return nil, engine.ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("describe certificate %s: %w", arn, err)
	}
	cert := out.Certificate
	domain := aws.ToString(cert.DomainName)
	var sans []any
	for _, n := range cert.SubjectAlternativeNames {
		if n != domain {
			sans = append(sans, n)
		}
	}
	live := &engine.Live{
		PhysicalID: arn,
		Region:     d.Region,
		Outputs:    map[string]string{"arn": arn, "id": arn[strings.LastIndex(arn, "/")+1:], "status": string(cert.Status)},
		Fields:     map[string]any{"domain": domain},
		Tags:       map[string]string{},
	}
	// The zone holding the validation records, so Delete can remove them.
	if z := d.String("validation_zone"); z != "" && !engine.IsUnknown(z) {
		live.Outputs["validation_zone"] = z
	} else if prior != nil && prior.Outputs["validation_zone"] != "" {
		live.Outputs["validation_zone"] = prior.Outputs["validation_zone"]
	}
	if d.Has("alternative_names") {
		var names []string
		for _, n := range sans {
			names = append(names, n.(string))
		}
		// ACM lists names in its own order: the same set is no change.
		live.Fields["alternative_names"] = inDesiredOrder(names, d.Strings("alternative_names"))
	}
	tags, err := c.ListTagsForCertificate(ctx, &acm.ListTagsForCertificateInput{CertificateArn: aws.String(arn)})
	if err != nil {
		return nil, fmt.Errorf("tags of certificate %s: %w", arn, err)
	}
	for _, t := range tags.Tags {
		live.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return live, nil
}

// find looks for this stack's certificate for d among the account's
// certificates of d's domain, by ownership tags.
func (ACMCertificate) find(ctx context.Context, c *acm.Client, env *engine.Env, d *engine.Desired) (string, error) {
	p := acm.NewListCertificatesPaginator(c, &acm.ListCertificatesInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("list certificates: %w", err)
		}
		for _, s := range page.CertificateSummaryList {
			if aws.ToString(s.DomainName) != d.String("domain") {
				continue
			}
			tags, err := c.ListTagsForCertificate(ctx, &acm.ListTagsForCertificateInput{CertificateArn: s.CertificateArn})
			if err != nil {
				return "", fmt.Errorf("tags of certificate %s: %w", aws.ToString(s.CertificateArn), err)
			}
			var stack, res string
			for _, t := range tags.Tags {
				switch aws.ToString(t.Key) {
				case engine.TagStack:
					stack = aws.ToString(t.Value)
				case engine.TagResource:
					res = aws.ToString(t.Value)
				}
			}
			if stack == env.Stack.ID && res == d.ID {
				return aws.ToString(s.CertificateArn), nil
			}
		}
	}
	return "", engine.ErrNotFound
}

func acmTags(tags map[string]string) []acmtypes.Tag {
	out := make([]acmtypes.Tag, 0, len(tags))
	for _, k := range sortedKeys(tags) {
		out = append(out, acmtypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

func (a ACMCertificate) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	c := acm.NewFromConfig(env.Config(d.Region))
	// ACM takes idempotency tokens of at most 32 word characters.
	token := strings.ReplaceAll(clientToken(env, d.ID), "-", "")[:32]
	out, err := c.RequestCertificate(ctx, &acm.RequestCertificateInput{
		DomainName:              aws.String(d.String("domain")),
		SubjectAlternativeNames: d.Strings("alternative_names"),
		ValidationMethod:        acmtypes.ValidationMethodDns,
		IdempotencyToken:        aws.String(token),
		Tags:                    acmTags(d.Tags),
	})
	if err != nil {
		return nil, fmt.Errorf("request certificate for %s: %w", d.String("domain"), err)
	}
	arn := aws.ToString(out.CertificateArn)
	env.Logf("requested certificate %s for %s", arn, d.String("domain"))
	if err := a.validate(ctx, c, env, d, arn); err != nil {
		return nil, err
	}
	return a.Read(ctx, env, d, &engine.Prior{PhysicalID: arn, Region: d.Region})
}

// validationRecords waits until ACM has published the DNS records that
// prove control of the names, and returns them.
func validationRecords(ctx context.Context, c *acm.Client, arn string) ([]acmtypes.ResourceRecord, error) {
	for attempt := 0; ; attempt++ {
		out, err := c.DescribeCertificate(ctx, &acm.DescribeCertificateInput{CertificateArn: aws.String(arn)})
		if err != nil {
			return nil, fmt.Errorf("describe certificate %s: %w", arn, err)
		}
		var recs []acmtypes.ResourceRecord
		ready := true
		for _, o := range out.Certificate.DomainValidationOptions {
			if o.ResourceRecord == nil {
				ready = false
				continue
			}
			if !slices.ContainsFunc(recs, func(r acmtypes.ResourceRecord) bool {
				return aws.ToString(r.Name) == aws.ToString(o.ResourceRecord.Name)
			}) {
				recs = append(recs, *o.ResourceRecord)
			}
		}
		if ready && len(recs) > 0 {
			return recs, nil
		}
		if attempt == 30 {
			return nil, fmt.Errorf("certificate %s: ACM published no validation records after a minute", arn)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// validate writes the validation records into the zone and waits for
// issuance: briefly, then, once the records are seen in public DNS, up to
// certIssueTimeout.
func (a ACMCertificate) validate(ctx context.Context, c *acm.Client, env *engine.Env, d *engine.Desired, arn string) error {
	recs, err := validationRecords(ctx, c, arn)
	if err != nil {
		return err
	}
	if err := changeValidationRecords(ctx, env, d.String("validation_zone"), r53types.ChangeActionUpsert, recs); err != nil {
		return err
	}
	env.Logf("wrote %d DNS validation record(s) into zone %s; waiting for ACM to issue the certificate", len(recs), d.String("validation_zone"))
	w := acm.NewCertificateValidatedWaiter(c, func(o *acm.CertificateValidatedWaiterOptions) { o.MinDelay, o.MaxDelay = time.Second, 30*time.Second })
	in := &acm.DescribeCertificateInput{CertificateArn: aws.String(arn)}
	if err := w.Wait(ctx, in, certFirstWait); err == nil {
		return nil
	}
	if missing := a.unresolved(ctx, recs); len(missing) > 0 {
		return fmt.Errorf("certificate %s for %s waits for DNS validation: its validation record %s does not resolve in public DNS, so the zone is not delegated from its parent yet; "+
			"add the zone's NS records at its parent domain (the environment layer's plan lists them on its delegation), then apply again", arn, d.String("domain"), strings.Join(missing, ", "))
	}
	env.Logf("the validation records resolve in public DNS; waiting up to %s more for ACM", certIssueTimeout)
	if err := w.Wait(ctx, in, certIssueTimeout); err != nil {
		return fmt.Errorf("certificate %s was not issued: %w", arn, err)
	}
	return nil
}

// unresolved returns the validation record names public DNS does not
// answer for.
func (a ACMCertificate) unresolved(ctx context.Context, recs []acmtypes.ResourceRecord) []string {
	var r CNAMEResolver = net.DefaultResolver
	if a.Resolver != nil {
		r = a.Resolver
	}
	var out []string
	for _, rec := range recs {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := r.LookupCNAME(lctx, aws.ToString(rec.Name))
		cancel()
		if err != nil {
			out = append(out, strings.TrimSuffix(aws.ToString(rec.Name), "."))
		}
	}
	return out
}

func changeValidationRecords(ctx context.Context, env *engine.Env, zone string, action r53types.ChangeAction, recs []acmtypes.ResourceRecord) error {
	if zone == "" {
		return errors.New("no validation_zone to write the DNS validation records into")
	}
	var changes []r53types.Change
	for _, r := range recs {
		changes = append(changes, r53types.Change{Action: action, ResourceRecordSet: &r53types.ResourceRecordSet{
			Name: r.Name, Type: r53types.RRType(r.Type), TTL: aws.Int64(300),
			ResourceRecords: []r53types.ResourceRecord{{Value: r.Value}},
		}})
	}
	_, err := r53Client(env).ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(zone),
		ChangeBatch:  &r53types.ChangeBatch{Comment: aws.String("ACM validation, written by the portal"), Changes: changes},
	})
	if err != nil && !(action == r53types.ChangeActionDelete && engine.IsCode(err, "InvalidChangeBatch")) {
		return fmt.Errorf("%s validation records in zone %s: %w", strings.ToLower(string(action)), zone, err)
	}
	return nil
}

// namesOfOtherCertificates returns the names (without a leading "*.")
// other certificates of the account cover, in the regions the stack's
// certificates may live in: the certificate's, the stack's, its
// jurisdiction's and CloudFront's us-east-1.
func (ACMCertificate) namesOfOtherCertificates(ctx context.Context, env *engine.Env, live *engine.Live) (map[string]bool, error) {
	regs := []string{live.Region, env.Stack.Region, "us-east-1"}
	if j, ok := regions.JurisdictionByID(env.Stack.Jurisdiction); ok {
		regs = append(regs, j.AllowedRegions...)
	}
	slices.Sort(regs)
	names := map[string]bool{}
	for _, region := range slices.Compact(regs) {
		if region == "" {
			continue
		}
		p := acm.NewListCertificatesPaginator(acm.NewFromConfig(env.Config(region)), &acm.ListCertificatesInput{})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("list certificates in %s: %w", region, err)
			}
			for _, s := range page.CertificateSummaryList {
				if aws.ToString(s.CertificateArn) == live.PhysicalID {
					continue
				}
				names[strings.TrimPrefix(aws.ToString(s.DomainName), "*.")] = true
				for _, n := range s.SubjectAlternativeNameSummaries {
					names[strings.TrimPrefix(n, "*.")] = true
				}
			}
		}
	}
	return names, nil
}

func (a ACMCertificate) Update(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live, changes []engine.FieldChange) (*engine.Live, error) {
	c := acm.NewFromConfig(env.Config(d.Region))
	for _, ch := range changes {
		if ch.Path == "tags" {
			if _, err := c.AddTagsToCertificate(ctx, &acm.AddTagsToCertificateInput{CertificateArn: aws.String(live.PhysicalID), Tags: acmTags(d.Tags)}); err != nil {
				return nil, fmt.Errorf("tag certificate %s: %w", live.PhysicalID, err)
			}
		}
	}
	if live.Outputs["status"] != string(acmtypes.CertificateStatusIssued) {
		if err := a.validate(ctx, c, env, d, live.PhysicalID); err != nil {
			return nil, err
		}
	}
	return a.Read(ctx, env, d, &engine.Prior{PhysicalID: live.PhysicalID, Region: d.Region})
}

// Delete removes the certificate and its validation records (which would
// otherwise keep the zone from being deleted). AWS refuses while a
// listener or distribution still uses it; the engine deletes those first.
func (a ACMCertificate) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	c := acm.NewFromConfig(env.Config(live.Region))
	out, err := c.DescribeCertificate(ctx, &acm.DescribeCertificateInput{CertificateArn: aws.String(live.PhysicalID)})
	if engine.IsCode(err, "ResourceNotFoundException") {
		return nil
	} else if err != nil {
		return fmt.Errorf("describe certificate %s: %w", live.PhysicalID, err)
	}
	type validation struct {
		domain string
		rec    acmtypes.ResourceRecord
	}
	var vals []validation
	for _, o := range out.Certificate.DomainValidationOptions {
		if o.ResourceRecord != nil {
			vals = append(vals, validation{strings.TrimPrefix(aws.ToString(o.DomainName), "*."), *o.ResourceRecord})
		}
	}
	if _, err := c.DeleteCertificate(ctx, &acm.DeleteCertificateInput{CertificateArn: aws.String(live.PhysicalID)}); err != nil && !engine.IsCode(err, "ResourceNotFoundException") {
		return fmt.Errorf("delete certificate %s: %w", live.PhysicalID, err)
	}
	env.Logf("deleted certificate %s", live.PhysicalID)
	// Checked once this certificate is gone, so that of two certificates
	// deleted at once the later one removes the records they shared.
	shared, err := a.namesOfOtherCertificates(ctx, env, live)
	if err != nil {
		return err
	}
	var recs []acmtypes.ResourceRecord
	for _, v := range vals {
		if shared[v.domain] {
			continue // another certificate validates with the same record
		}
		if !slices.ContainsFunc(recs, func(r acmtypes.ResourceRecord) bool { return aws.ToString(r.Name) == aws.ToString(v.rec.Name) }) {
			recs = append(recs, v.rec)
		}
	}
	if zone := live.Outputs["validation_zone"]; zone != "" {
		// One at a time: a record another deletion removed meanwhile must
		// not keep the others.
		for _, r := range recs {
			if err := changeValidationRecords(ctx, env, zone, r53types.ChangeActionDelete, []acmtypes.ResourceRecord{r}); err != nil {
				return err
			}
		}
	}
	return nil
}
