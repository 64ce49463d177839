package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"hash"
	"sort"
	"strconv"
	"time"
)

// Verification is the result of walking the chain.
type Verification struct {
	// OK is true when every record verified (and, with anchors, matched
	// every anchor).
	OK bool
	// Checked counts the records read, including the first broken one.
	Checked int
	// FirstBroken is the seq of the first record that failed, 0 if OK.
	FirstBroken int64
	// Reason says in plain words why FirstBroken failed, "" if OK.
	Reason string
	// HeadSeq and HeadHash are the newest record that verified (the head of
	// the log when OK; 0 and GenesisHash for an empty log).
	HeadSeq  int64
	HeadHash string
	// KeyID is the key that sealed the newest verified record ("" when it
	// is unkeyed); Unkeyed counts the records from before keying.
	KeyID   string
	Unkeyed int64
	// Anchors counts the anchors checked; AnchorSeq and AnchorAt are the
	// newest one's record and time (0 and zero without anchors).
	Anchors   int
	AnchorSeq int64
	AnchorAt  time.Time
}

// Verify walks the whole chain; see VerifyAgainst.
func (l *Log) Verify(ctx context.Context) (Verification, error) {
	return l.VerifyAgainst(ctx, nil)
}

// VerifyAgainst walks the whole chain in seq order, one row at a time, and
// reports the first broken record: one whose seal does not match its
// contents (or whose key is not in the ring), whose prev_hash does not match
// the record before it, whose seq does not follow the one before it, an
// unkeyed record after a keyed one, or a change of key that is not an
// audit.rekey or audit.key_rotated record. It then checks every anchor: the
// anchored record must exist (else the newest records were deleted) and
// carry the anchored hash (else the chain was rewritten). Verification
// failures are in the result; the error is for failing to read the log.
func (l *Log) VerifyAgainst(ctx context.Context, anchors []Anchor) (Verification, error) {
	ring := l.Keys()
	want := map[int64][]Anchor{}
	v := Verification{HeadHash: GenesisHash}
	for _, a := range anchors {
		want[a.Seq] = append(want[a.Seq], a)
		if a.Seq > v.AnchorSeq || (a.Seq == v.AnchorSeq && a.AnchoredAt.After(v.AnchorAt)) {
			v.AnchorSeq, v.AnchorAt = a.Seq, a.AnchoredAt
		}
	}
	v.Anchors = len(anchors)

	// One SELECT reads one WAL snapshot, so appends made meanwhile are
	// neither half-seen nor mistaken for damage.
	rows, err := l.db.QueryContext(ctx, `SELECT `+rowColumns+` FROM audit_log ORDER BY seq ASC`)
	if err != nil {
		return Verification{}, fmt.Errorf("audit: verify: %w", err)
	}
	defer rows.Close()

	macs := map[string]hash.Hash{"": sha256.New()}
	keyed := false
	for rows.Next() {
		var r row
		if err := r.scanFrom(rows); err != nil {
			return Verification{}, fmt.Errorf("audit: verify: %w", err)
		}
		v.Checked++
		h, ok := macs[r.keyID]
		var reloadErr error
		if !ok && ring != nil {
			k, known := ring.Get(r.keyID)
			if !known {
				// Another process may have rotated the key since this
				// Log read its ring.
				var newer *Keyring
				if newer, reloadErr = l.reloadFor(r.keyID); newer != nil {
					ring = newer
					k, known = ring.Get(r.keyID)
				}
			}
			if known {
				h = hmac.New(sha256.New, k.Secret)
				macs[r.keyID] = h
				ok = true
			}
		}
		reason := ""
		switch {
		case !ok && reloadErr != nil:
			reason = fmt.Sprintf("record %d: sealed with audit key %q, which is not in the key ring this portal holds, and reading the key ring again failed: %v", r.seq, r.keyID, reloadErr)
		case !ok:
			reason = fmt.Sprintf("record %d: sealed with audit key %q, which is not in the key ring (cannot verify; was the key ring replaced?)", r.seq, r.keyID)
		case keyed && r.keyID == "":
			reason = fmt.Sprintf("record %d: unkeyed after keyed records (re-written without the key?)", r.seq)
		default:
			reason = check(&r, v.HeadSeq, v.HeadHash, h)
		}
		if reason == "" && v.HeadSeq > 0 && r.keyID != v.KeyID && r.keyID != "" && r.action != ActionRekey && r.action != ActionKeyRotated {
			reason = fmt.Sprintf("record %d: sealed with key %q after key %q without an %s record (re-written?)", r.seq, r.keyID, v.KeyID, ActionKeyRotated)
		}
		if reason == "" {
			for _, a := range want[r.seq] {
				if a.Hash != r.hash {
					reason = fmt.Sprintf("record %d does not match its anchor %s (anchored hash %s): the chain was rewritten", r.seq, anchorWhen(a.AnchoredAt), a.Hash)
					break
				}
			}
		}
		if reason != "" {
			v.FirstBroken, v.Reason = r.seq, reason
			return v, nil
		}
		if r.keyID != "" {
			keyed = true
		} else {
			v.Unkeyed++
		}
		v.HeadSeq, v.HeadHash, v.KeyID = r.seq, r.hash, r.keyID
	}
	if err := rows.Err(); err != nil {
		return Verification{}, fmt.Errorf("audit: verify: %w", err)
	}
	if ring != nil && v.Checked > 0 && !keyed {
		v.FirstBroken, v.Reason = v.HeadSeq, fmt.Sprintf("no record is sealed with an audit key, yet this portal has keys (%d unkeyed records): a trail upgraded from before keying is re-keyed when the portal starts; otherwise the chain was re-written without the key", v.Unkeyed)
		return v, nil
	}
	if v.AnchorSeq > v.HeadSeq {
		missing := "record " + strconv.FormatInt(v.AnchorSeq, 10)
		if v.AnchorSeq > v.HeadSeq+1 {
			missing = fmt.Sprintf("records %d to %d", v.HeadSeq+1, v.AnchorSeq)
		}
		v.FirstBroken = v.HeadSeq + 1
		v.Reason = fmt.Sprintf("%s missing: the anchor %s holds record %d, but the newest record is %d (the newest records were deleted)",
			missing, anchorWhen(v.AnchorAt), v.AnchorSeq, v.HeadSeq)
		return v, nil
	}
	v.OK = true
	return v, nil
}

