package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"portal/internal/app"
	"portal/internal/audit"
	"portal/internal/store"
)

// auditVerify implements `portal audit verify`: it walks the audit chain
// and, with an anchor bucket, checks it against every anchor there. It
// prints one line and exits 0 when the chain is intact (and matches every
// anchor), 1 naming the first broken record, 2 on usage errors or when the
// database, the keys or the anchors cannot be read. It never creates a
// database or a key.
func auditVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("portal audit verify", flag.ContinueOnError)
	fset.SetOutput(stderr)
	dbPath := fset.String("db", envOr("PORTAL_DB", ""), "the portal's SQLite database file (default DATA-DIR/portal.db) or postgres:// URL (default $PORTAL_DB)")
	dataDir := fset.String("data-dir", envOr("PORTAL_DATA_DIR", "data"), "the portal's data folder")
	keyFile := fset.String("audit-key-file", envOr("PORTAL_AUDIT_KEY_FILE", ""), "the audit key ring (default DATA-DIR/audit.key; "+app.AuditKeysEnv+" may hold the ring instead)")
	anchor := fset.String("anchor", "", "SEQ:HASH of a head recorded by hand; fail unless record SEQ still has HASH")
	bucket := fset.String("anchor-bucket", envOr("PORTAL_AUDIT_ANCHOR_BUCKET", ""), "S3 bucket holding the anchors; check the chain against every one")
	prefix := fset.String("anchor-prefix", envOr("PORTAL_AUDIT_ANCHOR_PREFIX", "portal/"), "key prefix of the anchors")
	region := fset.String("anchor-region", envOr("PORTAL_AUDIT_ANCHOR_REGION", "us-east-1"), "region of the anchor bucket")
	account := fset.String("anchor-account-id", envOr("PORTAL_AUDIT_ANCHOR_ACCOUNT_ID", ""), "AWS account of the anchor bucket")
	role := fset.String("anchor-role-arn", envOr("PORTAL_AUDIT_ANCHOR_ROLE_ARN", ""), "role to assume to read the anchors (default arn:aws:iam::ACCOUNT:role/PortalAuditAnchor)")
	fset.Usage = func() {
		fmt.Fprintln(stderr, "usage: portal audit verify [-data-dir DIR | -db PATH] [-audit-key-file PATH] [-anchor-bucket BUCKET ...] [-anchor SEQ:HASH]")
		fset.PrintDefaults()
	}
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fset.NArg() > 0 {
		fset.Usage()
		return 2
	}
	if *dbPath == "" {
		*dbPath = filepath.Join(*dataDir, "portal.db")
	}
	if *keyFile == "" && store.IsPostgresURL(*dbPath) {
		*keyFile = filepath.Join(*dataDir, "audit.key")
	} else if *keyFile == "" {
		*keyFile = filepath.Join(filepath.Dir(*dbPath), "audit.key")
	}
	var manual *audit.Anchor
	if *anchor != "" {
		s, h, ok := strings.Cut(*anchor, ":")
		n, err := strconv.ParseInt(s, 10, 64)
		if !ok || err != nil || n < 1 || len(h) != len(audit.GenesisHash) {
			fmt.Fprintf(stderr, "portal audit verify: --anchor %q: want SEQ:HASH, e.g. 42:<64 hex digits>\n", *anchor)
			return 2
		}
		manual = &audit.Anchor{Seq: n, Hash: strings.ToLower(h), AnchoredAt: time.Time{}}
	}
	// store.Open would create a missing file, and an empty log verifies.
	if _, err := os.Stat(*dbPath); err != nil && !store.IsPostgresURL(*dbPath) {
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(stderr, "portal audit verify: %s: no such database\n", *dbPath)
		} else {
			fmt.Fprintf(stderr, "portal audit verify: %v\n", err)
		}
		return 2
	}
	ring, err := verifyKeys(*keyFile)
	if err != nil {
		fmt.Fprintf(stderr, "portal audit verify: %v\n", err)
		return 2
	}
	var anchors []audit.Anchor
	if *bucket != "" {
		ac := app.AnchorConfig{Bucket: *bucket, Prefix: *prefix, Region: *region, AccountID: *account, RoleARN: *role}
		if ac.RoleARN == "" && ac.AccountID != "" {
			ac.RoleARN = "arn:aws:iam::" + ac.AccountID + ":role/PortalAuditAnchor"
		}
		st, err := app.AnchorStore(ctx, ac)
		if err == nil {
			anchors, err = st.List(ctx)
		}
		if err != nil {
			fmt.Fprintf(stderr, "portal audit verify: %v\n", err)
			return 2
		}
	}
	if manual != nil {
		anchors = append(anchors, *manual)
	}
	// Open applies pending migrations, as the portal itself would on start.
	db, err := store.Open(ctx, *dbPath)
	if err != nil {
		fmt.Fprintf(stderr, "portal audit verify: %v\n", err)
		return 2
	}
	defer db.Close()
	v, err := audit.NewKeyed(db, nil, ring, nil).VerifyAgainst(ctx, anchors)
	if err != nil {
		fmt.Fprintf(stderr, "portal audit verify: %v\n", err)
		return 2
	}
	if !v.OK {
		fmt.Fprintf(stdout, "audit chain BROKEN at record %d: %s (%d records checked)\n", v.FirstBroken, v.Reason, v.Checked)
		return 1
	}
	sealed := "unkeyed"
	if v.KeyID != "" {
		sealed = fmt.Sprintf("%d unkeyed, then sealed; head sealed with key %s", v.Unkeyed, v.KeyID)
	}
	anchored := "no anchors checked"
	if v.Anchors > 0 {
		anchored = fmt.Sprintf("%d anchors checked, the newest holding record %d", v.Anchors, v.AnchorSeq)
	}
	fmt.Fprintf(stdout, "audit chain intact: %d records (%s), head record %d hash %s; %s\n", v.Checked, sealed, v.HeadSeq, v.HeadHash, anchored)
	return 0
}

