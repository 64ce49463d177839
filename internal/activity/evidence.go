package activity

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/engine"
	"portal/internal/staff"
	"portal/internal/store"
)

// Control statuses.
const (
	Pass    = "pass"
	Fail    = "fail"
	Unknown = "unknown"
)

// Control is one control of an evidence report: what is checked, against
// which rule, its status and the evidence (resource ids and times).
type Control struct {
	Area     string
	Name     string
	Citation string
	Stack    string
	Status   string
	Evidence []string
}

// Report is an evidence report for one jurisdiction before rendering.
type Report struct {
	Jurisdiction string
	GeneratedAt  time.Time
	GeneratedBy  string
	Controls     []Control
}

// Counts returns how many controls pass, fail and are unknown.
func (r Report) Counts() (pass, fail, unknown int) {
	for _, c := range r.Controls {
		switch c.Status {
		case Pass:
			pass++
		case Fail:
			fail++
		default:
			unknown++
		}
	}
	return
}

// EvidenceSources are what evidence reports read besides AWS.
type EvidenceSources struct {
	Runs interface {
		RunSource
		GetPlan(ctx context.Context, id int64) (*engine.Plan, error)
	}
	State StateSource
	Staff *staff.Service
	Audit *audit.Log
	// Preventive, when set, gives the controls AWS itself enforces for a
	// jurisdiction (the organization's service control policies).
	Preventive func(ctx context.Context, jurisdiction string) []Control
}

// BuildReport checks every control of jurisdiction: per stack, the
// guardrails of the blueprint version in force (the plan of the last
// successful run), the trail logging and validating, encryption on every
// store, backups and public access, live from AWS; and, for the portal,
// staff two-factor, the audit chain and the latest log validation.
func (s *Service) BuildReport(ctx context.Context, jurisdiction string, by audit.Entry, src EvidenceSources) (Report, error) {
	r := Report{Jurisdiction: jurisdiction, GeneratedAt: s.now().UTC(), GeneratedBy: by.Actor}
	var stacks []StackRef
	for _, st := range s.cfg.Stacks {
		if st.Jurisdiction == jurisdiction {
			stacks = append(stacks, st)
		}
	}
	if len(stacks) == 0 {
		return r, apperr.New(apperr.Invalid, "jurisdiction %q has no stacks here", jurisdiction)
	}
	for _, st := range stacks {
		r.Controls = append(r.Controls, s.guardrailControl(ctx, st, src))
		r.Controls = append(r.Controls, s.liveControls(ctx, st, src)...)
	}
	if src.Preventive != nil {
		r.Controls = append(r.Controls, src.Preventive(ctx, jurisdiction)...)
	}
	r.Controls = append(r.Controls, s.portalControls(ctx, src)...)
	return r, nil
}

