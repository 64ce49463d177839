package activity

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Digest is a CloudTrail digest file: which log files a trail delivered in
// one period with their SHA-256, and a link to the previous digest. Its
// RSA signature is in the object's metadata ("signature", hex), over
//
//	digestEndTime + "\n" + digestS3Bucket + "/" + digestS3Object + "\n" +
//	hex(SHA-256(uncompressed digest)) + "\n" + previousDigestSignature
//
// with previousDigestSignature "null" for the first digest of a chain.
type Digest struct {
	AWSAccountID                string          `json:"awsAccountId"`
	DigestStartTime             string          `json:"digestStartTime"`
	DigestEndTime               string          `json:"digestEndTime"`
	DigestS3Bucket              string          `json:"digestS3Bucket"`
	DigestS3Object              string          `json:"digestS3Object"`
	DigestPublicKeyFingerprint  string          `json:"digestPublicKeyFingerprint"`
	DigestSignatureAlgorithm    string          `json:"digestSignatureAlgorithm"`
	NewestEventTime             *string         `json:"newestEventTime"`
	OldestEventTime             *string         `json:"oldestEventTime"`
	PreviousDigestS3Bucket      *string         `json:"previousDigestS3Bucket"`
	PreviousDigestS3Object      *string         `json:"previousDigestS3Object"`
	PreviousDigestHashValue     *string         `json:"previousDigestHashValue"`
	PreviousDigestHashAlgorithm *string         `json:"previousDigestHashAlgorithm"`
	PreviousDigestSignature     *string         `json:"previousDigestSignature"`
	LogFiles                    []DigestLogFile `json:"logFiles"`
}

// DigestLogFile is one log file a digest vouches for.
type DigestLogFile struct {
	S3Bucket        string `json:"s3Bucket"`
	S3Object        string `json:"s3Object"`
	HashValue       string `json:"hashValue"`
	HashAlgorithm   string `json:"hashAlgorithm"`
	NewestEventTime string `json:"newestEventTime"`
	OldestEventTime string `json:"oldestEventTime"`
}

// DigestKey is a public key digests are signed with.
type DigestKey struct {
	Fingerprint string
	Key         *rsa.PublicKey
}

// PublicKeyFingerprint is the hex MD5 of the key's PKCS #1 DER encoding,
// the form CloudTrail's ListPublicKeys returns and digests name.
func PublicKeyFingerprint(k *rsa.PublicKey) string {
	sum := md5.Sum(x509.MarshalPKCS1PublicKey(k))
	return hex.EncodeToString(sum[:])
}

// ParseDigestKeys reads PEM public keys ("RSA PUBLIC KEY", PKCS #1, or
// "PUBLIC KEY", PKIX), one or more in a row.
func ParseDigestKeys(data []byte) ([]DigestKey, error) {
	var out []DigestKey
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		var k *rsa.PublicKey
		switch b.Type {
		case "RSA PUBLIC KEY":
			var err error
			if k, err = x509.ParsePKCS1PublicKey(b.Bytes); err != nil {
				return nil, fmt.Errorf("activity: digest key %d: %w", len(out)+1, err)
			}
		case "PUBLIC KEY":
			pk, err := x509.ParsePKIXPublicKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("activity: digest key %d: %w", len(out)+1, err)
			}
			var ok bool
			if k, ok = pk.(*rsa.PublicKey); !ok {
				return nil, fmt.Errorf("activity: digest key %d: not an RSA key", len(out)+1)
			}
		default:
			continue
		}
		out = append(out, DigestKey{Fingerprint: PublicKeyFingerprint(k), Key: k})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("activity: no PEM public key found")
	}
	return out, nil
}

// EncodeDigestKey writes k as a PKCS #1 PEM block.
func EncodeDigestKey(k *rsa.PublicKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(k)})
}

func signingString(d *Digest, inflated []byte) []byte {
	sum := sha256.Sum256(inflated)
	prev := "null"
	if d.PreviousDigestSignature != nil {
		prev = *d.PreviousDigestSignature
	}
	return []byte(d.DigestEndTime + "\n" + d.DigestS3Bucket + "/" + d.DigestS3Object + "\n" + hex.EncodeToString(sum[:]) + "\n" + prev)
}

func signDigest(key *rsa.PrivateKey, d *Digest, inflated []byte) (string, error) {
	h := sha256.Sum256(signingString(d, inflated))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h[:])
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(sig), nil
}

func verifyDigest(key *rsa.PublicKey, d *Digest, inflated []byte, sigHex string) error {
	sig, err := hex.DecodeString(sigHex)
	if err != nil {
		return fmt.Errorf("signature is not hex")
	}
	h := sha256.Sum256(signingString(d, inflated))
	return rsa.VerifyPKCS1v15(key, crypto.SHA256, h[:], sig)
}

// S3PutAPI is what TrailWriter needs to write into a bucket.
type S3PutAPI interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// TrailWriter writes CloudTrail-format log files and signed digest files
// for one account and region into a bucket, laid out as CloudTrail lays
// them out. The sandbox uses it for its generated activity and tests use
// it to stand in for CloudTrail, which moto does not deliver.
type TrailWriter struct {
	Client    S3PutAPI
	Bucket    string
	Prefix    string
	Account   string
	Region    string
	TrailName string
	Key       *rsa.PrivateKey

	pending                    []DigestLogFile
	prevKey, prevSig, prevHash string
	prevEnd                    time.Time
}

