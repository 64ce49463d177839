// Package verify checks, after every apply and on demand, that a deployed
// stack does what the service needs: it uploads a sample prescription (a
// fictional one shipped in sample/, no patient data) to the documents
// bucket with the documents key, extracts its text with Textract, stores
// the medicine names found in the medicines table, publishes a test alert
// to the doctors' topic, checks the load balancer's targets and the Route 53
// health check, and removes what it wrote.
//
// Each step reports passed, failed (with a precise message), unsupported
// or not run (an earlier step's outcome left it nothing to do: never shown
// as passed). Only the steps on the allow-list (MayBeUnsupported: Textract
// text detection, which the local emulator cannot serve) may be
// unsupported; any other call the endpoint cannot serve or answers with
// something unreadable fails the step.
package verify

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/textract"
	txtypes "github.com/aws/aws-sdk-go-v2/service/textract/types"

	"portal/internal/engine"
)

// Step and result states.
const (
	Passed      = "passed"
	Failed      = "failed"
	Unsupported = "unsupported"
	// NotRun is a step an earlier step's outcome left nothing to do.
	NotRun = "not run"
	// Incomplete is a result with no failure but a step that could not be
	// carried out (unsupported, or not run because of one that was).
	Incomplete = "incomplete"
)

// Step names, in the order they run.
const (
	StepUpload      = "upload"
	StepTextract    = "textract"
	StepMedicines   = "medicines"
	StepTable       = "medicines_table"
	StepDoctorAlert = "doctor_alert"
	StepTargets     = "targets"
	StepHealthCheck = "health_check"
	StepCleanup     = "cleanup"
)

// Step is the result of one verification step.
type Step struct {
	Name   string        `json:"name"`
	Title  string        `json:"title"`
	State  string        `json:"state"`
	Detail string        `json:"detail"`
	Took   time.Duration `json:"took"`
	// After names the step whose outcome left this one not run.
	After string `json:"after,omitempty"`
}

// MayBeUnsupported is the allow-list of steps an endpoint may be unable to
// serve without failing the verification: only Textract text detection,
// which the local emulator cannot serve (its answer does not parse). Every
// other step the endpoint cannot serve fails.
var MayBeUnsupported = map[string]bool{StepTextract: true}

// Result is a whole verification.
type Result struct {
	State string `json:"state"`
	Steps []Step `json:"steps"`
}

// Summary is the first failing or incomplete step, in words; a result
// with no step yet (a verification still running) is "not finished yet",
// never "every step passed".
func (r Result) Summary() string {
	for _, s := range r.Steps {
		if s.State == Failed {
			return s.Title + ": " + s.Detail
		}
	}
	for _, s := range r.Steps {
		if s.State == Unsupported || s.State == NotRun {
			return s.Title + ": " + s.Detail
		}
	}
	if r.State != Passed || len(r.Steps) == 0 {
		return "not finished yet"
	}
	return "every step passed"
}

// OnlyUnsupported reports whether r failed nothing and every step it could
// not carry out is on the allow-list (MayBeUnsupported), or was not run
// because of one that is.
func (r Result) OnlyUnsupported() bool {
	if r.State != Incomplete {
		return false
	}
	allowed := map[string]bool{}
	for _, s := range r.Steps {
		switch {
		case s.State == Failed:
			return false
		case s.State == Unsupported && !MayBeUnsupported[s.Name]:
			return false
		case s.State == Unsupported:
			allowed[s.Name] = true
		}
	}
	for _, s := range r.Steps {
		if s.State == NotRun && !allowed[s.After] {
			return false
		}
	}
	return true
}

// finish sets r's state from its steps: failed if any step failed, or was
// unsupported without being on the allow-list; incomplete if a step was
// unsupported (allowed) or not run; passed otherwise.
func (r *Result) finish() {
	r.State = Passed
	for _, s := range r.Steps {
		if s.State == Failed || (s.State == Unsupported && !MayBeUnsupported[s.Name]) {
			r.State = Failed
			return
		}
		if s.State == Unsupported || s.State == NotRun {
			r.State = Incomplete
		}
	}
}