func (s *Service) guardrailControl(ctx context.Context, st StackRef, src EvidenceSources) Control {
	c := Control{Area: "Blueprint guardrails", Name: "Guardrails of the blueprint version in force pass", Stack: st.ID, Status: Unknown}
	if src.Runs == nil {
		c.Evidence = []string{"AWS is not configured"}
		return c
	}
	runs, _, err := src.Runs.ListRuns(ctx, engine.RunFilter{Stack: st.ID, State: engine.RunSucceeded, Limit: 1})
	if err != nil || len(runs) == 0 {
		c.Evidence = []string{"no successful run of this stack: nothing is in force"}
		return c
	}
	run := runs[0]
	p, err := src.Runs.GetPlan(ctx, run.PlanID)
	if err != nil {
		c.Evidence = []string{err.Error()}
		return c
	}
	c.Status = Pass
	c.Evidence = append(c.Evidence, fmt.Sprintf("run #%d applied plan #%d (blueprint version %s) at %s", run.ID, p.ID, short(p.BlueprintVersion),
		run.FinishedAt.UTC().Format(time.RFC3339)))
	failed := 0
	cites := map[string]bool{}
	for _, g := range p.Guardrails {
		if g.Citation != "" {
			cites[g.Citation] = true
		}
		if g.Status == "fail" {
			failed++
			c.Status = Fail
			c.Evidence = append(c.Evidence, fmt.Sprintf("%s failed on %s: %s (%s)", g.Rule, g.Resource, g.Message, g.Citation))
		}
	}
	c.Evidence = append(c.Evidence, fmt.Sprintf("%d guardrail results, %d failed", len(p.Guardrails), failed))
	c.Citation = strings.Join(sortedKeys(cites), "; ")
	return c
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// liveControls reads the stack's resources from AWS.
func (s *Service) liveControls(ctx context.Context, st StackRef, src EvidenceSources) []Control {
	trail := Control{Area: "CloudTrail", Name: "Trail is logging with log file validation", Stack: st.ID, Status: Unknown}
	enc := Control{Area: "Encryption", Name: "Every store of data is encrypted at rest with KMS", Stack: st.ID, Status: Unknown}
	backup := Control{Area: "Backups", Name: "Database backups retained, buckets versioned", Stack: st.ID, Status: Unknown}
	public := Control{Area: "Public access", Name: "Every bucket blocks public access", Stack: st.ID, Status: Unknown}
	out := []*Control{&trail, &enc, &backup, &public}
	done := func() []Control {
		var cs []Control
		for _, c := range out {
			cs = append(cs, *c)
		}
		return cs
	}
	if src.State == nil || s.cfg.Clients.Config == nil {
		for _, c := range out {
			c.Evidence = []string{"AWS is not configured"}
		}
		return done()
	}
	res, err := src.State.Resources(ctx, st.ID)
	if err != nil || len(res) == 0 {
		for _, c := range out {
			c.Evidence = []string{"the stack has not been applied: nothing to check"}
		}
		return done()
	}
	at := s.now().UTC().Format(time.RFC3339)
	// A control starts as passing once there is something to check; any
	// failure makes it fail, any unreadable resource leaves it unknown
	// unless it already failed.
	for _, c := range out {
		c.Status = Pass
	}
	mark := func(c *Control, ok bool, readErr error, evidence string) {
		switch {
		case readErr != nil:
			if c.Status != Fail {
				c.Status = Unknown
			}
			c.Evidence = append(c.Evidence, evidence+": could not read: "+engine.Explain(readErr))
		case !ok:
			c.Status = Fail
			c.Evidence = append(c.Evidence, evidence+" — FAILS")
		default:
			c.Evidence = append(c.Evidence, evidence)
		}
	}
	cfgFor := func(region string) (aws.Config, error) {
		if region == "" {
			region = st.Region
		}
		return s.cfg.Clients.Config(st.Environment, region)
	}
	seenTrail, seenStore, seenBucket, seenDB := false, false, false, false
	for _, r := range res {
		cfg, err := cfgFor(r.Region)
		if err != nil {
			continue
		}
		switch r.Type {
		case "cloudtrail":
			seenTrail = true
			ct := cloudtrail.NewFromConfig(cfg)
			status, err := ct.GetTrailStatus(ctx, &cloudtrail.GetTrailStatusInput{Name: aws.String(r.PhysicalID)})
			logging := err == nil && aws.ToBool(status.IsLogging)
			mark(&trail, logging, err, fmt.Sprintf("trail %s logging=%v at %s", r.PhysicalID, logging, at))
			// GetTrail names one trail; DescribeTrails' name list is not
			// honoured by every endpoint (moto lists every trail).
			d, err := ct.GetTrail(ctx, &cloudtrail.GetTrailInput{Name: aws.String(r.PhysicalID)})
			valid, key := false, ""
			if err == nil && d.Trail != nil {
				valid, key = aws.ToBool(d.Trail.LogFileValidationEnabled), aws.ToString(d.Trail.KmsKeyId)
			}
			mark(&trail, valid, err, fmt.Sprintf("trail %s log file validation=%v", r.PhysicalID, valid))
			// The trail's log files are a store too: CloudTrail encrypts
			// them with its key before they reach the bucket.
			seenStore = true
			mark(&enc, key != "", err, fmt.Sprintf("trail %s log files SSE-KMS=%v%s", r.PhysicalID, key != "", keyNote(key)))
		case "s3_bucket":
			seenStore, seenBucket = true, true
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
			mark(&enc, kms, err, fmt.Sprintf("s3://%s SSE-KMS=%v%s", r.PhysicalID, kms, keyNote(key)))
			v, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(r.PhysicalID)})
			versioned := err == nil && v.Status == "Enabled"
			mark(&backup, versioned, err, fmt.Sprintf("s3://%s versioning=%v", r.PhysicalID, versioned))
			pab, err := c.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: aws.String(r.PhysicalID)})
			blocked := err == nil && pab.PublicAccessBlockConfiguration != nil && aws.ToBool(pab.PublicAccessBlockConfiguration.BlockPublicAcls) &&
				aws.ToBool(pab.PublicAccessBlockConfiguration.BlockPublicPolicy) && aws.ToBool(pab.PublicAccessBlockConfiguration.IgnorePublicAcls) &&
				aws.ToBool(pab.PublicAccessBlockConfiguration.RestrictPublicBuckets)
			if engine.IsCode(err, "NoSuchPublicAccessBlockConfiguration") {
				err = nil
			}
			mark(&public, blocked, err, fmt.Sprintf("s3://%s public access blocked=%v", r.PhysicalID, blocked))
		case "dynamodb_table":
			seenStore = true
			d, err := dynamodb.NewFromConfig(cfg).DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(r.PhysicalID)})
			kms, key := false, ""
			if err == nil && d.Table.SSEDescription != nil && d.Table.SSEDescription.SSEType == "KMS" {
				kms, key = true, aws.ToString(d.Table.SSEDescription.KMSMasterKeyArn)
			}
			mark(&enc, kms, err, fmt.Sprintf("DynamoDB table %s SSE-KMS=%v%s", r.PhysicalID, kms, keyNote(key)))
		case "rds_instance":
			seenStore, seenDB = true, true
			d, err := rds.NewFromConfig(cfg).DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(r.PhysicalID)})
			var db rdstypes.DBInstance
			if err == nil && len(d.DBInstances) == 1 {
				db = d.DBInstances[0]
			}
			encrypted := aws.ToBool(db.StorageEncrypted)
			mark(&enc, encrypted, err, fmt.Sprintf("RDS %s (%s) storage encrypted=%v%s", r.PhysicalID, regionOr(r.Region, st.Region), encrypted, keyNote(aws.ToString(db.KmsKeyId))))
			retention := aws.ToInt32(db.BackupRetentionPeriod)
			mark(&backup, retention > 0, err, fmt.Sprintf("RDS %s backup retention=%d days", r.PhysicalID, retention))
		case "rds_read_replica":
			// The resource is a set of replicas named ID-1 .. ID-n, each
			// a store of its own (often in another region).
			seenStore = true
			reps, err := readReplicas(ctx, rds.NewFromConfig(cfg), r.PhysicalID)
			if err != nil {
				mark(&enc, false, err, fmt.Sprintf("RDS read replicas %s-N (%s)", r.PhysicalID, regionOr(r.Region, st.Region)))
			} else if len(reps) == 0 {
				mark(&enc, true, nil, fmt.Sprintf("RDS read replicas %s-N (%s): none exist", r.PhysicalID, regionOr(r.Region, st.Region)))
			}
			for _, db := range reps {
				encrypted := aws.ToBool(db.StorageEncrypted)
				mark(&enc, encrypted, nil, fmt.Sprintf("RDS read replica %s (%s) of %s storage encrypted=%v%s", aws.ToString(db.DBInstanceIdentifier),
					regionOr(r.Region, st.Region), aws.ToString(db.ReadReplicaSourceDBInstanceIdentifier), encrypted, keyNote(aws.ToString(db.KmsKeyId))))
			}
		case "sns_topic":
			seenStore = true
			a, err := sns.NewFromConfig(cfg).GetTopicAttributes(ctx, &sns.GetTopicAttributesInput{TopicArn: aws.String(r.PhysicalID)})
			key := ""
			if err == nil {
				key = a.Attributes["KmsMasterKeyId"]
			}
			mark(&enc, key != "", err, fmt.Sprintf("SNS topic %s SSE-KMS=%v%s", r.PhysicalID, key != "", keyNote(key)))
		case "log_group":
			seenStore = true
			key, err := logGroupKey(ctx, cloudwatchlogs.NewFromConfig(cfg), r.PhysicalID)
			mark(&enc, key != "", err, fmt.Sprintf("log group %s (%s) KMS=%v%s", r.PhysicalID, regionOr(r.Region, st.Region), key != "", keyNote(key)))
		case "launch_template":
			// Instances keep patient documents on their volumes while
			// they work on them: the template must encrypt every EBS volume.
			seenStore = true
			ok, detail, err := launchTemplateEncryption(ctx, ec2.NewFromConfig(cfg), r.PhysicalID)
			mark(&enc, ok, err, fmt.Sprintf("launch template %s EBS %s", r.PhysicalID, detail))
		}
	}
	for _, x := range []struct {
		c    *Control
		seen bool
		what string
	}{{&trail, seenTrail, "trail"}, {&enc, seenStore, "data store"}, {&backup, seenDB || seenBucket, "database or bucket"}, {&public, seenBucket, "bucket"}} {
		if !x.seen {
			x.c.Status = Unknown
			x.c.Evidence = append(x.c.Evidence, "the portal manages no "+x.what+" in this stack yet")
		}
	}
	return done()
}

