package verify_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/textract"
	txtypes "github.com/aws/aws-sdk-go-v2/service/textract/types"
	"github.com/aws/smithy-go"

	"portal/internal/peers"
	"portal/internal/peers/peertest"
	"portal/internal/verify"
)

func TestMain(m *testing.M) { peertest.Main(m) }

// fakeTextract answers like the real asynchronous text detection API: a
// job id, one IN_PROGRESS answer, then the document's LINE (and WORD)
// blocks over two pages of results.
type fakeTextract struct {
	mu    sync.Mutex
	lines []string
	polls int
	got   *txtypes.S3Object
}

func (f *fakeTextract) StartDocumentTextDetection(ctx context.Context, in *textract.StartDocumentTextDetectionInput, _ ...func(*textract.Options)) (*textract.StartDocumentTextDetectionOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = in.DocumentLocation.S3Object
	return &textract.StartDocumentTextDetectionOutput{JobId: aws.String("6f1c7b0e0f0a4d6f9f2d3b7c1a2e4f5a")}, nil
}

func (f *fakeTextract) GetDocumentTextDetection(ctx context.Context, in *textract.GetDocumentTextDetectionInput, _ ...func(*textract.Options)) (*textract.GetDocumentTextDetectionOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.polls++
	if f.polls == 1 {
		return &textract.GetDocumentTextDetectionOutput{JobStatus: txtypes.JobStatusInProgress}, nil
	}
	half := len(f.lines) / 2
	page, next := f.lines[:half], aws.String("page-2")
	if aws.ToString(in.NextToken) == "page-2" {
		page, next = f.lines[half:], nil
	}
	out := &textract.GetDocumentTextDetectionOutput{JobStatus: txtypes.JobStatusSucceeded, NextToken: next,
		DocumentMetadata: &txtypes.DocumentMetadata{Pages: aws.Int32(1)}}
	out.Blocks = append(out.Blocks, txtypes.Block{BlockType: txtypes.BlockTypePage, Page: aws.Int32(1)})
	for _, l := range page {
		out.Blocks = append(out.Blocks, txtypes.Block{BlockType: txtypes.BlockTypeLine, Text: aws.String(l), Confidence: aws.Float32(99.1), Page: aws.Int32(1)})
		for _, w := range strings.Fields(l) {
			out.Blocks = append(out.Blocks, txtypes.Block{BlockType: txtypes.BlockTypeWord, Text: aws.String(w), Confidence: aws.Float32(98.7), Page: aws.Int32(1)})
		}
	}
	return out, nil
}

// stack is a deployed stack's verification targets, built in a fresh moto
// account with the SDK.
type stack struct {
	cfg     aws.Config
	targets verify.Targets
}

func newStack(t *testing.T) stack {
	t.Helper()
	ctx := context.Background()
	cfg, account := peertest.AccountConfigForTest(t, peertest.MotoForTest(t), "eu-central-1")
	name := "medportal-dev-eu-" + account
	key, err := kms.NewFromConfig(cfg).CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	bucket := name + "-documents"
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket),
		CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraintEuCentral1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(bucket),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	// The documents bucket of the blueprints is TLS-only: moto (patched)
	// judges the policy as AWS does, and verification reaches it over
	// HTTPS.
	arn := "arn:aws:s3:::" + bucket
	if _, err := s3c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(bucket), Policy: aws.String(`{"Version":"2012-10-17","Statement":[{"Sid":"DenyInsecureTransport",` +
		`"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["` + arn + `","` + arn + `/*"],"Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`)}); err != nil {
		t.Fatal(err)
	}
	table := name + "-medicines"
	if _, err := dynamodb.NewFromConfig(cfg).CreateTable(ctx, &dynamodb.CreateTableInput{TableName: aws.String(table), BillingMode: ddbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("document_id"), AttributeType: ddbtypes.ScalarAttributeTypeS}, {AttributeName: aws.String("medicine"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("document_id"), KeyType: ddbtypes.KeyTypeHash}, {AttributeName: aws.String("medicine"), KeyType: ddbtypes.KeyTypeRange}}}); err != nil {
		t.Fatal(err)
	}
	topic, err := sns.NewFromConfig(cfg).CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(name + "-doctor-alerts")})
	if err != nil {
		t.Fatal(err)
	}
	// The doctors' receiver, as the blueprints subscribe it: moto
	// delivers to the alert inbox over TLS.
	if _, err := sns.NewFromConfig(cfg).Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("https"),
		Endpoint: aws.String("https://alerts.eu.dev.medportal.example/doctor")}); err != nil {
		t.Fatal(err)
	}
	ec2c := ec2.NewFromConfig(cfg)
	vpc, err := ec2c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.20.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := ec2c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.20.1.0/24"), AvailabilityZone: aws.String("eu-central-1a")})
	if err != nil {
		t.Fatal(err)
	}
	inst, err := ec2c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-12c6146b"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		InstanceType: ec2types.InstanceTypeT3Small, SubnetId: sub.Subnet.SubnetId})
	if err != nil {
		t.Fatal(err)
	}
	elb := elbv2.NewFromConfig(cfg)
	tg, err := elb.CreateTargetGroup(ctx, &elbv2.CreateTargetGroupInput{Name: aws.String("app-" + account), Port: aws.Int32(8080), Protocol: elbtypes.ProtocolEnumHttp,
		VpcId: vpc.Vpc.VpcId, HealthCheckPath: aws.String("/healthz")})
	if err != nil {
		t.Fatal(err)
	}
	tgARN := tg.TargetGroups[0].TargetGroupArn
	if _, err := elb.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: tgARN, Targets: []elbtypes.TargetDescription{{Id: inst.Instances[0].InstanceId, Port: aws.Int32(8080)}}}); err != nil {
		t.Fatal(err)
	}
	hc, err := route53.NewFromConfig(cfg).CreateHealthCheck(ctx, &route53.CreateHealthCheckInput{CallerReference: aws.String(t.Name()),
		HealthCheckConfig: &r53types.HealthCheckConfig{Type: r53types.HealthCheckTypeHttps, FullyQualifiedDomainName: aws.String("app.eu.dev.medportal.example"),
			Port: aws.Int32(443), ResourcePath: aws.String("/healthz"), FailureThreshold: aws.Int32(3)}})
	if err != nil {
		t.Fatal(err)
	}
	return stack{cfg: cfg, targets: verify.Targets{Stack: "dev-eu", DocumentsBucket: bucket, DocumentsKeyARN: aws.ToString(key.KeyMetadata.Arn), MedicinesTable: table,
		DoctorTopicARN: aws.ToString(topic.TopicArn), TargetGroupARN: aws.ToString(tgARN), HealthCheckID: aws.ToString(hc.HealthCheck.Id)}}
}

