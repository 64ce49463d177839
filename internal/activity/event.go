package activity

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Event is one CloudTrail event as the portal stores it: the fields the
// explorer filters on, and the record exactly as CloudTrail delivered it.
type Event struct {
	// Seq is the portal's row number (0 before storing).
	Seq          int64
	ID           string // eventID
	Time         time.Time
	Account      string // recipientAccountId
	Region       string // awsRegion
	Source       string // eventSource, e.g. s3.amazonaws.com
	Name         string // eventName
	ReadOnly     bool
	IdentityType string // userIdentity.type: Root, IAMUser, AssumedRole, AWSService…
	PrincipalARN string
	UserName     string // IAM user name, "root", or the role session name
	AccessKey    string
	Session      string // role session name for assumed roles
	SourceIP     string
	ErrorCode    string
	RequestID    string
	Resources    []string
	// Sensitive says why the event needs a look; "" when it does not.
	Sensitive string
	Origin    string
	Sandbox   bool
	Raw       json.RawMessage
}

// record is the part of a CloudTrail record the portal reads.
type record struct {
	EventID      string `json:"eventID"`
	EventTime    string `json:"eventTime"`
	EventSource  string `json:"eventSource"`
	EventName    string `json:"eventName"`
	AWSRegion    string `json:"awsRegion"`
	SourceIP     string `json:"sourceIPAddress"`
	ErrorCode    string `json:"errorCode"`
	RequestID    string `json:"requestID"`
	ReadOnly     *bool  `json:"readOnly"`
	RecipientAcc string `json:"recipientAccountId"`
	UserIdentity struct {
		Type           string `json:"type"`
		ARN            string `json:"arn"`
		AccountID      string `json:"accountId"`
		AccessKeyID    string `json:"accessKeyId"`
		UserName       string `json:"userName"`
		SessionContext struct {
			SessionIssuer struct {
				UserName string `json:"userName"`
			} `json:"sessionIssuer"`
		} `json:"sessionContext"`
	} `json:"userIdentity"`
	Resources []struct {
		ARN string `json:"ARN"`
	} `json:"resources"`
	RequestParameters   map[string]any `json:"requestParameters"`
	ResponseElements    map[string]any `json:"responseElements"`
	AdditionalEventData map[string]any `json:"additionalEventData"`
}

// resourceParams are requestParameters keys that name the resource acted on.
var resourceParams = []string{"bucketName", "roleName", "policyArn", "policyName", "userName", "groupName", "keyId", "groupId", "trailName", "name",
	"tableName", "dBInstanceIdentifier", "topicArn", "loadBalancerArn", "targetGroupArn", "autoScalingGroupName", "logGroupName", "alarmName", "instanceId", "hostedZoneId", "aliasName"}

// ParseRecord reads one CloudTrail record (a JSON object).
func ParseRecord(raw []byte) (Event, error) {
	var r record
	if err := json.Unmarshal(raw, &r); err != nil {
		return Event{}, fmt.Errorf("activity: CloudTrail record: %w", err)
	}
	if r.EventID == "" {
		return Event{}, fmt.Errorf("activity: CloudTrail record has no eventID")
	}
	t, err := time.Parse(time.RFC3339, r.EventTime)
	if err != nil {
		return Event{}, fmt.Errorf("activity: CloudTrail record %s: eventTime %q: %w", r.EventID, r.EventTime, err)
	}
	// Stored and exported one record per line (CloudTrail writes them
	// compact; only an indented record needs compacting).
	if bytes.IndexByte(raw, '\n') >= 0 {
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			return Event{}, fmt.Errorf("activity: CloudTrail record %s: %w", r.EventID, err)
		}
		raw = compact.Bytes()
	}
	e := Event{ID: r.EventID, Time: t.UTC(), Region: r.AWSRegion, Source: r.EventSource, Name: r.EventName, SourceIP: r.SourceIP,
		ErrorCode: r.ErrorCode, RequestID: r.RequestID, Raw: json.RawMessage(raw)}
	e.Account = r.RecipientAcc
	if e.Account == "" {
		e.Account = r.UserIdentity.AccountID
	}
	if r.ReadOnly != nil {
		e.ReadOnly = *r.ReadOnly
	} else {
		e.ReadOnly = guessReadOnly(e.Name)
	}
	id := r.UserIdentity
	e.IdentityType, e.PrincipalARN, e.AccessKey = id.Type, id.ARN, id.AccessKeyID
	switch id.Type {
	case "Root":
		e.UserName = "root"
	case "AssumedRole":
		if i := strings.LastIndexByte(id.ARN, '/'); i >= 0 {
			e.Session = id.ARN[i+1:]
		}
		e.UserName = e.Session
	default:
		e.UserName = id.UserName
	}
	seen := map[string]bool{}
	add := func(s string) {
		s = strings.TrimSpace(s)
		if s != "" && !seen[s] {
			seen[s] = true
			e.Resources = append(e.Resources, s)
		}
	}
	for _, res := range r.Resources {
		add(res.ARN)
	}
	for _, k := range resourceParams {
		if s, ok := r.RequestParameters[k].(string); ok {
			add(s)
		}
	}
	e.Sensitive = classify(&r, raw)
	return e, nil
}

// guessReadOnly is used for records without readOnly (LookupEvents gives
// it as a string, and old records lack it).
func guessReadOnly(name string) bool {
	for _, p := range []string{"Get", "List", "Describe", "Head", "Lookup", "Search", "Check", "Select", "Scan", "Query"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// ParseLogFile reads a CloudTrail log file, gzip-compressed or not:
// {"Records": [...]}. origin is stored with each event.
func ParseLogFile(r io.Reader, origin string) ([]Event, error) {
	br := bufferedPeek(r)
	var body io.Reader = br
	if isGzip(br) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("activity: log file %s: %w", origin, err)
		}
		defer zr.Close()
		body = zr
	}
	var f struct {
		Records []json.RawMessage `json:"Records"`
	}
	if err := json.NewDecoder(body).Decode(&f); err != nil {
		return nil, fmt.Errorf("activity: log file %s: %w", origin, err)
	}
	out := make([]Event, 0, len(f.Records))
	for i, raw := range f.Records {
		e, err := ParseRecord(raw)
		if err != nil {
			return nil, fmt.Errorf("activity: log file %s: record %d: %w", origin, i+1, err)
		}
		e.Origin = origin
		out = append(out, e)
	}
	return out, nil
}

type peekReader struct {
	head []byte
	r    io.Reader
}

func (p *peekReader) Read(b []byte) (int, error) {
	if len(p.head) > 0 {
		n := copy(b, p.head)
		p.head = p.head[n:]
		return n, nil
	}
	return p.r.Read(b)
}

func bufferedPeek(r io.Reader) *peekReader {
	head := make([]byte, 2)
	n, _ := io.ReadFull(r, head)
	return &peekReader{head: head[:n], r: r}
}

func isGzip(p *peekReader) bool { return bytes.HasPrefix(p.head, []byte{0x1f, 0x8b}) }

// sortedKeys returns m's keys in order (deterministic output).
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