// keyNote names the KMS key in evidence, when there is one.
func keyNote(key string) string {
	if key == "" {
		return ""
	}
	return " key=" + key
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

// logGroupKey returns the KMS key of log group name ("" when it has none).
func logGroupKey(ctx context.Context, c *cloudwatchlogs.Client, name string) (string, error) {
	p := cloudwatchlogs.NewDescribeLogGroupsPaginator(c, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(name)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return "", err
		}
		for _, g := range page.LogGroups {
			if aws.ToString(g.LogGroupName) == name {
				return aws.ToString(g.KmsKeyId), nil
			}
		}
	}
	return "", fmt.Errorf("log group %s does not exist", name)
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
		parts = append(parts, fmt.Sprintf("%s encrypted=%v%s", aws.ToString(m.DeviceName), enc, keyNote(aws.ToString(m.Ebs.KmsKeyId))))
	}
	if len(parts) == 0 {
		return false, fmt.Sprintf("(version %d) maps no volume: the image decides", aws.ToInt64(v.VersionNumber)), nil
	}
	return ok, fmt.Sprintf("(version %d) %s", aws.ToInt64(v.VersionNumber), strings.Join(parts, ", ")), nil
}

func (s *Service) portalControls(ctx context.Context, src EvidenceSources) []Control {
	tfa := Control{Area: "Portal", Name: "Staff who must use two-factor authentication have it", Status: Unknown}
	if src.Staff != nil {
		users, err := src.Staff.List(ctx)
		if err != nil {
			tfa.Evidence = []string{err.Error()}
		} else {
			tfa.Status = Pass
			n := 0
			for _, u := range users {
				if u.Disabled || !src.Staff.Requires2FA(u) {
					continue
				}
				n++
				if !u.TOTPEnabled {
					tfa.Status = Fail
					tfa.Evidence = append(tfa.Evidence, fmt.Sprintf("user:%d %s has no two-factor authentication", u.ID, u.Email))
				}
			}
			tfa.Evidence = append(tfa.Evidence, fmt.Sprintf("%d active staff hold a role that requires two-factor", n))
		}
	}
	chain := Control{Area: "Portal", Name: "The portal's audit chain is intact", Status: Unknown}
	if src.Audit != nil {
		v, err := src.Audit.Verify(ctx)
		switch {
		case err != nil:
			chain.Evidence = []string{err.Error()}
		case v.OK:
			chain.Status = Pass
			chain.Evidence = []string{fmt.Sprintf("%d records verified; head #%d %s", v.Checked, v.HeadSeq, v.HeadHash)}
		default:
			chain.Status = Fail
			chain.Evidence = []string{fmt.Sprintf("broken at record #%d: %s", v.FirstBroken, v.Reason)}
		}
	}
	logs := Control{Area: "CloudTrail", Name: "Log file integrity validation passes", Status: Unknown}
	vs, err := s.Validations(ctx, 1)
	switch {
	case err != nil:
		logs.Evidence = []string{err.Error()}
	case len(vs) == 0:
		logs.Evidence = []string{"no validation has run yet"}
	default:
		v := vs[0]
		logs.Status = Fail
		if v.OK {
			logs.Status = Pass
		}
		logs.Evidence = []string{fmt.Sprintf("validation #%d at %s: %d digests, %d log files, %d findings", v.ID, v.FinishedAt.UTC().Format(time.RFC3339),
			v.Digests, v.LogFiles, len(v.Problems))}
	}
	return []Control{tfa, chain, logs}
}

