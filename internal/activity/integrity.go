package activity

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/engine"
	"portal/internal/store"
)

// Problem kinds a validation reports.
const (
	ProblemLogChanged     = "log file changed"
	ProblemLogMissing     = "log file missing"
	ProblemLogUnexpected  = "unexpected log file"
	ProblemDigestMissing  = "digest file missing"
	ProblemDigestInvalid  = "digest signature invalid"
	ProblemDigestUnknown  = "digest signed with an unknown key"
	ProblemDigestBad      = "digest file unreadable"
	ProblemDigestOutside  = "digest outside the chain"
	ProblemChainBroken    = "digest chain broken"
	ProblemGap            = "gap in the digest chain"
	ProblemNoDigests      = "no digest files"
	ProblemBucketUnreadab = "bucket unreadable"
)

// Problem is one finding of a validation.
type Problem struct {
	Kind   string `json:"kind"`
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	Detail string `json:"detail"`
}

// ChainResult summarises one account/region digest chain.
type ChainResult struct {
	Bucket   string    `json:"bucket"`
	Prefix   string    `json:"prefix"`
	Digests  int       `json:"digests"`
	LogFiles int       `json:"log_files"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Pending  int       `json:"pending"` // log files newer than the newest digest
}

// Validation is the result of validating every configured trail bucket.
type Validation struct {
	ID         int64         `json:"id"`
	StartedAt  time.Time     `json:"started_at"`
	FinishedAt time.Time     `json:"finished_at"`
	StartedBy  string        `json:"started_by"`
	OK         bool          `json:"ok"`
	Digests    int           `json:"digests"`
	LogFiles   int           `json:"log_files"`
	Chains     []ChainResult `json:"chains"`
	Problems   []Problem     `json:"problems"`
}

// ValidateBucket checks one trail bucket the way `aws cloudtrail
// validate-logs` does: for every AWSLogs/ACCOUNT/CloudTrail-Digest/REGION/
// chain it walks from the newest digest back along previousDigestS3Object,
// checking each digest's RSA signature with keys (by fingerprint), that
// each link's previousDigestSignature and previousDigestHashValue match
// the digest it points to, and that periods join without gaps; then every
// log file a valid digest names must exist with the SHA-256 (of its
// uncompressed content) the digest records. Log files no digest names, up
// to the newest digest, are reported as unexpected; digests the chain does
// not reach, as outside the chain.
func ValidateBucket(ctx context.Context, client S3API, b TrailBucket, keys []DigestKey) ([]ChainResult, []Problem, error) {
	byFP := map[string]DigestKey{}
	for _, k := range keys {
		byFP[k.Fingerprint] = k
	}
	prefixes, err := LogPrefixes(ctx, client, b.Bucket, b.Prefix, "CloudTrail-Digest")
	if err != nil {
		return nil, nil, fmt.Errorf("activity: bucket %s: %w", b.Bucket, explainAWS(err))
	}
	var chains []ChainResult
	var problems []Problem
	if len(prefixes) == 0 {
		problems = append(problems, Problem{Kind: ProblemNoDigests, Bucket: b.Bucket, Detail: "the bucket holds no CloudTrail-Digest files: is log file validation on?"})
	}
	for _, p := range prefixes {
		c, ps, err := validateChain(ctx, client, b.Bucket, p, byFP)
		if err != nil {
			return nil, nil, err
		}
		chains = append(chains, c)
		problems = append(problems, ps...)
	}
	return chains, problems, nil
}

func listKeys(ctx context.Context, client S3API, bucket, prefix string) ([]string, error) {
	var out []string
	p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, o := range page.Contents {
			out = append(out, aws.ToString(o.Key))
		}
	}
	sort.Strings(out)
	return out, nil
}

// logStamp finds the delivery time in a log file name:
// ACCOUNT_CloudTrail_REGION_20260102T1504Z_unique.json.gz.
var logStamp = regexp.MustCompile(`_(\d{8}T\d{4}Z)_`)

