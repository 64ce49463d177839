package activity

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Identity is who a generated record says acted.
type Identity struct {
	Type      string // IAMUser, AssumedRole, Root
	Account   string
	User      string // IAM user name (IAMUser)
	Role      string // role name (AssumedRole)
	Session   string // role session name (AssumedRole)
	AccessKey string
	MFA       bool
}

// Record describes one CloudTrail record to generate, in CloudTrail's own
// shape (eventVersion 1.08). The sandbox writes these for its generated
// activity and for the portal's own AWS calls; tests and benchmarks write
// them in place of CloudTrail.
type Record struct {
	EventID, RequestID     string
	Time                   time.Time
	Account, Region        string
	Source, Name           string
	Identity               Identity
	SourceIP, UserAgent    string
	ReadOnly               bool
	RequestParameters      map[string]any
	ResponseElements       map[string]any
	AdditionalEventData    map[string]any
	Resources              []RecordResource
	ErrorCode, ErrorMessge string
}

// RecordResource is one entry of a record's resources list.
type RecordResource struct {
	ARN, Type string
}

// JSON renders r as a CloudTrail record.
func (r Record) JSON() json.RawMessage {
	id := map[string]any{"type": r.Identity.Type, "accountId": r.Identity.Account}
	switch r.Identity.Type {
	case "Root":
		id["arn"] = "arn:aws:iam::" + r.Identity.Account + ":root"
		id["principalId"] = r.Identity.Account
	case "IAMUser":
		id["arn"] = "arn:aws:iam::" + r.Identity.Account + ":user/" + r.Identity.User
		id["principalId"] = "AIDA" + strings.ToUpper(hexOf(r.Identity.User, 16))
		id["userName"] = r.Identity.User
	case "AssumedRole":
		id["arn"] = "arn:aws:sts::" + r.Identity.Account + ":assumed-role/" + r.Identity.Role + "/" + r.Identity.Session
		roleID := "AROA" + strings.ToUpper(hexOf(r.Identity.Role, 16))
		id["principalId"] = roleID + ":" + r.Identity.Session
		id["sessionContext"] = map[string]any{
			"sessionIssuer": map[string]any{"type": "Role", "principalId": roleID, "arn": "arn:aws:iam::" + r.Identity.Account + ":role/" + r.Identity.Role,
				"accountId": r.Identity.Account, "userName": r.Identity.Role},
			"attributes": map[string]any{"creationDate": r.Time.Add(-10 * time.Minute).UTC().Format(time.RFC3339), "mfaAuthenticated": fmt.Sprint(r.Identity.MFA)},
		}
	case "AWSService":
		id = map[string]any{"type": "AWSService", "invokedBy": r.SourceIP}
	}
	if r.Identity.AccessKey != "" {
		id["accessKeyId"] = r.Identity.AccessKey
	}
	m := map[string]any{
		"eventVersion": "1.08", "userIdentity": id, "eventTime": r.Time.UTC().Format(time.RFC3339), "eventSource": r.Source, "eventName": r.Name,
		"awsRegion": r.Region, "sourceIPAddress": r.SourceIP, "userAgent": r.UserAgent, "requestParameters": r.RequestParameters,
		"responseElements": r.ResponseElements, "requestID": r.RequestID, "eventID": r.EventID, "readOnly": r.ReadOnly,
		"eventType": "AwsApiCall", "managementEvent": true, "recipientAccountId": r.Account, "eventCategory": "Management",
	}
	if r.Name == "ConsoleLogin" {
		m["eventType"] = "AwsConsoleSignIn"
	}
	if r.AdditionalEventData != nil {
		m["additionalEventData"] = r.AdditionalEventData
	}
	if len(r.Resources) > 0 {
		var rs []map[string]any
		for _, x := range r.Resources {
			rs = append(rs, map[string]any{"ARN": x.ARN, "accountId": r.Account, "type": x.Type})
		}
		m["resources"] = rs
	}
	if r.ErrorCode != "" {
		m["errorCode"], m["errorMessage"] = r.ErrorCode, r.ErrorMessge
	}
	b, _ := json.Marshal(m)
	return b
}