// StoredReport is an evidence report as stored.
type StoredReport struct {
	ID                     int64
	Jurisdiction           string
	GeneratedAt            time.Time
	GeneratedBy            string
	Passed, Failed, Unknwn int
	SHA256                 string
	Body                   []byte
}

// SaveReport stores body, the rendered report r, with its SHA-256, and
// records it in the audit trail in the same transaction.
func (s *Service) SaveReport(ctx context.Context, by audit.Entry, r Report, body []byte) (StoredReport, error) {
	sum := sha256.Sum256(body)
	pass, fail, unknown := r.Counts()
	sr := StoredReport{Jurisdiction: r.Jurisdiction, GeneratedAt: r.GeneratedAt, GeneratedBy: by.Actor, Passed: pass, Failed: fail, Unknwn: unknown,
		SHA256: hex.EncodeToString(sum[:]), Body: body}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO activity_reports (jurisdiction, generated_at, generated_by, passed, failed, unknown, sha256, body)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, sr.Jurisdiction, store.Time(sr.GeneratedAt), sr.GeneratedBy, pass, fail, unknown, sr.SHA256, string(body))
		if err != nil {
			return fmt.Errorf("activity: save report: %w", err)
		}
		sr.ID, _ = res.LastInsertId()
		e := by
		e.Action, e.Target = "activity.evidence_report", fmt.Sprintf("report:%d jurisdiction:%s", sr.ID, sr.Jurisdiction)
		e.Details = map[string]any{"sha256": sr.SHA256, "pass": pass, "fail": fail, "unknown": unknown}
		_, err = s.audit.Append(ctx, tx, e)
		return err
	})
	return sr, err
}