func validateChain(ctx context.Context, client S3API, bucket, digestPrefix string, keys map[string]DigestKey) (ChainResult, []Problem, error) {
	res := ChainResult{Bucket: bucket, Prefix: digestPrefix}
	var problems []Problem
	report := func(kind, key, detail string) {
		problems = append(problems, Problem{Kind: kind, Bucket: bucket, Key: key, Detail: detail})
	}
	digestKeys, err := listKeys(ctx, client, bucket, digestPrefix)
	if err != nil {
		return res, nil, fmt.Errorf("activity: list s3://%s/%s: %w", bucket, digestPrefix, explainAWS(err))
	}
	logPrefix := strings.Replace(digestPrefix, "/CloudTrail-Digest/", "/CloudTrail/", 1)
	logKeys, err := listKeys(ctx, client, bucket, logPrefix)
	if err != nil {
		return res, nil, fmt.Errorf("activity: list s3://%s/%s: %w", bucket, logPrefix, explainAWS(err))
	}
	if len(digestKeys) == 0 {
		return res, nil, nil
	}
	reached := map[string]bool{}
	covered := map[string]bool{}
	var newestEnd time.Time
	// Walk from the newest digest back along the chain.
	key := digestKeys[len(digestKeys)-1]
	var newer *Digest
	var newerKey string
	for key != "" {
		if reached[key] {
			report(ProblemChainBroken, key, "the chain loops back to this digest")
			break
		}
		reached[key] = true
		d, inflated, sig, err := getDigest(ctx, client, bucket, key)
		if errors.Is(err, errNoSuchKey) {
			report(ProblemDigestMissing, key, fmt.Sprintf("named as the previous digest by %s but not in the bucket", newerKey))
			break
		} else if err != nil {
			report(ProblemDigestBad, key, err.Error())
			break
		}
		sum := sha256.Sum256(inflated)
		hash := hex.EncodeToString(sum[:])
		valid := true
		switch k, ok := keys[d.DigestPublicKeyFingerprint]; {
		case d.DigestS3Object != key || d.DigestS3Bucket != bucket:
			report(ProblemDigestInvalid, key, fmt.Sprintf("the digest says it is s3://%s/%s", d.DigestS3Bucket, d.DigestS3Object))
			valid = false
		case !ok:
			report(ProblemDigestUnknown, key, fmt.Sprintf("public key fingerprint %s is not among the trusted keys", d.DigestPublicKeyFingerprint))
			valid = false
		case sig == "":
			report(ProblemDigestInvalid, key, "the object has no signature metadata")
			valid = false
		default:
			if err := verifyDigest(k.Key, d, inflated, sig); err != nil {
				report(ProblemDigestInvalid, key, "the RSA signature does not match the digest's content: the digest was changed")
				valid = false
			}
		}
		if newer != nil {
			if aws.ToString(newer.PreviousDigestSignature) != sig {
				report(ProblemChainBroken, newerKey, "its previousDigestSignature does not match the signature of "+key)
			}
			if aws.ToString(newer.PreviousDigestHashValue) != hash {
				report(ProblemChainBroken, newerKey, "its previousDigestHashValue does not match the SHA-256 of "+key)
			}
			if newer.DigestStartTime != d.DigestEndTime {
				report(ProblemGap, newerKey, fmt.Sprintf("the period %s to %s is covered by no digest", d.DigestEndTime, newer.DigestStartTime))
			}
		}
		if end, err := time.Parse(time.RFC3339, d.DigestEndTime); err == nil {
			if newestEnd.IsZero() {
				newestEnd = end
			}
			res.From = end
			if res.To.IsZero() {
				res.To = end
			}
		}
		if start, err := time.Parse(time.RFC3339, d.DigestStartTime); err == nil {
			res.From = start
		}
		for _, lf := range d.LogFiles {
			covered[lf.S3Object] = true // named, even if the digest cannot be trusted (already reported)
		}
		if valid {
			res.Digests++
			for _, lf := range d.LogFiles {
				if p := checkLogFile(ctx, client, lf); p != nil {
					problems = append(problems, *p)
				} else {
					res.LogFiles++
				}
			}
		}
		newer, newerKey = d, key
		key = aws.ToString(d.PreviousDigestS3Object)
		if key == "" {
			// The start of this chain. Older digests mean logging was
			// stopped and started again: say so.
			if i := sort.SearchStrings(digestKeys, newerKey); i > 0 {
				report(ProblemGap, newerKey, "the chain starts here but older digests exist: logging was stopped or validation turned off and on")
			}
		}
	}
	for _, k := range digestKeys {
		if !reached[k] {
			report(ProblemDigestOutside, k, "no digest in the chain from the newest one points to it")
		}
	}
	for _, k := range logKeys {
		if covered[k] {
			continue
		}
		m := logStamp.FindStringSubmatch(k)
		if m == nil {
			report(ProblemLogUnexpected, k, "not a CloudTrail log file name and in no digest")
			continue
		}
		t, _ := time.Parse("20060102T1504Z", m[1])
		if !newestEnd.IsZero() && t.After(newestEnd) {
			res.Pending++ // the next digest will cover it
			continue
		}
		report(ProblemLogUnexpected, k, "delivered within the validated period but named in no digest")
	}
	return res, problems, nil
}

var errNoSuchKey = errors.New("no such key")

func getDigest(ctx context.Context, client S3API, bucket, key string) (*Digest, []byte, string, error) {
	obj, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if engine.IsCode(err, "NoSuchKey", "NotFound") {
		return nil, nil, "", errNoSuchKey
	} else if err != nil {
		return nil, nil, "", explainAWS(err)
	}
	defer obj.Body.Close()
	inflated, err := Inflate(obj.Body)
	if err != nil {
		return nil, nil, "", fmt.Errorf("cannot decompress: %w", err)
	}
	var d Digest
	if err := json.Unmarshal(inflated, &d); err != nil {
		return nil, nil, "", fmt.Errorf("not a digest file: %w", err)
	}
	sig := obj.Metadata["signature"]
	return &d, inflated, sig, nil
}

