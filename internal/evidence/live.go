package evidence

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"portal/internal/engine"
)

// liveControls checks, live from AWS, the trail, encryption on every store
// of data, backups and public access of stack: what the portal manages
// there (its state) read back resource by resource. link gives the portal
// page of a resource.
func (b *builder) liveControls(ctx context.Context, st Stack) []Control {
	j := b.pack.Jurisdiction
	trail, enc, backup, public := ctlTrail.control(j, st.ID), ctlEncryption.control(j, st.ID), ctlBackups.control(j, st.ID), ctlPublic.control(j, st.ID)
	out := []*Control{&trail, &enc, &backup, &public}
	done := func() []Control {
		var cs []Control
		for _, c := range out {
			cs = append(cs, *c)
		}
		return cs
	}
	at := b.now
	stackLink := "/stacks/" + st.ID + "/history"
	if b.src.State == nil || b.src.AWS == nil {
		for _, c := range out {
			c.unknown(Line{Resource: st.ID, Finding: "AWS is not configured in this portal: nothing could be read", At: at})
		}
		return done()
	}
	res, err := b.src.State.Resources(ctx, st.ID)
	if err != nil || len(res) == 0 {
		for _, c := range out {
			c.unknown(Line{Resource: st.ID, Finding: "the stack has not been applied: nothing to check", At: at, Link: stackLink})
		}
		return done()
	}
	// A control passes once something was checked and nothing failed.
	for _, c := range out {
		c.Status = Pass
	}
	mark := func(c *Control, ok bool, readErr error, resource, finding, arn string) {
		l := Line{Resource: resource, Finding: finding, At: at, Link: b.resourceLink(ctx, arn, stackLink)}
		switch {
		case readErr != nil:
			l.Finding += ": could not read: " + engine.Explain(readErr)
			c.unknown(l)
		case !ok:
			c.fail(l)
		default:
			c.add(l)
		}
	}
	cfgFor := func(region string) (aws.Config, error) {
		if region == "" {
			region = st.Region
		}
		return b.src.AWS(st.Environment, region)
	}
	seenTrail, seenStore, seenBucket, seenDB := false, false, false, false
	res = slices.Clone(res)
	sort.Slice(res, func(i, k int) bool { return res[i].Type+res[i].ID < res[k].Type+res[k].ID })
	for _, r := range res {
		cfg, err := cfgFor(r.Region)
		if err != nil {
			continue
		}
		region := regionOr(r.Region, st.Region)
		switch r.Type {
		case "cloudtrail":
			seenTrail = true
			ct := cloudtrail.NewFromConfig(cfg)
			arn := r.Outputs["arn"]
			status, err := ct.GetTrailStatus(ctx, &cloudtrail.GetTrailStatusInput{Name: aws.String(r.PhysicalID)})
			logging := err == nil && aws.ToBool(status.IsLogging)
			mark(&trail, logging, err, "trail "+r.PhysicalID, yesNo(logging, "is logging", "is NOT logging"), arn)
			// GetTrail names one trail; DescribeTrails' name list is not
			// honoured by every endpoint.
			d, err := ct.GetTrail(ctx, &cloudtrail.GetTrailInput{Name: aws.String(r.PhysicalID)})
			valid, key, multi := false, "", false
			if err == nil && d.Trail != nil {
				valid, key, multi = aws.ToBool(d.Trail.LogFileValidationEnabled), aws.ToString(d.Trail.KmsKeyId), aws.ToBool(d.Trail.IsMultiRegionTrail)
			}
			mark(&trail, valid, err, "trail "+r.PhysicalID, yesNo(valid, "log file validation is on", "log file validation is OFF")+
				yesNo(multi, ", covers every region", ", covers only its own region"), arn)
			// The trail's log files are a store too: CloudTrail encrypts
			// them with its key before they reach the bucket.
			seenStore = true
			mark(&enc, key != "", err, "trail "+r.PhysicalID+" log files", kmsFinding(key), arn)
		case "s3_bucket":
			seenStore, seenBucket = true, true
			name := "s3://" + r.PhysicalID
			arn := "arn:aws:s3:::" + r.PhysicalID
			c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
			e, err := c.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String(r.PhysicalID)})
			kms, key := false, ""
			if err == nil && e.ServerSideEncryptionConfiguration != nil {
				for _, rule := range e.ServerSideEncryptionConfiguration.Rules {
					if def := rule.ApplyServerSideEncryptionByDefault; def != nil && strings.HasPrefix(string(def.SSEAlgorithm), "aws:kms") {
						kms, key = true, aws.ToString(def.KMSMasterKeyID)
					}
				}
			}
			if engine.IsCode(err, "ServerSideEncryptionConfigurationNotFoundError") {
				err = nil
			}
			mark(&enc, kms, err, name+" ("+region+")", kmsFinding(key), arn)
			v, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(r.PhysicalID)})
			versioned := err == nil && v.Status == "Enabled"
			mark(&backup, versioned, err, name, yesNo(versioned, "versioning is on", "versioning is OFF"), arn)
			pab, err := c.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: aws.String(r.PhysicalID)})
			blocked := err == nil && pab.PublicAccessBlockConfiguration != nil && aws.ToBool(pab.PublicAccessBlockConfiguration.BlockPublicAcls) &&
				aws.ToBool(pab.PublicAccessBlockConfiguration.BlockPublicPolicy) && aws.ToBool(pab.PublicAccessBlockConfiguration.IgnorePublicAcls) &&
				aws.ToBool(pab.PublicAccessBlockConfiguration.RestrictPublicBuckets)
			if engine.IsCode(err, "NoSuchPublicAccessBlockConfiguration") {
				err = nil
			}
			mark(&public, blocked, err, name, yesNo(blocked, "all four public access blocks are on", "public access is NOT fully blocked"), arn)
		case "dynamodb_table":
			seenStore = true
			d, err := dynamodb.NewFromConfig(cfg).DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(r.PhysicalID)})
			kms, key, arn := false, "", ""
			if err == nil && d.Table != nil {
				arn = aws.ToString(d.Table.TableArn)
				if d.Table.SSEDescription != nil && d.Table.SSEDescription.SSEType == "KMS" {
					kms, key = true, aws.ToString(d.Table.SSEDescription.KMSMasterKeyArn)
				}
			}
			mark(&enc, kms, err, "DynamoDB table "+r.PhysicalID+" ("+region+")", kmsFinding(key), arn)
		case "rds_instance":
			seenStore, seenDB = true, true
			d, err := rds.NewFromConfig(cfg).DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(r.PhysicalID)})
			var db rdstypes.DBInstance
			if err == nil && len(d.DBInstances) == 1 {
				db = d.DBInstances[0]
			}
			arn := aws.ToString(db.DBInstanceArn)
			encrypted := aws.ToBool(db.StorageEncrypted)
			mark(&enc, encrypted, err, "RDS "+r.PhysicalID+" ("+region+")", storageFinding(encrypted, aws.ToString(db.KmsKeyId)), arn)
			retention := aws.ToInt32(db.BackupRetentionPeriod)
			mark(&backup, retention > 0, err, "RDS "+r.PhysicalID, fmt.Sprintf("automated backups kept %d days", retention), arn)
		case "rds_read_replica":
			// The resource is a set of replicas named ID-1 .. ID-n, each a
			// store of its own (often in another region).
			seenStore = true
			reps, err := readReplicas(ctx, rds.NewFromConfig(cfg), r.PhysicalID)
			switch {
			case err != nil:
				mark(&enc, false, err, "RDS read replicas "+r.PhysicalID+"-N ("+region+")", "replicas", "")
			case len(reps) == 0:
				mark(&enc, true, nil, "RDS read replicas "+r.PhysicalID+"-N ("+region+")", "none exist", "")
			}
			for _, db := range reps {
				encrypted := aws.ToBool(db.StorageEncrypted)
				mark(&enc, encrypted, nil, "RDS read replica "+aws.ToString(db.DBInstanceIdentifier)+" ("+region+") of "+aws.ToString(db.ReadReplicaSourceDBInstanceIdentifier),
					storageFinding(encrypted, aws.ToString(db.KmsKeyId)), aws.ToString(db.DBInstanceArn))
			}
		case "sns_topic":
			seenStore = true
			a, err := sns.NewFromConfig(cfg).GetTopicAttributes(ctx, &sns.GetTopicAttributesInput{TopicArn: aws.String(r.PhysicalID)})
			key := ""
			if err == nil {
				key = a.Attributes["KmsMasterKeyId"]
			}
			mark(&enc, key != "", err, "SNS topic "+r.PhysicalID, kmsFinding(key), r.PhysicalID)
		case "log_group":
			seenStore = true
			key, arn, err := logGroupKey(ctx, cloudwatchlogs.NewFromConfig(cfg), r.PhysicalID)
			mark(&enc, key != "", err, "log group "+r.PhysicalID+" ("+region+")", kmsFinding(key), arn)
		case "launch_template":
			// Instances keep patient documents on their volumes while they
			// work on them: the template must encrypt every EBS volume.
			seenStore = true
			ok, detail, err := launchTemplateEncryption(ctx, ec2.NewFromConfig(cfg), r.PhysicalID)
			mark(&enc, ok, err, "launch template "+r.PhysicalID+" ("+region+")", "EBS "+detail,
				fmt.Sprintf("arn:aws:ec2:%s:%s:launch-template/%s", region, st.AccountID, r.PhysicalID))
		}
	}
	for _, x := range []struct {
		c    *Control
		seen bool
		what string
	}{{&trail, seenTrail, "trail"}, {&enc, seenStore, "data store"}, {&backup, seenDB || seenBucket, "database or bucket"}, {&public, seenBucket, "bucket"}} {
		if !x.seen {
			x.c.unknown(Line{Resource: st.ID, Finding: "the portal manages no " + x.what + " in this stack yet", At: at, Link: stackLink})
		}
	}
	return done()
}

