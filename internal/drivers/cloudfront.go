package drivers

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront/types"

	"portal/internal/engine"
)

// cfWait bounds the wait for a distribution to deploy to every edge
// location (typically 5 to 15 minutes on AWS; moto deploys at once).
const cfWait = 45 * time.Minute

// AWS-managed cache and origin request policies.
const (
	cfCachingOptimized = "658327ea-f89d-4fab-a63d-7e88639e58f6"
	cfCachingDisabled  = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
	cfAllViewer        = "216adef6-5c7f-47e4-b989-5492eafa07d3"
)

func cfClient(env *engine.Env) *cloudfront.Client {
	return cloudfront.NewFromConfig(env.Config(globalRegion))
}

// CloudFrontDistribution manages an HTTPS-only distribution in front of
// S3 buckets (through an origin access control each, with a bucket policy
// statement letting this distribution read the bucket) and load balancers.
//
// Fields: aliases (compared as a set), certificate (ACM ARN in
// us-east-1), viewer_protocol_policy, minimum_tls, price_class, origins
// [{id, s3_bucket (ARN)} | {id, alb (DNS name) | domain (a hostname),
// protocol_policy}], default_origin, behaviors [{path, origin}],
// error_pages [{code, path, response_code, ttl}] (what viewers get when
// the origin fails: the maintenance page), description (the comment).
// Outputs: id, arn, dns_name, zone_id (CloudFront's alias zone).
//
// Behaviours to a bucket use the managed CachingOptimized policy; those to
// a load balancer CachingDisabled with AllViewer forwarding (the app sees
// the viewer's Host, cookies and query strings) and every HTTP method.
//
// The caller reference is derived from the stack and the resource, and the
// ownership tags are set in the same call that creates the distribution,
// so a repeated Create finds or is refused the first one. Updates send the
// ETag they read (IfMatch). Delete disables, waits for the deployment,
// then deletes; it removes its bucket policy statements and access
// controls afterwards.
//
// With aliases, AWS requires the certificate to exist in ACM in us-east-1,
// be issued and cover every alias, and no other distribution to use them;
// moto checks none of this, so a made-up certificate ARN passes there and
// fails on AWS with InvalidViewerCertificate or CNAMEAlreadyExists.
type CloudFrontDistribution struct{}

func (CloudFrontDistribution) Type() string         { return "cloudfront_distribution" }
func (CloudFrontDistribution) ForceNew() []string   { return nil }
func (CloudFrontDistribution) GlobalRegion() string { return globalRegion }

func (CloudFrontDistribution) reference(env *engine.Env, id string) string {
	return clientToken(env, id, "cloudfront_distribution")
}