// check returns why r does not follow the verified record (prevSeq,
// prevHash), or "" when it does.
func check(r *row, prevSeq int64, prevHash string, h hash.Hash) string {
	if r.computeHash(h) != r.hash {
		return fmt.Sprintf("record %d: hash does not match its contents (changed?)", r.seq)
	}
	prevName := "record " + strconv.FormatInt(prevSeq, 10)
	if prevSeq == 0 {
		prevName = "the genesis value"
	}
	missing := ""
	switch gap := r.seq - prevSeq; {
	case gap == 2:
		missing = fmt.Sprintf("record %d deleted?", prevSeq+1)
	case gap > 2:
		missing = fmt.Sprintf("records %d to %d deleted?", prevSeq+1, r.seq-1)
	}
	if r.prevHash != prevHash {
		if missing == "" {
			missing = prevName + " changed?"
		}
		return fmt.Sprintf("record %d: previous-hash does not match %s (%s)", r.seq, prevName, missing)
	}
	if r.seq != prevSeq+1 {
		// Only reachable by forging prev_hash and hash together.
		if missing == "" {
			missing = "renumbered?"
		}
		return fmt.Sprintf("record %d: seq does not follow %s (%s)", r.seq, prevName, missing)
	}
	return ""
}

// sortAnchors orders anchors by record, then time.
func sortAnchors(as []Anchor) {
	sort.Slice(as, func(i, j int) bool {
		if as[i].Seq != as[j].Seq {
			return as[i].Seq < as[j].Seq
		}
		return as[i].AnchoredAt.Before(as[j].AnchoredAt)
	})
}

// anchorWhen names an anchor by its time ("recorded by hand" when it has
// none).
func anchorWhen(t time.Time) string {
	if t.IsZero() {
		return "recorded by hand"
	}
	return "of " + t.UTC().Format(time.RFC3339)
}