func (w *TrailWriter) root() string {
	if w.Prefix == "" {
		return "AWSLogs/"
	}
	return w.Prefix + "/AWSLogs/"
}

// WriteLogFile writes records (CloudTrail record objects) as one gzip log
// file delivered at at, and remembers it for the next digest.
func (w *TrailWriter) WriteLogFile(ctx context.Context, at time.Time, records []json.RawMessage, unique string) (string, error) {
	at = at.UTC()
	key := fmt.Sprintf("%s%s/CloudTrail/%s/%s/%s_CloudTrail_%s_%s_%s.json.gz", w.root(), w.Account, w.Region, at.Format("2006/01/02"),
		w.Account, w.Region, at.Format("20060102T1504Z"), unique)
	body, err := json.Marshal(struct {
		Records []json.RawMessage `json:"Records"`
	}{records})
	if err != nil {
		return "", err
	}
	if err := w.put(ctx, key, body, nil); err != nil {
		return "", err
	}
	sum := sha256.Sum256(body)
	lf := DigestLogFile{S3Bucket: w.Bucket, S3Object: key, HashValue: hex.EncodeToString(sum[:]), HashAlgorithm: "SHA-256"}
	oldest, newest := eventTimeRange(records)
	lf.OldestEventTime, lf.NewestEventTime = oldest, newest
	w.pending = append(w.pending, lf)
	return key, nil
}

func eventTimeRange(records []json.RawMessage) (oldest, newest string) {
	for _, r := range records {
		var t struct {
			EventTime string `json:"eventTime"`
		}
		if json.Unmarshal(r, &t) == nil && t.EventTime != "" {
			if oldest == "" || t.EventTime < oldest {
				oldest = t.EventTime
			}
			if t.EventTime > newest {
				newest = t.EventTime
			}
		}
	}
	return oldest, newest
}

// WriteDigest writes the digest for the log files written since the last
// digest, covering start to end, signed with w.Key and chained to the
// previous digest this writer wrote.
func (w *TrailWriter) WriteDigest(ctx context.Context, start, end time.Time) (string, error) {
	end = end.UTC()
	key := fmt.Sprintf("%s%s/CloudTrail-Digest/%s/%s/%s_CloudTrail-Digest_%s_%s_%s_%s.json.gz", w.root(), w.Account, w.Region, end.Format("2006/01/02"),
		w.Account, w.Region, w.TrailName, w.Region, end.Format("20060102T150405Z"))
	if !w.prevEnd.IsZero() {
		start = w.prevEnd
	}
	d := Digest{AWSAccountID: w.Account, DigestStartTime: start.UTC().Format(time.RFC3339), DigestEndTime: end.Format(time.RFC3339),
		DigestS3Bucket: w.Bucket, DigestS3Object: key, DigestPublicKeyFingerprint: PublicKeyFingerprint(&w.Key.PublicKey),
		DigestSignatureAlgorithm: "SHA256withRSA", LogFiles: w.pending}
	if d.LogFiles == nil {
		d.LogFiles = []DigestLogFile{}
	}
	for _, lf := range w.pending {
		if d.OldestEventTime == nil || lf.OldestEventTime < *d.OldestEventTime {
			d.OldestEventTime = aws.String(lf.OldestEventTime)
		}
		if d.NewestEventTime == nil || lf.NewestEventTime > *d.NewestEventTime {
			d.NewestEventTime = aws.String(lf.NewestEventTime)
		}
	}
	if w.prevKey != "" {
		d.PreviousDigestS3Bucket, d.PreviousDigestS3Object = aws.String(w.Bucket), aws.String(w.prevKey)
		d.PreviousDigestHashValue, d.PreviousDigestHashAlgorithm = aws.String(w.prevHash), aws.String("SHA-256")
		d.PreviousDigestSignature = aws.String(w.prevSig)
	}
	body, err := json.Marshal(d)
	if err != nil {
		return "", err
	}
	sig, err := signDigest(w.Key, &d, body)
	if err != nil {
		return "", err
	}
	if err := w.put(ctx, key, body, map[string]string{"signature": sig, "signature-algorithm": "SHA256withRSA"}); err != nil {
		return "", err
	}
	sum := sha256.Sum256(body)
	w.prevKey, w.prevSig, w.prevHash, w.prevEnd = key, sig, hex.EncodeToString(sum[:]), end
	w.pending = nil
	return key, nil
}

func (w *TrailWriter) put(ctx context.Context, key string, body []byte, meta map[string]string) error {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(body); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	_, err := w.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(w.Bucket), Key: aws.String(key), Body: bytes.NewReader(buf.Bytes()),
		ContentType: aws.String("application/json"), ContentEncoding: aws.String("gzip"), Metadata: meta})
	if err != nil {
		return fmt.Errorf("activity: put s3://%s/%s: %w", w.Bucket, key, explainAWS(err))
	}
	return nil
}

// Inflate reads a possibly gzip-compressed body whole.
func Inflate(r io.Reader) ([]byte, error) {
	br := bufferedPeek(r)
	if isGzip(br) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		return io.ReadAll(zr)
	}
	return io.ReadAll(br)
}