// Titles of the steps, as shown to people.
var titles = map[string]string{
	StepUpload:      "Upload the sample prescription to the documents bucket with its KMS key",
	StepTextract:    "Extract its text with Textract",
	StepMedicines:   "Store the medicine names Textract found in the medicines table",
	StepTable:       "The medicines table takes a row and gives it back",
	StepDoctorAlert: "Publish an alert to the doctors' topic",
	StepTargets:     "Load balancer targets are healthy",
	StepHealthCheck: "Route 53 health check passes",
	StepCleanup:     "Remove what the check wrote",
}

// StepNames lists the steps in order.
func StepNames() []string {
	return []string{StepUpload, StepTextract, StepMedicines, StepTable, StepDoctorAlert, StepTargets, StepHealthCheck, StepCleanup}
}

// Title returns the title of step name.
func Title(name string) string { return titles[name] }

// The AWS calls verification makes, with the SDK's signatures.
type (
	S3API interface {
		PutObject(ctx context.Context, params *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
		DeleteObject(ctx context.Context, params *s3.DeleteObjectInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
	}
	TextractAPI interface {
		StartDocumentTextDetection(ctx context.Context, params *textract.StartDocumentTextDetectionInput, optFns ...func(*textract.Options)) (*textract.StartDocumentTextDetectionOutput, error)
		GetDocumentTextDetection(ctx context.Context, params *textract.GetDocumentTextDetectionInput, optFns ...func(*textract.Options)) (*textract.GetDocumentTextDetectionOutput, error)
	}
	DynamoDBAPI interface {
		PutItem(ctx context.Context, params *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
		GetItem(ctx context.Context, params *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
		DeleteItem(ctx context.Context, params *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	}
	SNSAPI interface {
		Publish(ctx context.Context, params *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error)
	}
	ELBAPI interface {
		DescribeTargetHealth(ctx context.Context, params *elbv2.DescribeTargetHealthInput, optFns ...func(*elbv2.Options)) (*elbv2.DescribeTargetHealthOutput, error)
	}
	Route53API interface {
		GetHealthCheckStatus(ctx context.Context, params *route53.GetHealthCheckStatusInput, optFns ...func(*route53.Options)) (*route53.GetHealthCheckStatusOutput, error)
	}
)

// Clients are the AWS clients of one stack's account and region.
type Clients struct {
	S3       S3API
	Textract TextractAPI
	DynamoDB DynamoDBAPI
	SNS      SNSAPI
	ELB      ELBAPI
	Route53  Route53API
}

// NewClients builds the clients from cfg (the stack's account and region).
// A custom endpoint (the local emulator) gets path-style S3 addressing.
func NewClients(cfg aws.Config) Clients {
	return Clients{
		S3:       s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = cfg.BaseEndpoint != nil }),
		Textract: textract.NewFromConfig(cfg),
		DynamoDB: dynamodb.NewFromConfig(cfg),
		SNS:      sns.NewFromConfig(cfg),
		ELB:      elbv2.NewFromConfig(cfg),
		Route53:  route53.NewFromConfig(cfg),
	}
}

// Targets are the deployed resources verification exercises.
type Targets struct {
	Stack           string
	DocumentsBucket string
	DocumentsKeyARN string
	MedicinesTable  string
	DoctorTopicARN  string
	TargetGroupARN  string
	HealthCheckID   string
}

// TargetsFrom finds the targets among a stack's recorded resources (the
// blueprint's documents_bucket, documents_key, medicines_table,
// doctor_alerts, app_tg and health).
func TargetsFrom(stack string, res []engine.StateResource) Targets {
	t := Targets{Stack: stack}
	out := func(r engine.StateResource, keys ...string) string {
		for _, k := range keys {
			if v := r.Outputs[k]; v != "" {
				return v
			}
		}
		return r.PhysicalID
	}
	for _, r := range res {
		switch r.ID {
		case "documents_bucket":
			t.DocumentsBucket = out(r, "name")
		case "documents_key":
			t.DocumentsKeyARN = out(r, "arn")
		case "medicines_table":
			t.MedicinesTable = out(r, "name")
		case "doctor_alerts":
			t.DoctorTopicARN = out(r, "arn")
		case "app_tg":
			t.TargetGroupARN = out(r, "arn")
		case "health":
			t.HealthCheckID = out(r, "id")
		}
	}
	return t
}

//go:embed sample/prescription.pdf sample/prescription.json
var sampleFS embed.FS

// Sample is the fictional prescription verification uploads.
type Sample struct {
	File        string   `json:"file"`
	ContentType string   `json:"content_type"`
	Note        string   `json:"note"`
	Lines       []string `json:"lines"`
	Medicines   []string `json:"medicines"`
	Body        []byte   `json:"-"`
}

// LoadSample returns the shipped sample prescription.
func LoadSample() (Sample, error) {
	var s Sample
	b, err := sampleFS.ReadFile("sample/prescription.json")
	if err != nil {
		return s, fmt.Errorf("verify: sample: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("verify: sample: %w", err)
	}
	if s.Body, err = sampleFS.ReadFile("sample/" + s.File); err != nil {
		return s, fmt.Errorf("verify: sample: %w", err)
	}
	return s, nil
}

var rxLine = regexp.MustCompile(`(?i)^\s*rx[:.]?\s*([a-z][a-z-]+)`)

// Medicines returns the medicine names on prescription lines ("Rx: Name
// dose ..."), in order, without duplicates.
func Medicines(lines []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, l := range lines {
		if m := rxLine.FindStringSubmatch(l); m != nil {
			name := strings.ToUpper(m[1][:1]) + strings.ToLower(m[1][1:])
			if !seen[name] {
				seen[name] = true
				out = append(out, name)
			}
		}
	}
	return out
}

// Verifier runs verifications.
type Verifier struct {
	Sample Sample
	// Poll is how often Textract's job status is asked; Timeout bounds the
	// whole extraction.
	Poll, Timeout time.Duration
	Now           func() time.Time
}

// New returns a Verifier with the shipped sample.
func New() (*Verifier, error) {
	s, err := LoadSample()
	if err != nil {
		return nil, err
	}
	return &Verifier{Sample: s, Poll: time.Second, Timeout: 2 * time.Minute, Now: time.Now}, nil
}

// unsupported reports whether err means the endpoint cannot serve the call.
func unsupported(err error) bool {
	return strings.HasPrefix(engine.Explain(err), "not supported by this endpoint")
}

// explain words an AWS error for the step's detail.
func explain(err error) string { return engine.Explain(err) }

// Run verifies the stack t with clients c. It never returns early: every
// step reports, and cleanup always runs.
func (v *Verifier) Run(ctx context.Context, c Clients, t Targets) Result {
	now := v.Now
	if now == nil {
		now = time.Now
	}
	var res Result
	add := func(name string, start time.Time, state, detail string) {
		res.Steps = append(res.Steps, Step{Name: name, Title: titles[name], State: state, Detail: detail, Took: now().Sub(start)})
	}
	notRun := func(name, after, detail string) {
		res.Steps = append(res.Steps, Step{Name: name, Title: titles[name], State: NotRun, Detail: detail, After: after})
	}
	docID := fmt.Sprintf("portal-verification-%s-%d", t.Stack, now().UnixNano())
	key := "portal-verification/" + docID + "/" + v.Sample.File

	// 1. Upload with the documents key.
	start := now()
	var versionID string
	uploaded := false
	switch {
	case t.DocumentsBucket == "":
		add(StepUpload, start, Failed, "the stack has no documents bucket recorded: deploy the stack first")
	case t.DocumentsKeyARN == "":
		add(StepUpload, start, Failed, "the stack has no documents KMS key recorded: deploy the stack first")
	default:
		out, err := c.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(t.DocumentsBucket), Key: aws.String(key), Body: strings.NewReader(string(v.Sample.Body)),
			ContentType: aws.String(v.Sample.ContentType), ServerSideEncryption: s3types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String(t.DocumentsKeyARN)})
		switch {
		case err != nil:
			add(StepUpload, start, Failed, fmt.Sprintf("could not upload to bucket %s: %s", t.DocumentsBucket, explain(err)))
		case out.ServerSideEncryption != s3types.ServerSideEncryptionAwsKms:
			uploaded, versionID = true, aws.ToString(out.VersionId)
			add(StepUpload, start, Failed, fmt.Sprintf("bucket %s stored the object without KMS encryption (got %q)", t.DocumentsBucket, out.ServerSideEncryption))
		default:
			uploaded, versionID = true, aws.ToString(out.VersionId)
			add(StepUpload, start, Passed, fmt.Sprintf("s3://%s/%s, encrypted with %s", t.DocumentsBucket, key, shortARN(t.DocumentsKeyARN)))
		}
	}

	// 2. Textract: the one step the allow-list lets an endpoint not serve.
	start = now()
	var found []string
	textract := Failed
	if !uploaded {
		notRun(StepTextract, StepUpload, "nothing was uploaded to read")
		textract = NotRun
	} else {
		lines, err := v.detect(ctx, c.Textract, t.DocumentsBucket, key)
		switch {
		case err != nil && unsupported(err) && MayBeUnsupported[StepTextract]:
			textract = Unsupported
			add(StepTextract, start, Unsupported, "Textract text detection is not supported by this endpoint (the local emulator cannot serve GetDocumentTextDetection: "+explain(err)+")")
		case err != nil:
			add(StepTextract, start, Failed, "text detection failed: "+explain(err))
		default:
			found = Medicines(lines)
			if len(found) == 0 {
				add(StepTextract, start, Failed, fmt.Sprintf("Textract read %d lines but no medicine names (want %s)", len(lines), strings.Join(v.Sample.Medicines, ", ")))
			} else {
				textract = Passed
				add(StepTextract, start, Passed, fmt.Sprintf("%d lines read; medicines found: %s", len(lines), strings.Join(found, ", ")))
			}
		}
	}

	// 3. The medicines Textract found, stored.
	start = now()
	item := func(medicine string) map[string]ddbtypes.AttributeValue {
		return map[string]ddbtypes.AttributeValue{"document_id": &ddbtypes.AttributeValueMemberS{Value: docID}, "medicine": &ddbtypes.AttributeValueMemberS{Value: medicine}}
	}
	// writeBack writes a row and reads it back; it returns the problem, if
	// any, and whether the row was written.
	writeBack := func(medicine string) (string, bool) {
		if _, err := c.DynamoDB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(t.MedicinesTable), Item: item(medicine)}); err != nil {
			return tableProblem(t.MedicinesTable, "write", err), false
		}
		got, err := c.DynamoDB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(t.MedicinesTable), ConsistentRead: aws.Bool(true), Key: item(medicine)})
		if err != nil {
			return tableProblem(t.MedicinesTable, "read back", err), true
		}
		if len(got.Item) == 0 {
			return fmt.Sprintf("%s was written to table %s but reading it back found nothing", medicine, t.MedicinesTable), true
		}
		return "", true
	}
	var written []string
	switch {
	case textract == Unsupported:
		notRun(StepMedicines, StepTextract, "Textract did not read the document, so no medicine names were found to store")
	case textract != Passed:
		notRun(StepMedicines, StepTextract, "Textract found no medicine names to store")
	case t.MedicinesTable == "":
		add(StepMedicines, start, Failed, "the stack has no medicines table recorded: deploy the stack first")
	default:
		var problem string
		for _, m := range found {
			p, ok := writeBack(m)
			if ok {
				written = append(written, m)
			}
			if problem = p; problem != "" {
				break
			}
		}
		if problem != "" {
			add(StepMedicines, start, Failed, problem)
		} else {
			add(StepMedicines, start, Passed, fmt.Sprintf("stored and read back %s in table %s", strings.Join(found, ", "), t.MedicinesTable))
		}
	}

	// 4. The medicines table itself takes a row, whatever Textract did.
	start = now()
	probe := "portal-verification-row"
	if t.MedicinesTable == "" {
		add(StepTable, start, Failed, "the stack has no medicines table recorded: deploy the stack first")
	} else {
		p, ok := writeBack(probe)
		if ok {
			written = append(written, probe)
		}
		if p != "" {
			add(StepTable, start, Failed, p)
		} else {
			add(StepTable, start, Passed, fmt.Sprintf("wrote the row (document_id %s, medicine %s) to table %s with its key and read it back", docID, probe, t.MedicinesTable))
		}
	}

	// 5. Doctors' alert.
	start = now()
	if t.DoctorTopicARN == "" {
		add(StepDoctorAlert, start, Failed, "the stack has no doctors' alert topic recorded: deploy the stack first")
	} else {
		out, err := c.SNS.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(t.DoctorTopicARN), Subject: aws.String("Portal verification (test, ignore)"),
			Message:           aws.String("Post-deploy verification of " + t.Stack + ": a test alert carrying no patient data. Ignore it."),
			MessageAttributes: map[string]snstypes.MessageAttributeValue{"portal-verification": {DataType: aws.String("String"), StringValue: aws.String("true")}}})
		if err != nil {
			add(StepDoctorAlert, start, Failed, fmt.Sprintf("could not publish to %s: %s", t.DoctorTopicARN, explain(err)))
		} else {
			add(StepDoctorAlert, start, Passed, "published message "+aws.ToString(out.MessageId)+" to "+t.DoctorTopicARN)
		}
	}

	// 6. Targets.
	start = now()
	if t.TargetGroupARN == "" {
		add(StepTargets, start, Failed, "the stack has no target group recorded: deploy the stack first")
	} else {
		state, detail := targetsHealth(ctx, c.ELB, t.TargetGroupARN)
		add(StepTargets, start, state, detail)
	}

	// 7. Route 53 health check.
	start = now()
	if t.HealthCheckID == "" {
		add(StepHealthCheck, start, Failed, "the stack has no Route 53 health check recorded: deploy the stack first")
	} else {
		state, detail := healthCheck(ctx, c.Route53, t.HealthCheckID)
		add(StepHealthCheck, start, state, detail)
	}

	// 8. Cleanup.
	start = now()
	var problems []string
	var cleaned []string
	if uploaded {
		in := &s3.DeleteObjectInput{Bucket: aws.String(t.DocumentsBucket), Key: aws.String(key)}
		if versionID != "" {
			// The bucket is versioned: delete the version itself, not just
			// hide it behind a delete marker.
			in.VersionId = aws.String(versionID)
		}
		if _, err := c.S3.DeleteObject(ctx, in); err != nil {
			problems = append(problems, fmt.Sprintf("the sample s3://%s/%s: %s", t.DocumentsBucket, key, explain(err)))
		} else {
			cleaned = append(cleaned, "the uploaded sample")
		}
	}
	for _, m := range written {
		if _, err := c.DynamoDB.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(t.MedicinesTable), Key: item(m)}); err != nil {
			problems = append(problems, fmt.Sprintf("row %s in %s: %s", m, t.MedicinesTable, explain(err)))
		}
	}
	if len(written) > 0 && len(problems) == 0 {
		cleaned = append(cleaned, fmt.Sprintf("%d row(s) of the medicines table", len(written)))
	}
	switch {
	case len(problems) > 0:
		add(StepCleanup, start, Failed, "could not remove: "+strings.Join(problems, "; "))
	case len(cleaned) == 0:
		add(StepCleanup, start, Passed, "nothing was written")
	default:
		add(StepCleanup, start, Passed, "removed "+strings.Join(cleaned, " and "))
	}
	res.finish()
	return res
}

