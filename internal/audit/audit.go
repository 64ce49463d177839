// Package audit is the portal's tamper-evident audit trail. Every
// state-changing action appends one record (actor, action, target, time,
// source IP, request ID, details) to the audit_log table, and each record
// carries the SHA-256 of the record before it, so a record that is changed
// or deleted afterwards breaks the chain and Verify reports where.
//
// # The hash
//
// Records are numbered by seq, starting at 1 with no gaps; Append assigns
// seq as the previous head's seq + 1 inside the caller's transaction. A
// record's hash is the lower-case hex SHA-256 of
//
//	"portal-audit-v1\n" || F(seq) || F(at) || F(actor) || F(action) ||
//	F(target) || F(source_ip) || F(request_id) || F(details) || F(prev_hash)
//
// where F(s) is the netstring of s: the decimal byte length of s, ":", the
// bytes of s, "," (so F("ab") is "2:ab,"). Every field is taken exactly as
// stored in its audit_log column: seq in decimal ("42"); at as UTC RFC 3339
// with exactly nine fractional digits ("2024-05-01T12:00:00.000000000Z");
// details as the stored JSON text (an object, keys sorted at every level, no
// HTML escaping, no trailing newline; "{}" when there are none). prev_hash
// is the hash of record seq-1, or 64 "0" characters for record 1. An
// auditor can re-derive every hash from a CSV export (ExportCSV writes the
// columns verbatim) with any SHA-256 tool.
//
// # What the chain cannot detect alone
//
// Deleting the newest records (truncating the tail) leaves a shorter chain
// that is still intact, and someone able to write the database can rewrite
// a record and re-hash every record after it. Both are caught only by
// comparing against a copy kept elsewhere: record Verification.HeadSeq and
// HeadHash (printed by `portal audit verify`) outside the database, for
// example in a ticket or a write-once bucket, and pass them back with
// `portal audit verify --anchor SEQ:HASH`, which fails unless that record
// still has that hash.
//
// Details are stored in clear text and exported verbatim: never put secrets
// (passwords, tokens, keys, TOTP seeds) in them.
package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"time"

	"portal/internal/apperr"
	"portal/internal/store"
)

// GenesisHash is the prev_hash of record 1.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// hashDomain prefixes the hashed encoding so a change of encoding can be
// told apart from tampering.
const hashDomain = "portal-audit-v1\n"

// formatAt writes a time as stored in audit_log.at: store.Time, whose fixed
// nine-digit fraction makes text order time order, which the at index and
// the Since/Until comparisons rely on.
func formatAt(t time.Time) string { return store.Time(t) }

// Entry is one action to record.
type Entry struct {
	Actor     string         // e.g. "user:3 alice@example.com", "system", "api-token:7"
	Action    string         // dotted verb, e.g. "auth.sign_in", "auth.sign_in_failed", "staff.create"
	Target    string         // e.g. "user:5 bob@example.com"
	SourceIP  string         // client address, "" when not from a request
	RequestID string         // the request's ID, "" when not from a request
	Details   map[string]any // JSON-encoded with sorted keys; never secrets
}

// Record is a stored Entry with its place in the chain. Details read back
// from the database decode JSON numbers as json.Number, so large IDs keep
// every digit.
type Record struct {
	Seq int64
	At  time.Time
	Entry
	PrevHash string
	Hash     string
}

// Log appends to and reads the audit trail. It is safe for concurrent use.
type Log struct {
	db  *store.DB
	now func() time.Time
}

// New returns a Log over db. now is the clock; nil means time.Now.
func New(db *store.DB, now func() time.Time) *Log {
	if now == nil {
		now = time.Now
	}
	return &Log{db: db, now: now}
}