func hexOf(s string, n int) string {
	var h uint64 = 1469598103934665603
	for _, c := range []byte(s) {
		h = (h ^ uint64(c)) * 1099511628211
	}
	out := fmt.Sprintf("%016x%016x", h, h*31+7)
	return out[:n]
}

// NewID returns a random UUID-shaped id from rng.
func NewID(rng *rand.Rand) string {
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xfff, rng.Uint32()&0x3fff|0x8000, rng.Uint64()&0xffffffffffff)
}

// Background generates n records of made-up staff activity across accounts
// and regions between start and end, in time order: mostly reads, some
// writes, a few failures and a few sensitive events. No identity in it is
// real.
func Background(rng *rand.Rand, accounts, regions []string, start, end time.Time, n int) []Record {
	people := []string{"ana.ops", "ben.ops", "chen.dba", "dara.sec", "eli.dev", "fay.dev", "gus.support"}
	ips := []string{"203.0.113.10", "203.0.113.24", "198.51.100.7", "198.51.100.42", "192.0.2.15"}
	agents := []string{"aws-cli/2.17.0 Python/3.12 Linux/6.8", "console.amazonaws.com", "Boto3/1.34.0 Python/3.12", "aws-sdk-go-v2/1.30.0"}
	type op struct {
		source, name string
		read         bool
		params       func(acct, region string, i int) (map[string]any, []RecordResource)
		weight       int
	}
	bucket := func(acct, region string, i int) (map[string]any, []RecordResource) {
		b := fmt.Sprintf("medportal-%s-docs-%d", region, i%3)
		return map[string]any{"bucketName": b, "Host": b + ".s3.amazonaws.com"}, []RecordResource{{ARN: "arn:aws:s3:::" + b, Type: "AWS::S3::Bucket"}}
	}
	table := func(acct, region string, i int) (map[string]any, []RecordResource) {
		t := "medicines"
		return map[string]any{"tableName": t}, []RecordResource{{ARN: "arn:aws:dynamodb:" + region + ":" + acct + ":table/" + t, Type: "AWS::DynamoDB::Table"}}
	}
	instance := func(acct, region string, i int) (map[string]any, []RecordResource) {
		id := fmt.Sprintf("i-0%015x", uint64(i)*2654435761%0xfffffffffffff)
		return map[string]any{"instancesSet": map[string]any{"items": []any{map[string]any{"instanceId": id}}}}, []RecordResource{{ARN: "arn:aws:ec2:" + region + ":" + acct + ":instance/" + id, Type: "AWS::EC2::Instance"}}
	}
	role := func(acct, region string, i int) (map[string]any, []RecordResource) {
		r := []string{"medportal-app", "medportal-textract", "SupportReadOnly"}[i%3]
		return map[string]any{"roleName": r}, []RecordResource{{ARN: "arn:aws:iam::" + acct + ":role/" + r, Type: "AWS::IAM::Role"}}
	}
	key := func(acct, region string, i int) (map[string]any, []RecordResource) {
		k := fmt.Sprintf("%08x-0000-4000-8000-%012x", i%7, i%11)
		return map[string]any{"keyId": k}, []RecordResource{{ARN: "arn:aws:kms:" + region + ":" + acct + ":key/" + k, Type: "AWS::KMS::Key"}}
	}
	db := func(acct, region string, i int) (map[string]any, []RecordResource) {
		d := "medportal-db"
		return map[string]any{"dBInstanceIdentifier": d}, []RecordResource{{ARN: "arn:aws:rds:" + region + ":" + acct + ":db:" + d, Type: "AWS::RDS::DBInstance"}}
	}
	none := func(string, string, int) (map[string]any, []RecordResource) { return nil, nil }
	ops := []op{
		{"s3.amazonaws.com", "ListBuckets", true, none, 10},
		{"s3.amazonaws.com", "GetBucketEncryption", true, bucket, 6},
		{"s3.amazonaws.com", "GetBucketPolicy", true, bucket, 4},
		{"s3.amazonaws.com", "PutBucketTagging", false, bucket, 2},
		{"ec2.amazonaws.com", "DescribeInstances", true, none, 14},
		{"ec2.amazonaws.com", "DescribeSecurityGroups", true, none, 6},
		{"ec2.amazonaws.com", "RebootInstances", false, instance, 1},
		{"dynamodb.amazonaws.com", "DescribeTable", true, table, 5},
		{"dynamodb.amazonaws.com", "UpdateTable", false, table, 1},
		{"rds.amazonaws.com", "DescribeDBInstances", true, db, 6},
		{"rds.amazonaws.com", "CreateDBSnapshot", false, db, 1},
		{"iam.amazonaws.com", "GetRole", true, role, 4},
		{"iam.amazonaws.com", "ListRoles", true, none, 3},
		{"kms.amazonaws.com", "DescribeKey", true, key, 5},
		{"kms.amazonaws.com", "Decrypt", true, key, 8},
		{"cloudwatch.amazonaws.com", "DescribeAlarms", true, none, 6},
		{"cloudwatch.amazonaws.com", "GetMetricData", true, none, 6},
		{"sts.amazonaws.com", "GetCallerIdentity", true, none, 4},
		{"cloudtrail.amazonaws.com", "LookupEvents", true, none, 2},
	}
	total := 0
	for _, o := range ops {
		total += o.weight
	}
	span := end.Sub(start)
	out := make([]Record, 0, n)
	for i := range n {
		at := start.Add(time.Duration(float64(span) * float64(i) / float64(max(n, 1))))
		acct := accounts[rng.IntN(len(accounts))]
		region := regions[rng.IntN(len(regions))]
		person := people[rng.IntN(len(people))]
		w := rng.IntN(total)
		var o op
		for _, x := range ops {
			if w < x.weight {
				o = x
				break
			}
			w -= x.weight
		}
		params, res := o.params(acct, region, i)
		r := Record{EventID: NewID(rng), RequestID: NewID(rng), Time: at, Account: acct, Region: region, Source: o.source, Name: o.name,
			Identity: Identity{Type: "AssumedRole", Account: acct, Role: "StaffOperator", Session: person, AccessKey: "ASIA" + strings.ToUpper(hexOf(person+acct, 16)), MFA: true},
			SourceIP: ips[rng.IntN(len(ips))], UserAgent: agents[rng.IntN(len(agents))], ReadOnly: o.read, RequestParameters: params, Resources: res}
		if rng.IntN(40) == 0 {
			r.ErrorCode, r.ErrorMessge = "AccessDenied", "User is not authorized to perform this operation"
		}
		// A sprinkle of what compliance must see.
		switch rng.IntN(400) {
		case 0:
			r.Source, r.Name, r.ReadOnly = "iam.amazonaws.com", "PutRolePolicy", false
			r.RequestParameters, r.Resources = role(acct, region, i)
			r.RequestParameters["policyName"] = "inline-s3-access"
		case 1:
			r.Source, r.Name, r.ReadOnly = "ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", false
			r.RequestParameters = map[string]any{"groupId": "sg-0a1b2c3d4e5f", "ipPermissions": map[string]any{"items": []any{map[string]any{
				"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "ipRanges": map[string]any{"items": []any{map[string]any{"cidrIp": "0.0.0.0/0"}}}}}}}
			r.Resources = nil
		case 2:
			r.Source, r.Name, r.ReadOnly = "signin.amazonaws.com", "ConsoleLogin", false
			r.Identity = Identity{Type: "IAMUser", Account: acct, User: person}
			r.RequestParameters = nil
			r.Resources = nil
			r.ResponseElements = map[string]any{"ConsoleLogin": "Success"}
			r.AdditionalEventData = map[string]any{"MFAUsed": "No", "LoginTo": "https://console.aws.amazon.com/"}
		case 3:
			r.Source, r.Name, r.ReadOnly = "kms.amazonaws.com", "ScheduleKeyDeletion", false
			r.RequestParameters, r.Resources = key(acct, region, i)
			r.RequestParameters["pendingWindowInDays"] = 30
		}
		out = append(out, r)
	}
	return out
}