func tableProblem(table, what string, err error) string {
	var nf *ddbtypes.ResourceNotFoundException
	if errors.As(err, &nf) || engine.IsCode(err, "ResourceNotFoundException") {
		return fmt.Sprintf("the medicines table %s does not exist (%s)", table, explain(err))
	}
	return fmt.Sprintf("could not %s table %s: %s", what, table, explain(err))
}

// detect runs asynchronous text detection on the uploaded object and
// returns its LINE blocks' text.
func (v *Verifier) detect(ctx context.Context, tx TextractAPI, bucket, key string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, v.Timeout)
	defer cancel()
	start, err := tx.StartDocumentTextDetection(ctx, &textract.StartDocumentTextDetectionInput{
		DocumentLocation:   &txtypes.DocumentLocation{S3Object: &txtypes.S3Object{Bucket: aws.String(bucket), Name: aws.String(key)}},
		ClientRequestToken: aws.String(tokenFor(key))})
	if err != nil {
		return nil, err
	}
	job := aws.ToString(start.JobId)
	var lines []string
	var next *string
	for {
		out, err := tx.GetDocumentTextDetection(ctx, &textract.GetDocumentTextDetectionInput{JobId: aws.String(job), NextToken: next})
		if err != nil {
			return nil, err
		}
		switch out.JobStatus {
		case txtypes.JobStatusInProgress:
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("Textract job %s did not finish within %s", job, v.Timeout)
			case <-time.After(v.Poll):
			}
			continue
		case txtypes.JobStatusFailed:
			return nil, fmt.Errorf("Textract job %s failed: %s", job, aws.ToString(out.StatusMessage))
		}
		for _, b := range out.Blocks {
			if b.BlockType == txtypes.BlockTypeLine {
				lines = append(lines, aws.ToString(b.Text))
			}
		}
		if out.NextToken == nil {
			return lines, nil
		}
		next = out.NextToken
	}
}

