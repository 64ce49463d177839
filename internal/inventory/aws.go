package inventory

import (
	"context"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	tagging "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"portal/internal/engine"
	"portal/internal/regions"
)

// The narrow slices of the SDK clients discovery calls, with the SDK's
// own signatures.
type (
	taggingAPI interface {
		GetResources(context.Context, *tagging.GetResourcesInput, ...func(*tagging.Options)) (*tagging.GetResourcesOutput, error)
	}
	trailAPI interface {
		DescribeTrails(context.Context, *cloudtrail.DescribeTrailsInput, ...func(*cloudtrail.Options)) (*cloudtrail.DescribeTrailsOutput, error)
		ListTags(context.Context, *cloudtrail.ListTagsInput, ...func(*cloudtrail.Options)) (*cloudtrail.ListTagsOutput, error)
	}
	ec2API interface {
		DescribeLaunchTemplates(context.Context, *ec2.DescribeLaunchTemplatesInput, ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplatesOutput, error)
	}
	rdsAPI interface {
		DescribeDBInstances(context.Context, *rds.DescribeDBInstancesInput, ...func(*rds.Options)) (*rds.DescribeDBInstancesOutput, error)
	}
	dynamoAPI interface {
		ListTables(context.Context, *dynamodb.ListTablesInput, ...func(*dynamodb.Options)) (*dynamodb.ListTablesOutput, error)
		DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
		DescribeContinuousBackups(context.Context, *dynamodb.DescribeContinuousBackupsInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeContinuousBackupsOutput, error)
		ListTagsOfResource(context.Context, *dynamodb.ListTagsOfResourceInput, ...func(*dynamodb.Options)) (*dynamodb.ListTagsOfResourceOutput, error)
	}
	iamAPI interface {
		ListRoles(context.Context, *iam.ListRolesInput, ...func(*iam.Options)) (*iam.ListRolesOutput, error)
		ListRoleTags(context.Context, *iam.ListRoleTagsInput, ...func(*iam.Options)) (*iam.ListRoleTagsOutput, error)
	}
	route53API interface {
		ListHostedZones(context.Context, *route53.ListHostedZonesInput, ...func(*route53.Options)) (*route53.ListHostedZonesOutput, error)
		ListTagsForResource(context.Context, *route53.ListTagsForResourceInput, ...func(*route53.Options)) (*route53.ListTagsForResourceOutput, error)
	}
	cloudfrontAPI interface {
		ListDistributions(context.Context, *cloudfront.ListDistributionsInput, ...func(*cloudfront.Options)) (*cloudfront.ListDistributionsOutput, error)
		ListTagsForResource(context.Context, *cloudfront.ListTagsForResourceInput, ...func(*cloudfront.Options)) (*cloudfront.ListTagsForResourceOutput, error)
	}
	s3API interface {
		ListBuckets(context.Context, *s3.ListBucketsInput, ...func(*s3.Options)) (*s3.ListBucketsOutput, error)
		GetBucketLocation(context.Context, *s3.GetBucketLocationInput, ...func(*s3.Options)) (*s3.GetBucketLocationOutput, error)
		GetBucketTagging(context.Context, *s3.GetBucketTaggingInput, ...func(*s3.Options)) (*s3.GetBucketTaggingOutput, error)
		GetBucketEncryption(context.Context, *s3.GetBucketEncryptionInput, ...func(*s3.Options)) (*s3.GetBucketEncryptionOutput, error)
		GetBucketVersioning(context.Context, *s3.GetBucketVersioningInput, ...func(*s3.Options)) (*s3.GetBucketVersioningOutput, error)
		GetPublicAccessBlock(context.Context, *s3.GetPublicAccessBlockInput, ...func(*s3.Options)) (*s3.GetPublicAccessBlockOutput, error)
	}
)

