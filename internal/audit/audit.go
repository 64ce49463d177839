// Package audit is the portal's tamper-evident audit trail. Every
// state-changing action appends one record (actor, action, target, time,
// source IP, request ID, details) to the audit_log table, and each record
// carries a seal over its contents and the seal of the record before it, so
// a record that is changed or deleted afterwards breaks the chain and
// Verify reports where.
//
// # The seal
//
// Records are numbered by seq, starting at 1 with no gaps; Append assigns
// seq as the previous head's seq + 1 inside the caller's transaction. A
// record's hash is the lower-case hex HMAC-SHA256, under the audit key named
// by its key_id, of
//
//	"portal-audit-v2\n" || F(seq) || F(at) || F(actor) || F(action) ||
//	F(target) || F(source_ip) || F(request_id) || F(details) || F(key_id) ||
//	F(prev_hash)
//
// where F(s) is the netstring of s: the decimal byte length of s, ":", the
// bytes of s, "," (so F("ab") is "2:ab,"). Every field is taken exactly as
// stored in its audit_log column: seq in decimal ("42"); at as UTC RFC 3339
// with exactly nine fractional digits ("2024-05-01T12:00:00.000000000Z");
// details as the stored JSON text (an object, keys sorted at every level, no
// HTML escaping, no trailing newline; "{}" when there are none). prev_hash
// is the hash of record seq-1, or 64 "0" characters for record 1.
//
// The keys live outside the database (a file, or the environment; see
// Keyring), so someone who can write the database but not read the key
// cannot re-seal a record they changed, nor the records after it.
//
// Records written before the trail was keyed have key_id "" and the
// unkeyed hash of version 1: the lower-case hex SHA-256 of
//
//	"portal-audit-v1\n" || F(seq) || F(at) || F(actor) || F(action) ||
//	F(target) || F(source_ip) || F(request_id) || F(details) || F(prev_hash)
//
// which anyone can re-derive from a CSV export. The first keyed record of
// such a chain is an audit.rekey record naming the unkeyed head it seals
// over; a change of key is an audit.key_rotated record sealed with the new
// key. Verify refuses an unkeyed record after a keyed one, and a change of
// key anywhere else.
//
// # What the chain cannot detect alone
//
// Deleting the newest records (truncating the tail) leaves a shorter chain
// that is still intact, and someone holding both the database and the key
// can rewrite the chain and re-seal it. Both are caught by anchors: the
// head's seq and hash, written on a schedule outside the portal to storage
// nobody can change or delete before its retention ends (S3 Object Lock in
// compliance mode; see Anchor). VerifyAgainst checks the chain against every
// anchor: a missing anchored record is truncation, a different hash is a
// rewrite.
//
// Details are stored in clear text and exported verbatim: never put secrets
// (passwords, tokens, keys, TOTP seeds) in them.
package audit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"sync"
	"time"

	"portal/internal/apperr"
	"portal/internal/store"
)

// GenesisHash is the prev_hash of record 1.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// hashDomain and keyedDomain prefix the hashed encodings (unkeyed version 1,
// keyed version 2), so a change of encoding can be told apart from
// tampering.
const (
	hashDomain  = "portal-audit-v1\n"
	keyedDomain = "portal-audit-v2\n"
)

// The actions of the records that mark a change of key.
const (
	ActionRekey      = "audit.rekey"
	ActionKeyRotated = "audit.key_rotated"
)

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
	// KeyID names the audit key that sealed the record ("" for a record
	// from before the trail was keyed).
	KeyID    string
	PrevHash string
	Hash     string
}

// Log appends to and reads the audit trail. It is safe for concurrent use.
type Log struct {
	db  *store.DB
	now func() time.Time

	mu   sync.Mutex
	ring *Keyring // nil only in this package's tests of unkeyed chains
	// reload reads the key ring again; Append calls it when the head was
	// sealed by a key this Log does not know (rotated by another process).
	reload func() (*Keyring, error)
}

// New returns a Log over db with a key of its own that lives as long as the
// process: for tests and tools whose records nobody verifies later. The
// portal uses NewKeyed. now is the clock; nil means time.Now.
func New(db *store.DB, now func() time.Time) *Log {
	return NewKeyed(db, now, EphemeralKeyring(), nil)
}