// tokenFor is an idempotency token for key (Textract allows 64 characters
// of [a-zA-Z0-9-_]).
func tokenFor(key string) string {
	var b strings.Builder
	for _, r := range key {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			b.WriteRune(r)
		}
	}
	s := b.String()
	if len(s) > 64 {
		s = s[len(s)-64:]
	}
	return s
}

func targetsHealth(ctx context.Context, elb ELBAPI, tg string) (string, string) {
	out, err := elb.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg)})
	if err != nil {
		return Failed, fmt.Sprintf("could not read the health of target group %s: %s", tg, explain(err))
	}
	if len(out.TargetHealthDescriptions) == 0 {
		return Failed, "no targets are registered in target group " + tg + ": the Auto Scaling group has no running instances"
	}
	var bad []string
	for _, d := range out.TargetHealthDescriptions {
		if d.TargetHealth == nil || d.TargetHealth.State != "healthy" {
			state, reason := "unknown", ""
			if d.TargetHealth != nil {
				state, reason = string(d.TargetHealth.State), string(d.TargetHealth.Reason)
			}
			id := ""
			if d.Target != nil {
				id = aws.ToString(d.Target.Id)
			}
			s := id + " is " + state
			if reason != "" {
				s += " (" + reason + ")"
			}
			bad = append(bad, s)
		}
	}
	if len(bad) > 0 {
		return Failed, fmt.Sprintf("%d of %d targets are not healthy: %s", len(bad), len(out.TargetHealthDescriptions), strings.Join(bad, "; "))
	}
	return Passed, fmt.Sprintf("%d of %d targets healthy", len(out.TargetHealthDescriptions), len(out.TargetHealthDescriptions))
}