// verifyKeys reads the key ring for verifying: PORTAL_AUDIT_KEYS, or the
// key file. A missing file means no keys (an unkeyed trail still
// verifies; a keyed record then cannot).
func verifyKeys(keyFile string) (*audit.Keyring, error) {
	if env := os.Getenv(app.AuditKeysEnv); env != "" {
		r, err := audit.ParseKeyring(env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", app.AuditKeysEnv, err)
		}
		return r, nil
	}
	r, err := audit.LoadKeyFile(keyFile, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return r, err
}

// auditRotateKey implements `portal audit rotate-key`: it adds a new key to
// the key file, which seals every record from now on, and records the
// change in the trail (an audit.key_rotated record sealed with the new key).
func auditRotateKey(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("portal audit rotate-key", flag.ContinueOnError)
	fset.SetOutput(stderr)
	dataDir := fset.String("data-dir", envOr("PORTAL_DATA_DIR", "data"), "the portal's data folder")
	dbPath := fset.String("db", envOr("PORTAL_DB", ""), "the portal's SQLite database file (default DATA-DIR/portal.db) or postgres:// URL (default $PORTAL_DB)")
	keyFile := fset.String("audit-key-file", envOr("PORTAL_AUDIT_KEY_FILE", ""), "the audit key ring (default DATA-DIR/audit.key)")
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *dbPath == "" {
		*dbPath = filepath.Join(*dataDir, "portal.db")
	}
	if *keyFile == "" {
		*keyFile = filepath.Join(*dataDir, "audit.key")
	}
	if os.Getenv(app.AuditKeysEnv) != "" {
		fmt.Fprintf(stderr, "portal audit rotate-key: the key ring comes from %s: add a line \"kN HEX\" (HEX from `openssl rand -hex 32`) at its end, keeping the others, and restart the portal\n", app.AuditKeysEnv)
		return 2
	}
	if _, err := os.Stat(*dbPath); err != nil && !store.IsPostgresURL(*dbPath) {
		fmt.Fprintf(stderr, "portal audit rotate-key: %s: no such database\n", *dbPath)
		return 2
	}
	k, err := audit.RotateKeyFile(*keyFile)
	if err != nil {
		return report(stderr, err)
	}
	ring, err := audit.LoadKeyFile(*keyFile, false)
	if err != nil {
		return report(stderr, err)
	}
	db, err := store.Open(ctx, *dbPath)
	if err != nil {
		return report(stderr, err)
	}
	defer db.Close()
	if _, err := audit.NewKeyed(db, nil, ring, nil).Rekey(ctx, "cli"); err != nil {
		return report(stderr, err)
	}
	fmt.Fprintf(stdout, "Added audit key %s to %s; the audit.key_rotated record and every record after it are sealed with it.\n"+
		"Keep the older keys: they verify the records they sealed. A running portal reads the file again when it meets a record sealed with the new key.\n", k.ID, *keyFile)
	return 0
}