func checkLogFile(ctx context.Context, client S3API, lf DigestLogFile) *Problem {
	obj, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(lf.S3Bucket), Key: aws.String(lf.S3Object)})
	if engine.IsCode(err, "NoSuchKey", "NotFound") {
		return &Problem{Kind: ProblemLogMissing, Bucket: lf.S3Bucket, Key: lf.S3Object, Detail: "named in a digest but not in the bucket"}
	} else if err != nil {
		return &Problem{Kind: ProblemLogMissing, Bucket: lf.S3Bucket, Key: lf.S3Object, Detail: engine.Explain(err)}
	}
	defer obj.Body.Close()
	body, err := Inflate(obj.Body)
	if err != nil {
		return &Problem{Kind: ProblemLogChanged, Bucket: lf.S3Bucket, Key: lf.S3Object, Detail: "cannot decompress: " + err.Error()}
	}
	sum := sha256.Sum256(body)
	if got := hex.EncodeToString(sum[:]); got != lf.HashValue {
		return &Problem{Kind: ProblemLogChanged, Bucket: lf.S3Bucket, Key: lf.S3Object,
			Detail: fmt.Sprintf("SHA-256 is %s, the digest recorded %s", got, lf.HashValue)}
	}
	return nil
}

// Validate checks every configured trail bucket, stores the result and
// records it in the audit trail in the same transaction.
func (s *Service) Validate(ctx context.Context, by audit.Entry) (Validation, error) {
	v := Validation{StartedAt: s.now(), StartedBy: by.Actor}
	if len(s.cfg.Buckets) == 0 {
		return v, apperr.New(apperr.Conflict, "no trail bucket is configured, so there is nothing to validate")
	}
	for _, b := range s.cfg.Buckets {
		client, err := s.cfg.Clients.S3(b.Environment, b.Region)
		if err != nil {
			return v, fmt.Errorf("activity: bucket %s: %w", b.Bucket, err)
		}
		chains, problems, err := ValidateBucket(ctx, client, b, s.cfg.DigestKeys)
		if err != nil {
			v.Problems = append(v.Problems, Problem{Kind: ProblemBucketUnreadab, Bucket: b.Bucket, Detail: err.Error()})
			continue
		}
		v.Chains = append(v.Chains, chains...)
		v.Problems = append(v.Problems, problems...)
	}
	for _, c := range v.Chains {
		v.Digests += c.Digests
		v.LogFiles += c.LogFiles
	}
	v.OK = len(v.Problems) == 0
	v.FinishedAt = s.now()
	body, err := json.Marshal(v)
	if err != nil {
		return v, err
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `INSERT INTO activity_validations (started_at, finished_at, started_by, ok, digests, log_files, problems, result)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, store.Time(v.StartedAt), store.Time(v.FinishedAt), v.StartedBy, v.OK, v.Digests, v.LogFiles, len(v.Problems), string(body)).
			Scan(&v.ID); err != nil {
			return fmt.Errorf("activity: save validation: %w", err)
		}
		e := by
		e.Action, e.Target = "activity.validate_logs", fmt.Sprintf("validation:%d", v.ID)
		details := map[string]any{"ok": v.OK, "digests": v.Digests, "log_files": v.LogFiles, "problems": len(v.Problems)}
		var named []string
		for i, p := range v.Problems {
			if i == 10 {
				named = append(named, fmt.Sprintf("and %d more", len(v.Problems)-10))
				break
			}
			named = append(named, p.Kind+": s3://"+p.Bucket+"/"+p.Key)
		}
		if len(named) > 0 {
			details["findings"] = named
		}
		e.Details = details
		_, err := s.audit.Append(ctx, tx, e)
		return err
	})
	return v, err
}

// Validations lists stored validations, newest first.
func (s *Service) Validations(ctx context.Context, limit int) ([]Validation, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, result FROM activity_validations ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("activity: validations: %w", err)
	}
	defer rows.Close()
	var out []Validation
	for rows.Next() {
		var id int64
		var body string
		if err := rows.Scan(&id, &body); err != nil {
			return nil, err
		}
		var v Validation
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			return nil, fmt.Errorf("activity: validation %d: %w", id, err)
		}
		v.ID = id
		out = append(out, v)
	}
	return out, rows.Err()
}

// GetValidation returns stored validation id.
func (s *Service) GetValidation(ctx context.Context, id int64) (Validation, error) {
	var body string
	err := s.db.QueryRowContext(ctx, `SELECT result FROM activity_validations WHERE id = ?`, id).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return Validation{}, apperr.Wrap(apperr.NotFound, store.ErrNotFound, "no validation %d", id)
	} else if err != nil {
		return Validation{}, fmt.Errorf("activity: validation %d: %w", id, err)
	}
	var v Validation
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		return v, fmt.Errorf("activity: validation %d: %w", id, err)
	}
	v.ID = id
	return v, nil
}