func healthCheck(ctx context.Context, r53 Route53API, id string) (string, string) {
	out, err := r53.GetHealthCheckStatus(ctx, &route53.GetHealthCheckStatusInput{HealthCheckId: aws.String(id)})
	if err != nil {
		return Failed, fmt.Sprintf("could not read health check %s: %s", id, explain(err))
	}
	if len(out.HealthCheckObservations) == 0 {
		return Failed, "health check " + id + " has no observations yet"
	}
	var bad []string
	for _, o := range out.HealthCheckObservations {
		status := ""
		if o.StatusReport != nil {
			status = aws.ToString(o.StatusReport.Status)
		}
		if !strings.HasPrefix(status, "Success") {
			bad = append(bad, fmt.Sprintf("%s (%s): %s", aws.ToString(o.IPAddress), o.Region, status))
		}
	}
	if len(bad) > 0 {
		return Failed, fmt.Sprintf("health check %s fails from %d of %d checkers: %s", id, len(bad), len(out.HealthCheckObservations), strings.Join(bad, "; "))
	}
	return Passed, fmt.Sprintf("health check %s passes from %d checker(s)", id, len(out.HealthCheckObservations))
}

func shortARN(arn string) string {
	if i := strings.LastIndex(arn, "/"); i >= 0 {
		return "key " + arn[i+1:]
	}
	return arn
}

// Stacks verifies deployed stacks through their environment's AWS account.
type Stacks struct {
	Verifier *Verifier
	// Config returns the AWS configuration of an environment's account in
	// a region (accounts.Accounts.Config in production).
	Config func(environment, region string) (aws.Config, error)
}

// VerifyStack verifies the stack described by info from its recorded
// resources.
func (s Stacks) VerifyStack(ctx context.Context, info engine.StackInfo, res []engine.StateResource) Result {
	cfg, err := s.Config(info.Environment, info.Region)
	if err != nil {
		return Result{State: Failed, Steps: []Step{{Name: StepUpload, Title: titles[StepUpload], State: Failed,
			Detail: "no AWS access to " + info.Environment + ": " + err.Error()}}}
	}
	return s.Verifier.Run(ctx, NewClients(cfg), TargetsFrom(info.ID, res))
}