// discoverRegion asks one account in one region: the tagging API for
// everything tagged, then describe calls for what it misses (trails,
// launch templates) or cannot tell (RDS and DynamoDB settings).
func discoverRegion(ctx context.Context, env regions.Environment, region string, configs func(string) (aws.Config, error)) ([]Resource, error) {
	cfg, err := configs(region)
	if err != nil {
		return nil, err
	}
	var out []Resource
	var errs []error
	add := func(rs []Resource, err error) {
		out = append(out, rs...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	add(taggedResources(ctx, tagging.NewFromConfig(cfg), env, region))
	add(trails(ctx, cloudtrail.NewFromConfig(cfg), env, region))
	add(launchTemplates(ctx, ec2.NewFromConfig(cfg), env, region))
	add(dbInstances(ctx, rds.NewFromConfig(cfg), env, region))
	add(tables(ctx, dynamodb.NewFromConfig(cfg), env, region))
	return out, joinErrs(errs)
}

func taggedResources(ctx context.Context, c taggingAPI, env regions.Environment, region string) ([]Resource, error) {
	var out []Resource
	p := tagging.NewGetResourcesPaginator(c, &tagging.GetResourcesInput{ResourcesPerPage: aws.Int32(100)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return out, callErr("tagging GetResources", err)
		}
		for _, m := range page.ResourceTagMappingList {
			r := newResource(aws.ToString(m.ResourceARN), env.Name, env.AccountID, region)
			for _, t := range m.Tags {
				r.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// trails lists the trails whose home is region (shadow copies of
// multi-region trails are listed by their home region only).
func trails(ctx context.Context, c trailAPI, env regions.Environment, region string) ([]Resource, error) {
	res, err := c.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{IncludeShadowTrails: aws.Bool(false)})
	if err != nil {
		return nil, callErr("cloudtrail DescribeTrails", err)
	}
	var out []Resource
	var arns []string
	for _, t := range res.TrailList {
		if h := aws.ToString(t.HomeRegion); h != "" && h != region {
			continue
		}
		r := newResource(aws.ToString(t.TrailARN), env.Name, env.AccountID, region)
		r.described = true
		r.Settings.Encryption = "none"
		if k := aws.ToString(t.KmsKeyId); k != "" {
			r.Settings.Encryption, r.Settings.KMSKey = "aws:kms", k
		}
		out = append(out, r)
		arns = append(arns, r.ARN)
	}
	if len(arns) == 0 {
		return out, nil
	}
	tags, err := c.ListTags(ctx, &cloudtrail.ListTagsInput{ResourceIdList: arns})
	if err != nil {
		return out, callErr("cloudtrail ListTags", err)
	}
	byARN := map[string]map[string]string{}
	for _, rt := range tags.ResourceTagList {
		m := map[string]string{}
		for _, t := range rt.TagsList {
			m[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
		byARN[aws.ToString(rt.ResourceId)] = m
	}
	for i := range out {
		for k, v := range byARN[out[i].ARN] {
			out[i].Tags[k] = v
		}
	}
	return out, nil
}

func launchTemplates(ctx context.Context, c ec2API, env regions.Environment, region string) ([]Resource, error) {
	var out []Resource
	p := ec2.NewDescribeLaunchTemplatesPaginator(c, &ec2.DescribeLaunchTemplatesInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return out, callErr("ec2 DescribeLaunchTemplates", err)
		}
		for _, lt := range page.LaunchTemplates {
			arn := fmt.Sprintf("arn:aws:ec2:%s:%s:launch-template/%s", region, env.AccountID, aws.ToString(lt.LaunchTemplateId))
			r := newResource(arn, env.Name, env.AccountID, region)
			r.described = true
			for _, t := range lt.Tags {
				r.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func dbInstances(ctx context.Context, c rdsAPI, env regions.Environment, region string) ([]Resource, error) {
	var out []Resource
	p := rds.NewDescribeDBInstancesPaginator(c, &rds.DescribeDBInstancesInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return out, callErr("rds DescribeDBInstances", err)
		}
		for _, db := range page.DBInstances {
			r := newResource(aws.ToString(db.DBInstanceArn), env.Name, env.AccountID, region)
			r.described = true
			for _, t := range db.TagList {
				r.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			r.Settings.Encryption = "none"
			if aws.ToBool(db.StorageEncrypted) {
				r.Settings.Encryption, r.Settings.KMSKey = "aws:kms", aws.ToString(db.KmsKeyId)
			}
			r.Settings.PublicAccess = "not public"
			if aws.ToBool(db.PubliclyAccessible) {
				r.Settings.PublicAccess = "public"
			}
			r.Settings.MultiAZ = yesNo(aws.ToBool(db.MultiAZ))
			r.Settings.Deletion = yesNo(aws.ToBool(db.DeletionProtection))
			r.Settings.Backups = "off"
			if n := aws.ToInt32(db.BackupRetentionPeriod); n > 0 {
				r.Settings.Backups = strconv.Itoa(int(n)) + " days"
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func tables(ctx context.Context, c dynamoAPI, env regions.Environment, region string) ([]Resource, error) {
	var out []Resource
	p := dynamodb.NewListTablesPaginator(c, &dynamodb.ListTablesInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return out, callErr("dynamodb ListTables", err)
		}
		for _, name := range page.TableNames {
			d, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
			if err != nil {
				return out, callErr("dynamodb DescribeTable "+name, err)
			}
			r := newResource(aws.ToString(d.Table.TableArn), env.Name, env.AccountID, region)
			r.described = true
			// DynamoDB always encrypts at rest; without SSE settings it
			// uses an AWS-owned key.
			r.Settings.Encryption = "AWS owned key"
			if sse := d.Table.SSEDescription; sse != nil && sse.SSEType != "" {
				r.Settings.Encryption, r.Settings.KMSKey = "aws:kms", aws.ToString(sse.KMSMasterKeyArn)
			}
			r.Settings.Deletion = yesNo(aws.ToBool(d.Table.DeletionProtectionEnabled))
			if b, err := c.DescribeContinuousBackups(ctx, &dynamodb.DescribeContinuousBackupsInput{TableName: aws.String(name)}); err == nil && b.ContinuousBackupsDescription != nil {
				r.Settings.Backups = "off"
				if pitr := b.ContinuousBackupsDescription.PointInTimeRecoveryDescription; pitr != nil && pitr.PointInTimeRecoveryStatus == "ENABLED" {
					r.Settings.Backups = "point-in-time recovery"
				}
			}
			tags, err := c.ListTagsOfResource(ctx, &dynamodb.ListTagsOfResourceInput{ResourceArn: aws.String(r.ARN)})
			if err != nil {
				return out, callErr("dynamodb ListTagsOfResource "+name, err)
			}
			for _, t := range tags.Tags {
				r.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// discoverGlobal lists one account's global resources: IAM roles, Route 53
// hosted zones and CloudFront distributions.
func discoverGlobal(ctx context.Context, env regions.Environment, region string, configs func(string) (aws.Config, error)) ([]Resource, error) {
	cfg, err := configs(region)
	if err != nil {
		return nil, err
	}
	var out []Resource
	var errs []error
	add := func(rs []Resource, err error) {
		out = append(out, rs...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	add(roles(ctx, iam.NewFromConfig(cfg), env))
	add(zones(ctx, route53.NewFromConfig(cfg), env))
	add(distributions(ctx, cloudfront.NewFromConfig(cfg), env))
	return out, joinErrs(errs)
}

func roles(ctx context.Context, c iamAPI, env regions.Environment) ([]Resource, error) {
	var out []Resource
	p := iam.NewListRolesPaginator(c, &iam.ListRolesInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return out, callErr("iam ListRoles", err)
		}
		for _, role := range page.Roles {
			r := newResource(aws.ToString(role.Arn), env.Name, env.AccountID, Global)
			r.described = true
			tags, err := c.ListRoleTags(ctx, &iam.ListRoleTagsInput{RoleName: role.RoleName})
			if err != nil {
				return out, callErr("iam ListRoleTags "+aws.ToString(role.RoleName), err)
			}
			for _, t := range tags.Tags {
				r.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func zones(ctx context.Context, c route53API, env regions.Environment) ([]Resource, error) {
	var out []Resource
	p := route53.NewListHostedZonesPaginator(c, &route53.ListHostedZonesInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return out, callErr("route53 ListHostedZones", err)
		}
		for _, z := range page.HostedZones {
			id := trimPrefix(aws.ToString(z.Id), "/hostedzone/")
			r := newResource("arn:aws:route53:::hostedzone/"+id, env.Name, env.AccountID, Global)
			r.Name = aws.ToString(z.Name)
			r.described = true
			tags, err := c.ListTagsForResource(ctx, &route53.ListTagsForResourceInput{ResourceId: aws.String(id), ResourceType: "hostedzone"})
			if err != nil {
				return out, callErr("route53 ListTagsForResource "+id, err)
			}
			if tags.ResourceTagSet != nil {
				for _, t := range tags.ResourceTagSet.Tags {
					r.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
				}
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func distributions(ctx context.Context, c cloudfrontAPI, env regions.Environment) ([]Resource, error) {
	var out []Resource
	p := cloudfront.NewListDistributionsPaginator(c, &cloudfront.ListDistributionsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return out, callErr("cloudfront ListDistributions", err)
		}
		if page.DistributionList == nil {
			break
		}
		for _, d := range page.DistributionList.Items {
			r := newResource(aws.ToString(d.ARN), env.Name, env.AccountID, Global)
			r.described = true
			tags, err := c.ListTagsForResource(ctx, &cloudfront.ListTagsForResourceInput{Resource: d.ARN})
			if err != nil {
				return out, callErr("cloudfront ListTagsForResource "+aws.ToString(d.Id), err)
			}
			if tags.Tags != nil {
				for _, t := range tags.Tags.Items {
					r.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
				}
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// discoverBuckets lists one account's buckets once (the bucket namespace is
// global), places each by GetBucketLocation and reads its settings in its
// own region.
func discoverBuckets(ctx context.Context, env regions.Environment, region string, configs func(string) (aws.Config, error)) ([]Resource, error) {
	cfg, err := configs(region)
	if err != nil {
		return nil, err
	}
	c := s3.NewFromConfig(cfg)
	var out []Resource
	var errs []error
	p := s3.NewListBucketsPaginator(c, &s3.ListBucketsInput{})
	clients := map[string]s3API{region: c}
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return out, callErr("s3 ListBuckets", err)
		}
		for _, b := range page.Buckets {
			name := aws.ToString(b.Name)
			loc, err := c.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String(name)})
			if err != nil {
				errs = append(errs, callErr("s3 GetBucketLocation "+name, err))
				continue
			}
			where := string(loc.LocationConstraint)
			switch where {
			case "":
				where = "us-east-1"
			case "EU":
				where = "eu-west-1"
			}
			bc, ok := clients[where]
			if !ok {
				rc, err := configs(where)
				if err != nil {
					return out, err
				}
				bc = s3.NewFromConfig(rc)
				clients[where] = bc
			}
			r, err := bucket(ctx, bc, env, name, where)
			if err != nil {
				errs = append(errs, err)
			}
			out = append(out, r)
		}
	}
	return out, joinErrs(errs)
}

func bucket(ctx context.Context, c s3API, env regions.Environment, name, region string) (Resource, error) {
	r := newResource("arn:aws:s3:::"+name, env.Name, env.AccountID, region)
	r.Region = region
	r.described = true
	tags, err := c.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: aws.String(name)})
	switch {
	case err == nil:
		for _, t := range tags.TagSet {
			r.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	case !engine.IsCode(err, "NoSuchTagSet", "NoSuchTagSetError"):
		return r, callErr("s3 GetBucketTagging "+name, err)
	}
	r.Settings.Encryption = "none"
	enc, err := c.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String(name)})
	switch {
	case err == nil && enc.ServerSideEncryptionConfiguration != nil:
		for _, rule := range enc.ServerSideEncryptionConfiguration.Rules {
			if d := rule.ApplyServerSideEncryptionByDefault; d != nil {
				r.Settings.Encryption, r.Settings.KMSKey = string(d.SSEAlgorithm), aws.ToString(d.KMSMasterKeyID)
			}
		}
	case err != nil && !engine.IsCode(err, "ServerSideEncryptionConfigurationNotFoundError"):
		return r, callErr("s3 GetBucketEncryption "+name, err)
	}
	ver, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(name)})
	if err != nil {
		return r, callErr("s3 GetBucketVersioning "+name, err)
	}
	switch ver.Status {
	case "Enabled":
		r.Settings.Versioning = "enabled"
	case "Suspended":
		r.Settings.Versioning = "suspended"
	default:
		r.Settings.Versioning = "off"
	}
	pab, err := c.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: aws.String(name)})
	switch {
	case err == nil && pab.PublicAccessBlockConfiguration != nil:
		b := pab.PublicAccessBlockConfiguration
		r.Settings.PublicAccess = "not blocked"
		if aws.ToBool(b.BlockPublicAcls) && aws.ToBool(b.BlockPublicPolicy) && aws.ToBool(b.IgnorePublicAcls) && aws.ToBool(b.RestrictPublicBuckets) {
			r.Settings.PublicAccess = "blocked"
		}
	case err != nil && engine.IsCode(err, "NoSuchPublicAccessBlockConfiguration"):
		r.Settings.PublicAccess = "not blocked"
	case err != nil:
		return r, callErr("s3 GetPublicAccessBlock "+name, err)
	}
	return r, nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func trimPrefix(s, p string) string {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}