// NewKeyed returns a Log over db that seals records with ring's current key
// and verifies with all of ring. reload, when not nil, reads the ring again
// (from its file) when a newer key is met. now is the clock; nil means
// time.Now.
func NewKeyed(db *store.DB, now func() time.Time, ring *Keyring, reload func() (*Keyring, error)) *Log {
	if now == nil {
		now = time.Now
	}
	return &Log{db: db, now: now, ring: ring, reload: reload}
}

// Keys returns the key ring the Log seals and verifies with.
func (l *Log) Keys() *Keyring {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ring
}

// Append writes e inside the caller's transaction, so the action and its
// audit record commit or roll back together, and returns the stored record.
// It takes the database's audit lock (store.DB.Lock: on PostgreSQL an
// advisory lock every replica queues on, held until tx ends; on SQLite the
// transaction's write lock), reads the current head inside tx and assigns
// seq = head + 1, so concurrent appends serialise and the chain never
// forks. This is the only function that extends the chain.
//
// When the head was sealed by another key than the current one (the trail
// predates keying, or the key was rotated), Append first writes the
// audit.rekey or audit.key_rotated record that makes the change explicit.
// Actor and Action are required, and Details must encode as JSON;
// otherwise the error is apperr.Invalid and nothing is written.
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
	// One appender at a time, on every replica: the head read here must
	// still be the head when this record commits.
	if err := l.db.Lock(ctx, tx, "audit-chain"); err != nil {
		return Record{}, fmt.Errorf("audit: append %s: %w", e.Action, err)
	}
	head, err := readHead(ctx, tx)
	if err != nil {
		return Record{}, fmt.Errorf("audit: append %s: %w", e.Action, err)
	}
	key, err := l.sealingKey(head)
	if err != nil {
		return Record{}, fmt.Errorf("audit: append %s: %w", e.Action, err)
	}
	if step, ok := keyChange(head, key); ok {
		d, _ := encodeDetails(step.Details)
		if head, err = l.insert(ctx, tx, head, key, step, d); err != nil {
			return Record{}, err
		}
	}
	r, err := l.insert(ctx, tx, head, key, e, details)
	if err != nil {
		return Record{}, err
	}
	return r.record()
}

// Rekey writes the audit.rekey or audit.key_rotated record when the head
// was sealed by another key than the current one, and reports whether it
// did. The portal calls it at start, so an upgraded trail is keyed at once.
func (l *Log) Rekey(ctx context.Context, actor string) (bool, error) {
	wrote := false
	err := l.db.Tx(ctx, func(tx *sql.Tx) error {
		head, err := readHead(ctx, tx)
		if err != nil {
			return err
		}
		key, err := l.sealingKey(head)
		if err != nil {
			return err
		}
		step, ok := keyChange(head, key)
		if !ok {
			return nil
		}
		step.Actor = actor
		d, _ := encodeDetails(step.Details)
		_, err = l.insert(ctx, tx, head, key, step, d)
		wrote = err == nil
		return err
	})
	if err != nil {
		return false, fmt.Errorf("audit: re-key: %w", err)
	}
	return wrote, nil
}

// readHead returns the newest record (seq 0 and GenesisHash when the log is
// empty).
func readHead(ctx context.Context, tx *sql.Tx) (row, error) {
	var head row
	err := head.scanFrom(tx.QueryRowContext(ctx, `SELECT `+rowColumns+` FROM audit_log ORDER BY seq DESC LIMIT 1`))
	if errors.Is(err, sql.ErrNoRows) {
		return row{hash: GenesisHash}, nil
	}
	if err != nil {
		return row{}, fmt.Errorf("read head: %w", err)
	}
	return head, nil
}

// sealingKey is the key to seal the next record with, given the head. A
// head sealed by a key this Log does not know means another process
// rotated the key: the ring is read again, and writing stops (rather than
// seal with an old key) if the key is still unknown.
func (l *Log) sealingKey(head row) (*Key, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ring == nil {
		return nil, nil
	}
	if head.keyID != "" {
		if _, known := l.ring.Get(head.keyID); !known {
			if l.reload == nil {
				return nil, fmt.Errorf("the newest record is sealed with audit key %q, which this portal does not have: give it the current key ring", head.keyID)
			}
			ring, err := l.reload()
			if err != nil {
				return nil, err
			}
			if _, known := ring.Get(head.keyID); !known {
				return nil, fmt.Errorf("the newest record is sealed with audit key %q, which is not in the key ring: give this portal the current key ring", head.keyID)
			}
			l.ring = ring
		}
	}
	k := l.ring.Current()
	return &k, nil
}