func newVerifier(t *testing.T) *verify.Verifier {
	t.Helper()
	v, err := verify.New()
	if err != nil {
		t.Fatal(err)
	}
	v.Poll = 5 * time.Millisecond
	return v
}

func states(r verify.Result) map[string]string {
	out := map[string]string{}
	for _, s := range r.Steps {
		out[s.Name] = s.State
	}
	return out
}

func TestHealthyStackPasses(t *testing.T) {
	st := newStack(t)
	v := newVerifier(t)
	c := verify.NewClients(st.cfg)
	fake := &fakeTextract{lines: v.Sample.Lines}
	c.Textract = fake
	r := v.Run(context.Background(), c, st.targets)
	for _, s := range r.Steps {
		t.Logf("%s: %s %s", s.Name, s.State, s.Detail)
	}
	if r.State != verify.Passed {
		t.Fatalf("got %s (%s), want passed", r.State, r.Summary())
	}
	if got, want := len(r.Steps), len(verify.StepNames()); got != want {
		t.Errorf("got %d steps, want %d", got, want)
	}
	if fake.got == nil || aws.ToString(fake.got.Bucket) != st.targets.DocumentsBucket {
		t.Errorf("Textract read %+v, want an object of bucket %s", fake.got, st.targets.DocumentsBucket)
	}
	var textractDetail string
	for _, s := range r.Steps {
		if s.Name == verify.StepTextract {
			textractDetail = s.Detail
		}
	}
	if !strings.Contains(textractDetail, "Amoxicillin, Ibuprofen, Omeprazole") {
		t.Errorf("textract step: got %q, want the three sample medicines", textractDetail)
	}
	wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := peertest.AlertInboxForTest(t).Wait(wctx, func(d peers.Delivery) bool { return d.TopicARN == st.targets.DoctorTopicARN })
	if err != nil {
		t.Fatal(err)
	}
	if d.URL != "https://alerts.eu.dev.medportal.example/doctor" || d.Subject != "Portal verification (test, ignore)" {
		t.Errorf("doctor alert delivery: got %+v, want the verification alert at the doctors' receiver", d)
	}
	// Cleanup removed every version of the sample and the medicine items.
	ctx := context.Background()
	s3c := s3.NewFromConfig(st.cfg, func(o *s3.Options) { o.UsePathStyle = true })
	vers, err := s3c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(st.targets.DocumentsBucket)})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(vers.Versions) + len(vers.DeleteMarkers); n != 0 {
		t.Errorf("documents bucket holds %d object versions after cleanup, want 0", n)
	}
	scan, err := dynamodb.NewFromConfig(st.cfg).Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(st.targets.MedicinesTable)})
	if err != nil {
		t.Fatal(err)
	}
	if scan.Count != 0 {
		t.Errorf("medicines table holds %d items after cleanup, want 0", scan.Count)
	}
}

func TestDeletedMedicinesTableFails(t *testing.T) {
	st := newStack(t)
	if _, err := dynamodb.NewFromConfig(st.cfg).DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(st.targets.MedicinesTable)}); err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t)
	c := verify.NewClients(st.cfg)
	c.Textract = &fakeTextract{lines: v.Sample.Lines}
	r := v.Run(context.Background(), c, st.targets)
	if r.State != verify.Failed {
		t.Fatalf("got %s, want failed", r.State)
	}
	want := "Store the medicine names Textract found in the medicines table: the medicines table " + st.targets.MedicinesTable + " does not exist"
	if got := r.Summary(); !strings.HasPrefix(got, want) {
		t.Errorf("summary: got %q, want it to start with %q", got, want)
	}
	if got := states(r); got[verify.StepUpload] != verify.Passed || got[verify.StepCleanup] != verify.Passed || got[verify.StepDoctorAlert] != verify.Passed {
		t.Errorf("other steps: got %v, want upload, alert and cleanup passed", got)
	}
}

