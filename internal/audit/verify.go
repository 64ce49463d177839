package audit

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"portal/internal/store"
)

// Verification is the result of walking the chain.
type Verification struct {
	// OK is true when every record verified.
	OK bool
	// Checked counts the records read, including the first broken one.
	Checked int
	// FirstBroken is the seq of the first record that failed, 0 if OK.
	FirstBroken int64
	// Reason says in plain words why FirstBroken failed, "" if OK.
	Reason string
	// HeadSeq and HeadHash are the newest record that verified (the head of
	// the log when OK; 0 and GenesisHash for an empty log). Keep them
	// outside the database to detect truncation later; see the package doc.
	HeadSeq  int64
	HeadHash string
}

// Verify walks the whole chain in seq order, one row at a time, and
// reports the first broken record: one whose hash does not match its
// contents, whose prev_hash does not match the record before it, or whose
// seq does not follow the one before it. Verification failures are in the
// result; the error is for failing to read the log.
func (l *Log) Verify(ctx context.Context) (Verification, error) {
	// One SELECT reads one WAL snapshot, so appends made meanwhile are
	// neither half-seen nor mistaken for damage.
	rows, err := l.db.QueryContext(ctx, `SELECT `+rowColumns+` FROM audit_log ORDER BY seq ASC`)
	if err != nil {
		return Verification{}, fmt.Errorf("audit: verify: %w", err)
	}
	defer rows.Close()

	v := Verification{HeadHash: GenesisHash}
	h := sha256.New()
	for rows.Next() {
		var r row
		if err := r.scanFrom(rows); err != nil {
			return Verification{}, fmt.Errorf("audit: verify: %w", err)
		}
		v.Checked++
		if reason := check(&r, v.HeadSeq, v.HeadHash, h); reason != "" {
			v.FirstBroken, v.Reason = r.seq, reason
			return v, nil
		}
		v.HeadSeq, v.HeadHash = r.seq, r.hash
	}
	if err := rows.Err(); err != nil {
		return Verification{}, fmt.Errorf("audit: verify: %w", err)
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

// VerifyCommand implements `portal audit verify --db PATH [--anchor SEQ:HASH]`.
// It prints one line: exit 0 when the chain is intact (and, with --anchor,
// record SEQ still has HASH), 1 and the first broken record when not, 2 on
// usage errors or when the database cannot be opened or read. It never
// creates a database: a missing file is an error.
func VerifyCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("portal audit verify", flag.ContinueOnError)
	fset.SetOutput(stderr)
	dbPath := fset.String("db", "", "path to the portal's SQLite database (required)")
	anchor := fset.String("anchor", "", "SEQ:HASH of a head recorded earlier; fail unless record SEQ still has HASH")
	fset.Usage = func() {
		fmt.Fprintln(stderr, "usage: portal audit verify --db PATH [--anchor SEQ:HASH]")
		fset.PrintDefaults()
	}
	if err := fset.Parse(args); err != nil {
		return 2
	}
	if *dbPath == "" || fset.NArg() > 0 {
		fset.Usage()
		return 2
	}
	var anchorSeq int64
	var anchorHash string
	if *anchor != "" {
		s, hsh, ok := strings.Cut(*anchor, ":")
		n, err := strconv.ParseInt(s, 10, 64)
		if !ok || err != nil || n < 1 || len(hsh) != len(GenesisHash) {
			fmt.Fprintf(stderr, "portal audit verify: --anchor %q: want SEQ:HASH, e.g. 42:<64 hex digits>\n", *anchor)
			return 2
		}
		anchorSeq, anchorHash = n, strings.ToLower(hsh)
	}
	// store.Open would create a missing file, and an empty log verifies.
	if _, err := os.Stat(*dbPath); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(stderr, "portal audit verify: %s: no such database\n", *dbPath)
		} else {
			fmt.Fprintf(stderr, "portal audit verify: %v\n", err)
		}
		return 2
	}
	// Open applies pending migrations, as the portal itself would on start.
	db, err := store.Open(ctx, *dbPath)
	if err != nil {
		fmt.Fprintf(stderr, "portal audit verify: %v\n", err)
		return 2
	}
	defer db.Close()
	l := New(db, nil)
	v, err := l.Verify(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "portal audit verify: %v\n", err)
		return 2
	}
	if !v.OK {
		fmt.Fprintf(stdout, "audit chain BROKEN at record %d: %s (%d records checked)\n", v.FirstBroken, v.Reason, v.Checked)
		return 1
	}
	if anchorSeq > 0 {
		if anchorSeq > v.HeadSeq {
			fmt.Fprintf(stdout, "audit chain BROKEN: anchor record %d is missing, head is record %d (newest records deleted?)\n", anchorSeq, v.HeadSeq)
			return 1
		}
		rec, err := l.Get(ctx, anchorSeq)
		if err != nil {
			fmt.Fprintf(stderr, "portal audit verify: %v\n", err)
			return 2
		}
		if rec.Hash != anchorHash {
			fmt.Fprintf(stdout, "audit chain BROKEN: record %d hash %s does not match anchor %s (chain rewritten?)\n", anchorSeq, rec.Hash, anchorHash)
			return 1
		}
	}
	fmt.Fprintf(stdout, "audit chain intact: %d records, head record %d hash %s\n", v.Checked, v.HeadSeq, v.HeadHash)
	return 0
}