func yesNo(ok bool, yes, no string) string {
	if ok {
		return yes
	}
	return no
}

// kmsFinding says how a store is encrypted, naming the key.
func kmsFinding(key string) string {
	if key == "" {
		return "NOT encrypted with a KMS key"
	}
	return "SSE-KMS with key " + key
}

func storageFinding(encrypted bool, key string) string {
	if !encrypted {
		return "storage is NOT encrypted"
	}
	if key == "" {
		return "storage encrypted"
	}
	return "storage encrypted with key " + key
}

func regionOr(region, def string) string {
	if region == "" {
		return def
	}
	return region
}

// readReplicas lists the live read replicas named base-<n>, as the
// rds_read_replica driver names them.
func readReplicas(ctx context.Context, c *rds.Client, base string) ([]rdstypes.DBInstance, error) {
	var out []rdstypes.DBInstance
	p := rds.NewDescribeDBInstancesPaginator(c, &rds.DescribeDBInstancesInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, db := range page.DBInstances {
			n, ok := strings.CutPrefix(aws.ToString(db.DBInstanceIdentifier), base+"-")
			if ok && n != "" && strings.Trim(n, "0123456789") == "" && aws.ToString(db.DBInstanceStatus) != "deleting" {
				out = append(out, db)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return aws.ToString(out[i].DBInstanceIdentifier) < aws.ToString(out[j].DBInstanceIdentifier)
	})
	return out, nil
}

// logGroupKey returns the KMS key ("" when it has none) and ARN of log
// group name.
func logGroupKey(ctx context.Context, c *cloudwatchlogs.Client, name string) (string, string, error) {
	p := cloudwatchlogs.NewDescribeLogGroupsPaginator(c, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(name)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return "", "", err
		}
		for _, g := range page.LogGroups {
			if aws.ToString(g.LogGroupName) == name {
				return aws.ToString(g.KmsKeyId), strings.TrimSuffix(aws.ToString(g.Arn), ":*"), nil
			}
		}
	}
	return "", "", fmt.Errorf("log group %s does not exist", name)
}

