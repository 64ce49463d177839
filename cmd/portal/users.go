package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"portal/internal/app"
	"portal/internal/audit"
	"portal/internal/billing"
	"portal/internal/staff"
	"portal/internal/store"
)

// usersAdd implements `portal users add --email E --role R`.
func usersAdd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portal users add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "", "email of the new account (required)")
	name := fs.String("name", "", "display name")
	var roles multiFlag
	fs.Var(&roles, "role", "role to grant: admin, ops, compliance or finance (repeat or comma-separate for several; required)")
	dataDir := fs.String("data-dir", envOr("PORTAL_DATA_DIR", "data"), "the portal's data folder")
	dbPath := fs.String("db", envOr("PORTAL_DB", ""), "SQLite database file (default DATA-DIR/portal.db) or postgres:// URL (default $PORTAL_DB)")
	secretFile := fs.String("secret-key-file", envOr("PORTAL_SECRET_KEY_FILE", ""), "the portal's secret key file (default DATA-DIR/secret.key; $"+app.SecretKeyEnv+" wins)")
	keyFile := fs.String("audit-key-file", envOr("PORTAL_AUDIT_KEY_FILE", ""), "the audit key ring (default DATA-DIR/audit.key)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dbPath == "" {
		*dbPath = filepath.Join(*dataDir, "portal.db")
	}
	if *keyFile == "" {
		*keyFile = filepath.Join(*dataDir, "audit.key")
	}
	if *email == "" {
		fmt.Fprintln(stderr, "portal users add: -email is required")
		return 2
	}
	rs, err := staff.ParseRoles(roles)
	if err != nil {
		fmt.Fprintf(stderr, "portal users add: -role: %v\n", err)
		return 2
	}
	if *secretFile == "" {
		*secretFile = filepath.Join(*dataDir, "secret.key")
	}
	key, err := app.LoadSecretKey(billing.NewSecret(os.Getenv(app.SecretKeyEnv)), *secretFile, store.IsPostgresURL(*dbPath))
	if err != nil {
		return report(stderr, err)
	}
	sealer, err := staff.NewSealer(key)
	if err != nil {
		return report(stderr, err)
	}
	db, err := store.Open(ctx, *dbPath)
	if err != nil {
		return report(stderr, err)
	}
	defer db.Close()
	if err := staff.CheckKey(ctx, db, key); err != nil {
		return report(stderr, err)
	}
	// The same audit keys as the portal, so the record of this account is
	// sealed like every other.
	ring, reload, err := app.LoadAuditKeys(app.AuditConfig{KeyFile: *keyFile, KeysFromEnv: os.Getenv(app.AuditKeysEnv) != "", Shared: store.IsPostgresURL(*dbPath)})
	if err != nil {
		return report(stderr, err)
	}
	svc := staff.NewService(db, audit.NewKeyed(db, nil, ring, reload), sealer, staff.DefaultConfig(), nil)
	u, otp, err := svc.Create(ctx, audit.Entry{Actor: "cli"}, staff.NewUser{Email: *email, Name: *name, Roles: rs})
	if err != nil {
		return report(stderr, err)
	}
	fmt.Fprintf(stdout, "Created %s with roles %s.\nOne-time password (shown once; they choose their own at first sign-in): %s\n", u.Email, strings.Join(roleNames(u.Roles), ", "), otp)
	return 0
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func roleNames(rs []staff.Role) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return out
}