// Append writes e inside the caller's transaction, so the action and its
// audit record commit or roll back together, and returns the stored record.
// It reads the current head inside tx and assigns seq = head + 1; store
// transactions begin IMMEDIATE, so concurrent appends serialise. Actor and
// Action are required, and Details must encode as JSON; otherwise the error
// is apperr.Invalid and nothing is written.
func (l *Log) Append(ctx context.Context, tx *sql.Tx, e Entry) (Record, error) {
	if e.Actor == "" || e.Action == "" {
		var v apperr.Validation
		if e.Actor == "" {
			v.Add("actor", "is required")
		}
		if e.Action == "" {
			v.Add("action", "is required")
		}
		return Record{}, fmt.Errorf("audit: append: %w", v.Err())
	}
	details, err := encodeDetails(e.Details)
	if err != nil {
		return Record{}, fmt.Errorf("audit: append %s: %w", e.Action, err)
	}

	seq, prev := int64(1), GenesisHash
	var headSeq int64
	var headHash string
	err = tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&headSeq, &headHash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return Record{}, fmt.Errorf("audit: append %s: read head: %w", e.Action, err)
	default:
		seq, prev = headSeq+1, headHash
	}

	at := formatAt(l.now())
	r := row{
		seq: seq, at: at, actor: e.Actor, action: e.Action, target: e.Target,
		sourceIP: e.SourceIP, requestID: e.RequestID, details: details, prevHash: prev,
	}
	r.hash = r.computeHash(sha256.New())
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_log
		(seq, at, actor, action, target, source_ip, request_id, details, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.seq, r.at, r.actor, r.action, r.target, r.sourceIP, r.requestID, r.details, r.prevHash, r.hash,
	); err != nil {
		return Record{}, fmt.Errorf("audit: append %s: %w", e.Action, err)
	}
	return r.record()
}

// Record appends e in its own transaction; see Append.
func (l *Log) Record(ctx context.Context, e Entry) (Record, error) {
	var rec Record
	err := l.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		rec, err = l.Append(ctx, tx, e)
		return err
	})
	if err != nil {
		return Record{}, err
	}
	return rec, nil
}

// encodeDetails returns the canonical JSON of d: encoding/json sorts map
// keys at every level; HTML escaping is off so the stored text reads as
// written.
func encodeDetails(d map[string]any) (string, error) {
	if len(d) == 0 {
		return "{}", nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(d); err != nil {
		return "", apperr.Wrap(apperr.Invalid, err, "audit details cannot be encoded as JSON")
	}
	return string(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

// row is an audit_log row as stored, which is what the hash covers.
type row struct {
	seq                          int64
	at, actor, action, target    string
	sourceIP, requestID, details string
	prevHash, hash               string
}

const rowColumns = `seq, at, actor, action, target, source_ip, request_id, details, prev_hash, hash`

func (r *row) scanFrom(s interface{ Scan(...any) error }) error {
	return s.Scan(&r.seq, &r.at, &r.actor, &r.action, &r.target, &r.sourceIP, &r.requestID, &r.details, &r.prevHash, &r.hash)
}

// computeHash returns the hash described in the package doc. h is reset
// first, so Verify can reuse one.
func (r *row) computeHash(h hash.Hash) string {
	h.Reset()
	var buf []byte
	buf = append(buf, hashDomain...)
	for _, f := range [...]string{
		strconv.FormatInt(r.seq, 10), r.at, r.actor, r.action, r.target,
		r.sourceIP, r.requestID, r.details, r.prevHash,
	} {
		buf = strconv.AppendInt(buf, int64(len(f)), 10)
		buf = append(buf, ':')
		buf = append(buf, f...)
		buf = append(buf, ',')
	}
	h.Write(buf)
	return hex.EncodeToString(h.Sum(nil))
}

func (r *row) record() (Record, error) {
	at, err := store.ParseTime(r.at)
	if err != nil {
		return Record{}, fmt.Errorf("audit: record %d: at %q: %w", r.seq, r.at, err)
	}
	var details map[string]any
	dec := json.NewDecoder(bytes.NewReader([]byte(r.details)))
	dec.UseNumber()
	if err := dec.Decode(&details); err != nil {
		return Record{}, fmt.Errorf("audit: record %d: details: %w", r.seq, err)
	}
	return Record{
		Seq: r.seq,
		At:  at,
		Entry: Entry{
			Actor: r.actor, Action: r.action, Target: r.target,
			SourceIP: r.sourceIP, RequestID: r.requestID, Details: details,
		},
		PrevHash: r.prevHash,
		Hash:     r.hash,
	}, nil
}