// Against the emulator itself, Textract text detection cannot be served:
// the step says so, the step storing what it found is not run (never
// shown as passed), the table still takes a row, and the rest runs.
func TestTextractUnsupportedByEmulatorIsShownHonestly(t *testing.T) {
	st := newStack(t)
	v := newVerifier(t)
	r := v.Run(context.Background(), verify.NewClients(st.cfg), st.targets)
	want := map[string]string{verify.StepUpload: verify.Passed, verify.StepTextract: verify.Unsupported, verify.StepMedicines: verify.NotRun,
		verify.StepTable: verify.Passed, verify.StepDoctorAlert: verify.Passed, verify.StepTargets: verify.Passed, verify.StepHealthCheck: verify.Passed,
		verify.StepCleanup: verify.Passed}
	for _, s := range r.Steps {
		if s.State != want[s.Name] {
			t.Errorf("step %s: got %s (%s), want %s", s.Name, s.State, s.Detail, want[s.Name])
		}
		if s.Name == verify.StepMedicines && (s.After != verify.StepTextract || strings.Contains(s.Detail, "Amoxicillin")) {
			t.Errorf("medicines step: got %+v, want not run after Textract, naming no medicine", s)
		}
	}
	if r.State != verify.Incomplete || !r.OnlyUnsupported() {
		t.Errorf("result: got %s (only unsupported %v), want incomplete with only allowed gaps", r.State, r.OnlyUnsupported())
	}
}

// brokenRoute53 answers like an endpoint that cannot serve the call: a
// response the SDK cannot parse.
type brokenRoute53 struct{}

func (brokenRoute53) GetHealthCheckStatus(ctx context.Context, in *route53.GetHealthCheckStatusInput, _ ...func(*route53.Options)) (*route53.GetHealthCheckStatusOutput, error) {
	return nil, &smithy.OperationError{ServiceID: "Route 53", OperationName: "GetHealthCheckStatus", Err: &smithy.DeserializationError{Err: errors.New("unexpected EOF")}}
}

// TestOnlyTextractMayBeUnsupported: a step off the allow-list that the
// endpoint cannot serve fails the verification, whatever the portal is
// told to accept.
func TestOnlyTextractMayBeUnsupported(t *testing.T) {
	st := newStack(t)
	v := newVerifier(t)
	c := verify.NewClients(st.cfg)
	c.Route53 = brokenRoute53{}
	r := v.Run(context.Background(), c, st.targets)
	got := states(r)
	if got[verify.StepHealthCheck] != verify.Failed || r.State != verify.Failed || r.OnlyUnsupported() {
		t.Errorf("health check not served: got step %s, result %s (only unsupported %v), want failed", got[verify.StepHealthCheck], r.State, r.OnlyUnsupported())
	}
	if !strings.Contains(r.Summary(), "not supported by this endpoint") {
		t.Errorf("summary: got %q, want it to say the endpoint cannot serve the call", r.Summary())
	}
	// A result claiming another step unsupported is not accepted either.
	forged := verify.Result{State: verify.Incomplete, Steps: []verify.Step{{Name: verify.StepHealthCheck, State: verify.Unsupported}}}
	if forged.OnlyUnsupported() {
		t.Error("an unsupported health check counts as an allowed gap")
	}
}

func TestMedicines(t *testing.T) {
	tests := []struct {
		lines []string
		want  []string
	}{
		{[]string{"Rx: Amoxicillin 500 mg", "rx ibuprofen 200mg", "Patient: nobody"}, []string{"Amoxicillin", "Ibuprofen"}},
		{[]string{"RX. Omeprazole 20 mg", "Rx: omeprazole again"}, []string{"Omeprazole"}},
		{[]string{"no prescription here"}, nil},
	}
	for _, tt := range tests {
		got := verify.Medicines(tt.lines)
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("Medicines(%q): got %v, want %v", tt.lines, got, tt.want)
		}
	}
}

// A verification still running has no step yet: its summary must not
// claim that every step passed.
func TestSummaryOfUnfinishedVerification(t *testing.T) {
	for _, c := range []struct {
		name string
		r    verify.Result
		want string
	}{
		{"running", verify.Result{}, "not finished yet"},
		{"passed", verify.Result{State: verify.Passed, Steps: []verify.Step{{Name: verify.StepUpload, Title: "Upload", State: verify.Passed}}}, "every step passed"},
		{"failed", verify.Result{State: verify.Failed, Steps: []verify.Step{{Title: "Upload", State: verify.Failed, Detail: "AccessDenied"}}}, "Upload: AccessDenied"},
	} {
		if got := c.r.Summary(); got != c.want {
			t.Errorf("%s: Summary() = %q, want %q", c.name, got, c.want)
		}
	}
}