func cfTags(tags map[string]string) *types.Tags {
	out := &types.Tags{}
	for _, k := range sortedKeys(tags) {
		out.Items = append(out.Items, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

func (cf CloudFrontDistribution) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	c := cfClient(env)
	id := ""
	if prior != nil {
		id = prior.PhysicalID
	} else {
		var err error
		if id, err = cf.find(ctx, c, env, d.ID); err != nil {
			return nil, err
		}
	}
	if id == "" {
		return nil, engine.ErrNotFound
	}
	out, err := c.GetDistribution(ctx, &cloudfront.GetDistributionInput{Id: aws.String(id)})
	if engine.IsCode(err, "NoSuchDistribution") {
		return nil, engine.ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("get distribution %s: %w", id, err)
	}
	dist := out.Distribution
	arn := aws.ToString(dist.ARN)
	live := &engine.Live{
		PhysicalID: id,
		Region:     d.Region,
		Outputs:    map[string]string{"id": id, "arn": arn, "dns_name": aws.ToString(dist.DomainName), "zone_id": cloudFrontZoneID},
		Fields:     cf.fields(d, dist.DistributionConfig),
	}
	tags, err := c.ListTagsForResource(ctx, &cloudfront.ListTagsForResourceInput{Resource: aws.String(arn)})
	if err != nil {
		return nil, fmt.Errorf("list tags of distribution %s: %w", id, err)
	}
	live.Tags = map[string]string{}
	if tags.Tags != nil {
		for _, t := range tags.Tags.Items {
			live.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	}
	return live, nil
}

// find returns the id of the distribution carrying the stack's ownership
// tags for resource, or "".
func (CloudFrontDistribution) find(ctx context.Context, c *cloudfront.Client, env *engine.Env, resource string) (string, error) {
	pg := cloudfront.NewListDistributionsPaginator(c, &cloudfront.ListDistributionsInput{})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("list distributions: %w", err)
		}
		if page.DistributionList == nil {
			continue
		}
		for _, s := range page.DistributionList.Items {
			tags, err := c.ListTagsForResource(ctx, &cloudfront.ListTagsForResourceInput{Resource: s.ARN})
			if err != nil {
				return "", fmt.Errorf("list tags of distribution %s: %w", aws.ToString(s.Id), err)
			}
			if tags.Tags == nil {
				continue
			}
			m := map[string]string{}
			for _, t := range tags.Tags.Items {
				m[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			if m[engine.TagStack] == env.Stack.ID && m[engine.TagResource] == resource {
				return aws.ToString(s.Id), nil
			}
		}
	}
	return "", nil
}

// fields shapes a distribution's configuration like the blueprint.
func (CloudFrontDistribution) fields(d *engine.Desired, cfg *types.DistributionConfig) map[string]any {
	f := map[string]any{}
	if cfg == nil {
		return f
	}
	var aliases []string
	if cfg.Aliases != nil {
		aliases = cfg.Aliases.Items
	}
	f["aliases"] = inOrderOf(d.Strings("aliases"), aliases)
	if vc := cfg.ViewerCertificate; vc != nil {
		f["certificate"] = aws.ToString(vc.ACMCertificateArn)
		f["minimum_tls"] = string(vc.MinimumProtocolVersion)
	}
	f["price_class"] = string(cfg.PriceClass)
	if d.Has("description") {
		f["description"] = aws.ToString(cfg.Comment)
	}
	if dcb := cfg.DefaultCacheBehavior; dcb != nil {
		f["viewer_protocol_policy"] = string(dcb.ViewerProtocolPolicy)
		f["default_origin"] = aws.ToString(dcb.TargetOriginId)
	}
	want := map[string]map[string]any{}
	var wantIDs []string
	for _, o := range d.List("origins") {
		m, _ := o.(map[string]any)
		id := fmt.Sprint(m["id"])
		want[id] = m
		wantIDs = append(wantIDs, id)
	}
	byID := map[string]any{}
	var haveIDs []string
	if cfg.Origins != nil {
		for _, o := range cfg.Origins.Items {
			id := aws.ToString(o.Id)
			domain := aws.ToString(o.DomainName)
			m := map[string]any{"id": id}
			switch {
			case cfIsS3Origin(o):
				bucket, _, _ := strings.Cut(domain, ".s3.")
				m["s3_bucket"] = "arn:aws:s3:::" + bucket
				if w, ok := want[id]["s3_bucket"].(string); ok && s3BucketName(w) == bucket {
					m["s3_bucket"] = w
				}
			default:
				field := "alb"
				if _, byName := want[id]["domain"]; byName {
					field = "domain"
				}
				m[field] = domain
				if w, ok := want[id][field].(string); ok && strings.EqualFold(w, domain) {
					m[field] = w
				}
				policy := ""
				if o.CustomOriginConfig != nil {
					policy = string(o.CustomOriginConfig.OriginProtocolPolicy)
				}
				if _, set := want[id]["protocol_policy"]; set || policy != string(types.OriginProtocolPolicyHttpsOnly) {
					m["protocol_policy"] = policy
				}
			}
			byID[id] = m
			haveIDs = append(haveIDs, id)
		}
	}
	var origins []any
	for _, id := range inOrderOf(wantIDs, haveIDs) {
		origins = append(origins, byID[id.(string)])
	}
	f["origins"] = origins
	behaviors := []any{}
	if cfg.CacheBehaviors != nil {
		for _, b := range cfg.CacheBehaviors.Items {
			behaviors = append(behaviors, map[string]any{"path": aws.ToString(b.PathPattern), "origin": aws.ToString(b.TargetOriginId)})
		}
	}
	f["behaviors"] = behaviors
	if d.Has("error_pages") || (cfg.CustomErrorResponses != nil && len(cfg.CustomErrorResponses.Items) > 0) {
		pages := []any{}
		if cfg.CustomErrorResponses != nil {
			for _, e := range cfg.CustomErrorResponses.Items {
				rc, _ := strconv.Atoi(aws.ToString(e.ResponseCode))
				pages = append(pages, map[string]any{"code": int64(aws.ToInt32(e.ErrorCode)), "path": aws.ToString(e.ResponsePagePath),
					"response_code": int64(rc), "ttl": aws.ToInt64(e.ErrorCachingMinTTL)})
			}
		}
		f["error_pages"] = pages
	}
	return f
}

// cfOrigin is an origin of the blueprint: a bucket, or a custom origin
// reached by name (a load balancer's DNS name, alb, or a hostname, domain).
type cfOrigin struct {
	id, bucket, alb, policy string
}

func desiredOrigins(d *engine.Desired) ([]cfOrigin, error) {
	var out []cfOrigin
	for i, o := range d.List("origins") {
		m, _ := o.(map[string]any)
		var co cfOrigin
		co.id, _ = m["id"].(string)
		if b, ok := m["s3_bucket"].(string); ok {
			co.bucket = s3BucketName(b)
		}
		co.alb, _ = m["alb"].(string)
		domain, _ := m["domain"].(string)
		co.policy, _ = m["protocol_policy"].(string)
		if co.policy == "" {
			co.policy = string(types.OriginProtocolPolicyHttpsOnly)
		}
		n := 0
		for _, v := range []string{co.bucket, co.alb, domain} {
			if v != "" {
				n++
			}
		}
		if co.id == "" || n != 1 {
			return nil, fmt.Errorf("origins[%d]: want an id and exactly one of s3_bucket, alb and domain", i)
		}
		if domain != "" {
			co.alb = domain
		}
		out = append(out, co)
	}
	return out, nil
}

// oacName names the origin access control of one bucket origin.
func oacName(env *engine.Env, resource, origin string) string {
	n := fmt.Sprintf("%s-%s-%s", env.Stack.ID, resource, origin)
	if len(n) > 64 {
		n = n[:64]
	}
	return n
}

// ensureOAC returns the id of the origin access control named name,
// creating it if needed.
func (CloudFrontDistribution) ensureOAC(ctx context.Context, c *cloudfront.Client, env *engine.Env, name string) (string, error) {
	id, err := findOAC(ctx, c, name)
	if err != nil || id != "" {
		return id, err
	}
	out, err := c.CreateOriginAccessControl(ctx, &cloudfront.CreateOriginAccessControlInput{OriginAccessControlConfig: &types.OriginAccessControlConfig{
		Name:                          aws.String(name),
		Description:                   aws.String("portal: lets the distribution read its S3 origin"),
		OriginAccessControlOriginType: types.OriginAccessControlOriginTypesS3,
		SigningBehavior:               types.OriginAccessControlSigningBehaviorsAlways,
		SigningProtocol:               types.OriginAccessControlSigningProtocolsSigv4,
	}})
	if err != nil {
		return "", fmt.Errorf("create origin access control %s: %s: %w", name, engine.Explain(err), err)
	}
	env.Logf("created origin access control %s", name)
	return aws.ToString(out.OriginAccessControl.Id), nil
}

func findOAC(ctx context.Context, c *cloudfront.Client, name string) (string, error) {
	pg := cloudfront.NewListOriginAccessControlsPaginator(c, &cloudfront.ListOriginAccessControlsInput{})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("list origin access controls: %s: %w", engine.Explain(err), err)
		}
		if page.OriginAccessControlList == nil {
			continue
		}
		for _, o := range page.OriginAccessControlList.Items {
			if aws.ToString(o.Name) == name {
				return aws.ToString(o.Id), nil
			}
		}
	}
	return "", nil
}

// configure sets on cfg everything the blueprint decides, leaving the
// rest (caller reference, logging, restrictions...) as it is.
func (cf CloudFrontDistribution) configure(ctx context.Context, c *cloudfront.Client, env *engine.Env, d *engine.Desired, cfg *types.DistributionConfig) error {
	origins, err := desiredOrigins(d)
	if err != nil {
		return err
	}
	// Checked first: nothing is created for a configuration AWS refuses.
	aliases := d.Strings("aliases")
	cfg.Aliases = &types.Aliases{Quantity: aws.Int32(int32(len(aliases))), Items: aliases}
	cert := d.String("certificate")
	switch {
	case cert == "" && (len(aliases) > 0 || d.Has("minimum_tls")):
		return fmt.Errorf("certificate: an ACM certificate is required with aliases or minimum_tls")
	case cert != "" && !strings.Contains(cert, ":acm:us-east-1:"):
		return fmt.Errorf("certificate %s: CloudFront takes ACM certificates from us-east-1 only", cert)
	case cert == "":
		cfg.ViewerCertificate = &types.ViewerCertificate{CloudFrontDefaultCertificate: aws.Bool(true), MinimumProtocolVersion: types.MinimumProtocolVersionTLSv1}
	default:
		tls := d.String("minimum_tls")
		if tls == "" {
			tls = string(types.MinimumProtocolVersionTLSv122021)
		}
		cfg.ViewerCertificate = &types.ViewerCertificate{ACMCertificateArn: aws.String(cert), SSLSupportMethod: types.SSLSupportMethodSniOnly,
			MinimumProtocolVersion: types.MinimumProtocolVersion(tls), CloudFrontDefaultCertificate: aws.Bool(false)}
	}
	known := map[string]bool{}
	for _, o := range origins {
		known[o.id] = true
	}
	if def := d.String("default_origin"); !known[def] {
		return fmt.Errorf("default_origin %q is not one of the origins", def)
	}
	for i, b := range d.List("behaviors") {
		m, _ := b.(map[string]any)
		if target, _ := m["origin"].(string); !known[target] {
			return fmt.Errorf("behaviors[%d].origin %q is not one of the origins", i, target)
		}
	}
	kind := map[string]cfOrigin{}
	cfg.Origins = &types.Origins{}
	for _, o := range origins {
		kind[o.id] = o
		origin := types.Origin{Id: aws.String(o.id), OriginPath: aws.String(""), ConnectionAttempts: aws.Int32(3), ConnectionTimeout: aws.Int32(10)}
		if o.bucket != "" {
			region, err := s3BucketRegion(ctx, env, env.Stack.Region, o.bucket)
			if err != nil {
				return fmt.Errorf("origin %s: bucket %s: %w", o.id, o.bucket, err)
			}
			oac, err := cf.ensureOAC(ctx, c, env, oacName(env, d.ID, o.id))
			if err != nil {
				return fmt.Errorf("origin %s: %w", o.id, err)
			}
			origin.DomainName = aws.String(fmt.Sprintf("%s.s3.%s.amazonaws.com", o.bucket, region))
			origin.S3OriginConfig = &types.S3OriginConfig{OriginAccessIdentity: aws.String("")}
			origin.OriginAccessControlId = aws.String(oac)
		} else {
			origin.DomainName = aws.String(o.alb)
			origin.CustomOriginConfig = &types.CustomOriginConfig{
				HTTPPort:               aws.Int32(80),
				HTTPSPort:              aws.Int32(443),
				OriginProtocolPolicy:   types.OriginProtocolPolicy(o.policy),
				OriginSslProtocols:     &types.OriginSslProtocols{Quantity: aws.Int32(1), Items: []types.SslProtocol{types.SslProtocolTLSv12}},
				OriginReadTimeout:      aws.Int32(30),
				OriginKeepaliveTimeout: aws.Int32(5),
			}
		}
		cfg.Origins.Items = append(cfg.Origins.Items, origin)
	}
	cfg.Origins.Quantity = aws.Int32(int32(len(cfg.Origins.Items)))

	viewer := types.ViewerProtocolPolicy(d.String("viewer_protocol_policy"))
	def := d.String("default_origin")
	if _, ok := kind[def]; !ok {
		return fmt.Errorf("default_origin %q is not one of the origins", def)
	}
	dcb := &types.DefaultCacheBehavior{TargetOriginId: aws.String(def), ViewerProtocolPolicy: viewer, Compress: aws.Bool(true)}
	cfBehavior(kind[def], &dcb.AllowedMethods, &dcb.CachePolicyId, &dcb.OriginRequestPolicyId)
	cfg.DefaultCacheBehavior = dcb
	cfg.CacheBehaviors = &types.CacheBehaviors{}
	for i, b := range d.List("behaviors") {
		m, _ := b.(map[string]any)
		path, _ := m["path"].(string)
		target, _ := m["origin"].(string)
		if _, ok := kind[target]; !ok {
			return fmt.Errorf("behaviors[%d].origin %q is not one of the origins", i, target)
		}
		cb := types.CacheBehavior{PathPattern: aws.String(path), TargetOriginId: aws.String(target), ViewerProtocolPolicy: viewer, Compress: aws.Bool(true)}
		cfBehavior(kind[target], &cb.AllowedMethods, &cb.CachePolicyId, &cb.OriginRequestPolicyId)
		cfg.CacheBehaviors.Items = append(cfg.CacheBehaviors.Items, cb)
	}
	cfg.CacheBehaviors.Quantity = aws.Int32(int32(len(cfg.CacheBehaviors.Items)))

	cfg.CustomErrorResponses = &types.CustomErrorResponses{Quantity: aws.Int32(0)}
	for i, e := range d.List("error_pages") {
		m, _ := e.(map[string]any)
		code, rc, ttl := toInt64(m["code"]), toInt64(m["response_code"]), toInt64(m["ttl"])
		path, _ := m["path"].(string)
		if code < 400 || code > 599 || !strings.HasPrefix(path, "/") {
			return fmt.Errorf("error_pages[%d]: want an error code 4xx or 5xx and a path starting with /", i)
		}
		r := types.CustomErrorResponse{ErrorCode: aws.Int32(int32(code)), ResponsePagePath: aws.String(path), ErrorCachingMinTTL: aws.Int64(ttl)}
		if rc == 0 {
			rc = code
		}
		r.ResponseCode = aws.String(strconv.FormatInt(rc, 10))
		cfg.CustomErrorResponses.Items = append(cfg.CustomErrorResponses.Items, r)
	}
	cfg.CustomErrorResponses.Quantity = aws.Int32(int32(len(cfg.CustomErrorResponses.Items)))

	comment := d.String("description")
	if comment == "" {
		comment = fmt.Sprintf("portal %s %s", env.Stack.ID, d.ID)
	}
	if len(comment) > 128 {
		comment = comment[:128]
	}
	cfg.Comment = aws.String(comment)
	cfg.PriceClass = types.PriceClassPriceClassAll
	if pc := d.String("price_class"); pc != "" {
		cfg.PriceClass = types.PriceClass(pc)
	}
	cfg.Enabled = aws.Bool(true)
	cfg.HttpVersion = types.HttpVersionHttp2and3
	cfg.IsIPV6Enabled = aws.Bool(true)
	if cfg.DefaultRootObject == nil {
		cfg.DefaultRootObject = aws.String("")
	}
	return nil
}

// cfBehavior picks methods and managed policies by the kind of origin:
// static assets from S3 are cached; the app behind a load balancer is not,
// and gets every method with the viewer's headers, cookies and query.
func cfBehavior(o cfOrigin, methods **types.AllowedMethods, cache, request **string) {
	cached := &types.CachedMethods{Quantity: aws.Int32(2), Items: []types.Method{types.MethodGet, types.MethodHead}}
	if o.bucket != "" {
		*methods = &types.AllowedMethods{Quantity: aws.Int32(2), Items: []types.Method{types.MethodGet, types.MethodHead}, CachedMethods: cached}
		*cache = aws.String(cfCachingOptimized)
		return
	}
	all := []types.Method{types.MethodGet, types.MethodHead, types.MethodOptions, types.MethodPut, types.MethodPatch, types.MethodPost, types.MethodDelete}
	*methods = &types.AllowedMethods{Quantity: aws.Int32(int32(len(all))), Items: all, CachedMethods: cached}
	*cache = aws.String(cfCachingDisabled)
	*request = aws.String(cfAllViewer)
}

// grantBuckets lets the distribution read each bucket origin through its
// origin access control: one statement per distribution, merged by Sid
// into the bucket's policy (the bucket driver keeps statements it does
// not own).
func (CloudFrontDistribution) grantBuckets(ctx context.Context, env *engine.Env, d *engine.Desired, arn, id string) error {
	origins, err := desiredOrigins(d)
	if err != nil {
		return err
	}
	for _, o := range origins {
		if o.bucket == "" {
			continue
		}
		region, err := s3BucketRegion(ctx, env, env.Stack.Region, o.bucket)
		if err != nil {
			return fmt.Errorf("origin %s: bucket %s: %w", o.id, o.bucket, err)
		}
		st := map[string]any{
			"Sid":       cfGrantSid(id),
			"Effect":    "Allow",
			"Principal": map[string]any{"Service": "cloudfront.amazonaws.com"},
			"Action":    "s3:GetObject",
			"Resource":  fmt.Sprintf("arn:%s:s3:::%s/*", arnPartition(region), o.bucket),
			"Condition": map[string]any{"StringEquals": map[string]any{"AWS:SourceArn": arn}},
		}
		if err := mergeBucketPolicy(ctx, s3Client(env, region), o.bucket, []map[string]any{st}, nil); err != nil {
			return fmt.Errorf("origin %s: %w", o.id, err)
		}
		env.Logf("bucket %s readable by distribution %s", o.bucket, id)
	}
	return nil
}

// cfIsS3Origin reports whether o is a bucket origin. AWS returns its
// S3OriginConfig and access control; moto returns neither, so a bucket's
// regional name without a custom origin configuration counts too.
func cfIsS3Origin(o types.Origin) bool {
	return o.S3OriginConfig != nil || aws.ToString(o.OriginAccessControlId) != "" ||
		o.CustomOriginConfig == nil && strings.Contains(aws.ToString(o.DomainName), ".s3.")
}

func cfGrantSid(id string) string { return "PortalCloudFrontRead" + id }

func (cf CloudFrontDistribution) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	c := cfClient(env)
	ref := cf.reference(env, d.ID)
	cfg := &types.DistributionConfig{CallerReference: aws.String(ref)}
	if err := cf.configure(ctx, c, env, d, cfg); err != nil {
		return nil, err
	}
	out, err := c.CreateDistributionWithTags(ctx, &cloudfront.CreateDistributionWithTagsInput{
		DistributionConfigWithTags: &types.DistributionConfigWithTags{DistributionConfig: cfg, Tags: cfTags(d.Tags)},
	})
	if engine.IsCode(err, "DistributionAlreadyExists") {
		return nil, fmt.Errorf("create distribution: one with caller reference %s already exists but lacks this stack's ownership tags; tag it to adopt it: %w", ref, err)
	} else if err != nil {
		return nil, fmt.Errorf("create distribution: %w", err)
	}
	dist := out.Distribution
	id := aws.ToString(dist.Id)
	env.Logf("created distribution %s (%s); waiting for it to deploy", id, aws.ToString(dist.DomainName))
	if err := cf.grantBuckets(ctx, env, d, aws.ToString(dist.ARN), id); err != nil {
		return nil, err
	}
	if err := cf.waitDeployed(ctx, c, id); err != nil {
		return nil, err
	}
	return cf.Read(ctx, env, d, &engine.Prior{PhysicalID: id, Region: d.Region})
}