// Reports lists stored reports newest first (without bodies).
func (s *Service) Reports(ctx context.Context, limit int) ([]StoredReport, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, jurisdiction, generated_at, generated_by, passed, failed, unknown, sha256 FROM activity_reports ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("activity: reports: %w", err)
	}
	defer rows.Close()
	var out []StoredReport
	for rows.Next() {
		var r StoredReport
		var at string
		if err := rows.Scan(&r.ID, &r.Jurisdiction, &at, &r.GeneratedBy, &r.Passed, &r.Failed, &r.Unknwn, &r.SHA256); err != nil {
			return nil, err
		}
		r.GeneratedAt, _ = store.ParseTime(at)
		out = append(out, r)
	}
	return out, rows.Err()
}

// GetReport returns stored report id with its body.
func (s *Service) GetReport(ctx context.Context, id int64) (StoredReport, error) {
	var r StoredReport
	var at, body string
	err := s.db.QueryRowContext(ctx, `SELECT id, jurisdiction, generated_at, generated_by, passed, failed, unknown, sha256, body FROM activity_reports WHERE id = ?`, id).
		Scan(&r.ID, &r.Jurisdiction, &at, &r.GeneratedBy, &r.Passed, &r.Failed, &r.Unknwn, &r.SHA256, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return r, apperr.Wrap(apperr.NotFound, store.ErrNotFound, "no evidence report %d", id)
	} else if err != nil {
		return r, fmt.Errorf("activity: report %d: %w", id, err)
	}
	r.GeneratedAt, _ = store.ParseTime(at)
	r.Body = []byte(body)
	return r, nil
}

// SortControls orders controls by area, stack and name.
func SortControls(cs []Control) {
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].Area+cs[i].Stack+cs[i].Name < cs[j].Area+cs[j].Stack+cs[j].Name })
}