// launchTemplateEncryption reports whether the default version of launch
// template id encrypts every EBS volume it maps, and what it found. A
// template that maps no volume leaves them to the image: not encrypted by
// the template.
func launchTemplateEncryption(ctx context.Context, c *ec2.Client, id string) (bool, string, error) {
	out, err := c.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(id), Versions: []string{"$Default"}})
	if err != nil {
		return false, "", err
	}
	if len(out.LaunchTemplateVersions) == 0 || out.LaunchTemplateVersions[0].LaunchTemplateData == nil {
		return false, "", fmt.Errorf("launch template %s has no default version", id)
	}
	v := out.LaunchTemplateVersions[0]
	ok := true
	var parts []string
	for _, m := range v.LaunchTemplateData.BlockDeviceMappings {
		if m.Ebs == nil {
			continue
		}
		enc := aws.ToBool(m.Ebs.Encrypted)
		ok = ok && enc
		part := fmt.Sprintf("%s %s", aws.ToString(m.DeviceName), yesNo(enc, "encrypted", "NOT encrypted"))
		if k := aws.ToString(m.Ebs.KmsKeyId); k != "" {
			part += " with key " + k
		}
		parts = append(parts, part)
	}
	if len(parts) == 0 {
		return false, fmt.Sprintf("(version %d) maps no volume: the image decides", aws.ToInt64(v.VersionNumber)), nil
	}
	return ok, fmt.Sprintf("(version %d) %s", aws.ToInt64(v.VersionNumber), strings.Join(parts, ", ")), nil
}