func (CloudFrontDistribution) waitDeployed(ctx context.Context, c *cloudfront.Client, id string) error {
	if err := cloudfront.NewDistributionDeployedWaiter(c).Wait(ctx, &cloudfront.GetDistributionInput{Id: aws.String(id)}, cfWait); err != nil {
		return fmt.Errorf("wait for distribution %s to deploy: %w", id, err)
	}
	return nil
}

func (cf CloudFrontDistribution) Update(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live, changes []engine.FieldChange) (*engine.Live, error) {
	c := cfClient(env)
	id := live.PhysicalID
	settings := false
	for _, ch := range changes {
		if ch.Path == "tags" {
			if _, err := c.TagResource(ctx, &cloudfront.TagResourceInput{Resource: aws.String(live.Outputs["arn"]), Tags: cfTags(d.Tags)}); err != nil {
				return nil, fmt.Errorf("tag distribution %s: %w", id, err)
			}
			continue
		}
		settings = true
	}
	if settings {
		cur, err := c.GetDistributionConfig(ctx, &cloudfront.GetDistributionConfigInput{Id: aws.String(id)})
		if err != nil {
			return nil, fmt.Errorf("get config of distribution %s: %w", id, err)
		}
		cfg := cur.DistributionConfig
		if err := cf.configure(ctx, c, env, d, cfg); err != nil {
			return nil, err
		}
		if _, err := c.UpdateDistribution(ctx, &cloudfront.UpdateDistributionInput{Id: aws.String(id), IfMatch: cur.ETag, DistributionConfig: cfg}); err != nil {
			return nil, fmt.Errorf("update distribution %s: %w", id, err)
		}
		env.Logf("updated distribution %s (%s); waiting for it to deploy", id, strings.Join(changePathsOf(changes), ", "))
		if err := cf.grantBuckets(ctx, env, d, live.Outputs["arn"], id); err != nil {
			return nil, err
		}
		if err := cf.waitDeployed(ctx, c, id); err != nil {
			return nil, err
		}
	}
	return cf.Read(ctx, env, d, &engine.Prior{PhysicalID: id, Region: d.Region})
}