// reloadFor returns a key ring holding key id: the Log's own, or, when
// that lacks id and the Log can read its ring again (another process
// rotated the key), the ring read again, which the Log then keeps. It
// returns nil when no ring holds id, and the error of reading it again.
func (l *Log) reloadFor(id string) (*Keyring, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ring == nil {
		return nil, nil
	}
	if _, known := l.ring.Get(id); known {
		return l.ring, nil
	}
	if l.reload == nil {
		return nil, nil
	}
	ring, err := l.reload()
	if err != nil {
		return nil, err
	}
	if _, known := ring.Get(id); !known {
		return nil, nil
	}
	l.ring = ring
	return ring, nil
}

// keyChange returns the record that makes a change of key explicit, when
// the head was sealed by another key than key.
func keyChange(head row, key *Key) (Entry, bool) {
	if key == nil || head.seq == 0 || head.keyID == key.ID {
		return Entry{}, false
	}
	if head.keyID == "" {
		return Entry{Actor: "system", Action: ActionRekey, Target: "audit-trail", Details: map[string]any{
			"key_id": key.ID, "unkeyed_records": head.seq, "unkeyed_head_hash": head.hash,
			"note": "records from here on are sealed with HMAC-SHA256 under the audit key; earlier records keep their unkeyed SHA-256 hashes",
		}}, true
	}
	return Entry{Actor: "system", Action: ActionKeyRotated, Target: "audit-trail", Details: map[string]any{
		"from_key_id": head.keyID, "key_id": key.ID,
	}}, true
}

// insert seals e (its details already encoded) after head with key and
// stores it.
func (l *Log) insert(ctx context.Context, tx *sql.Tx, head row, key *Key, e Entry, details string) (row, error) {
	r := row{
		seq: head.seq + 1, at: formatAt(l.now()), actor: e.Actor, action: e.Action, target: e.Target,
		sourceIP: e.SourceIP, requestID: e.RequestID, details: details, prevHash: head.hash,
	}
	if head.seq == 0 {
		r.prevHash = GenesisHash
	}
	var h hash.Hash
	if key != nil {
		r.keyID = key.ID
		h = hmac.New(sha256.New, key.Secret)
	} else {
		h = sha256.New()
	}
	r.hash = r.computeHash(h)
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_log
		(seq, at, actor, action, target, source_ip, request_id, details, key_id, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.seq, r.at, r.actor, r.action, r.target, r.sourceIP, r.requestID, r.details, r.keyID, r.prevHash, r.hash,
	); err != nil {
		return row{}, fmt.Errorf("audit: append %s: %w", e.Action, err)
	}
	return r, nil
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
	keyID, prevHash, hash        string
}

const rowColumns = `seq, at, actor, action, target, source_ip, request_id, details, key_id, prev_hash, hash`

func (r *row) scanFrom(s interface{ Scan(...any) error }) error {
	return s.Scan(&r.seq, &r.at, &r.actor, &r.action, &r.target, &r.sourceIP, &r.requestID, &r.details, &r.keyID, &r.prevHash, &r.hash)
}

// computeHash returns the hash described in the package doc: with h an
// HMAC-SHA256 under the record's key for a keyed record (version 2), plain
// SHA-256 for an unkeyed one (version 1). h is reset first, so Verify can
// reuse one per key.
func (r *row) computeHash(h hash.Hash) string {
	h.Reset()
	var buf []byte
	fields := []string{strconv.FormatInt(r.seq, 10), r.at, r.actor, r.action, r.target, r.sourceIP, r.requestID, r.details}
	if r.keyID == "" {
		buf = append(buf, hashDomain...)
	} else {
		buf = append(buf, keyedDomain...)
		fields = append(fields, r.keyID)
	}
	for _, f := range append(fields, r.prevHash) {
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
		KeyID:    r.keyID,
		PrevHash: r.prevHash,
		Hash:     r.hash,
	}, nil
}