func changePathsOf(cs []engine.FieldChange) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Path
	}
	return out
}

// Delete disables the distribution, waits until that is deployed (AWS
// refuses to delete an enabled or deploying distribution), deletes it,
// then removes its bucket policy statements and origin access controls.
func (cf CloudFrontDistribution) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	c := cfClient(env)
	id := live.PhysicalID
	cur, err := c.GetDistributionConfig(ctx, &cloudfront.GetDistributionConfigInput{Id: aws.String(id)})
	if engine.IsCode(err, "NoSuchDistribution") {
		return nil
	} else if err != nil {
		return fmt.Errorf("get config of distribution %s: %w", id, err)
	}
	cfg := cur.DistributionConfig
	var buckets, oacs []string
	if cfg.Origins != nil {
		for _, o := range cfg.Origins.Items {
			if cfIsS3Origin(o) {
				bucket, _, _ := strings.Cut(aws.ToString(o.DomainName), ".s3.")
				buckets = append(buckets, bucket)
				oacs = append(oacs, oacName(env, live.Tags[engine.TagResource], aws.ToString(o.Id)))
			}
		}
	}
	etag := cur.ETag
	if aws.ToBool(cfg.Enabled) {
		cfg.Enabled = aws.Bool(false)
		up, err := c.UpdateDistribution(ctx, &cloudfront.UpdateDistributionInput{Id: aws.String(id), IfMatch: etag, DistributionConfig: cfg})
		if err != nil {
			return fmt.Errorf("disable distribution %s: %w", id, err)
		}
		etag = up.ETag
		env.Logf("disabled distribution %s; waiting for it to deploy before deleting it", id)
	}
	if err := cf.waitDeployed(ctx, c, id); err != nil {
		return err
	}
	got, err := c.GetDistribution(ctx, &cloudfront.GetDistributionInput{Id: aws.String(id)})
	if err != nil {
		return fmt.Errorf("get distribution %s: %w", id, err)
	}
	if got.ETag != nil {
		etag = got.ETag
	}
	if _, err := c.DeleteDistribution(ctx, &cloudfront.DeleteDistributionInput{Id: aws.String(id), IfMatch: etag}); err != nil && !engine.IsCode(err, "NoSuchDistribution") {
		return fmt.Errorf("delete distribution %s: %w", id, err)
	}
	env.Logf("deleted distribution %s", id)
	for _, b := range buckets {
		region, err := s3BucketRegion(ctx, env, env.Stack.Region, b)
		if err == nil {
			err = mergeBucketPolicy(ctx, s3Client(env, region), b, nil, []string{cfGrantSid(id)})
		}
		if err != nil && !errorsIsNotFound(err) {
			return fmt.Errorf("remove the distribution's statement from bucket %s: %w", b, err)
		}
	}
	for _, name := range oacs {
		oac, err := findOAC(ctx, c, name)
		if err != nil {
			return err
		}
		if oac == "" {
			continue
		}
		g, err := c.GetOriginAccessControl(ctx, &cloudfront.GetOriginAccessControlInput{Id: aws.String(oac)})
		if err != nil {
			return fmt.Errorf("get origin access control %s: %w", name, err)
		}
		if _, err := c.DeleteOriginAccessControl(ctx, &cloudfront.DeleteOriginAccessControlInput{Id: aws.String(oac), IfMatch: g.ETag}); err != nil &&
			!engine.IsCode(err, "NoSuchOriginAccessControl", "OriginAccessControlInUse") {
			return fmt.Errorf("delete origin access control %s: %w", name, err)
		}
		env.Logf("deleted origin access control %s", name)
	}
	return nil
}

func errorsIsNotFound(err error) bool {
	return engine.IsCode(err, "NoSuchBucket") || errors.Is(err, engine.ErrNotFound)
}
