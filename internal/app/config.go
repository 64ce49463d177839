// Package app assembles the portal from its parts: configuration, the
// database, services and the HTTP server. An App can be started on port 0
// with a temporary database, which is how end-to-end tests run it.
package app

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3"

	"portal/internal/accounts"
	"portal/internal/activity"
	"portal/internal/billing"
	"portal/internal/regions"
	"portal/internal/sso"
	"portal/internal/staff"
)

// Config is the portal's configuration, parsed once from flags and
// PORTAL_* environment variables.
type Config struct {
	Addr    string
	BaseURL string
	DataDir string
	// DBPath is the SQLite file, or a postgres:// URL.
	DBPath        string
	SecretKeyFile string
	// SecretKey is PORTAL_SECRET_KEY, when set (it wins over the file).
	SecretKey      billing.Secret
	AdminEmail     string
	Require2FA     []staff.Role
	LogFormat      string
	LogLevel       slog.Level
	TrustProxy     bool
	SessionTimeout time.Duration
	ShutdownGrace  time.Duration
	// Environments are the AWS accounts of dev, test and prod and the
	// deployer role the portal assumes in each; empty when AWS is not
	// configured.
	Environments []regions.EnvironmentConfig
	// SandboxNotice is shown on every page in the local sandbox.
	SandboxNotice string
	// Activity is where CloudTrail activity is read from and which digest
	// keys are trusted.
	Activity activity.Settings
	// Promotion is how promotion, approvals, drift detection and
	// verification behave.
	Promotion PromotionConfig
	// Billing is how the portal reaches Stripe. Its secrets print as
	// [redacted], so the Config can be logged.
	Billing billing.Config
	// Management is the organization's management account (Identity
	// Center, Organizations); nil when not configured.
	Management *accounts.ManagementConfig
	// SSO is single sign-on through an OpenID provider; nil when off. Its
	// client secret prints as [redacted].
	SSO *sso.Config
	// Audit is where the audit keys live and where the chain is anchored.
	Audit AuditConfig
}

// FlagSet declares the serve flags on fs and returns a function that,
// after parsing, builds the Config.
func FlagSet(fs *flag.FlagSet) func() (Config, error) {
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on (host:port; port 0 picks a free port)")
	baseURL := fs.String("base-url", "", "address people use to reach the portal, e.g. https://portal.example.com (https makes cookies Secure); default http://ADDR")
	dataDir := fs.String("data-dir", "data", "folder for the database and the generated secret key")
	dbPath := fs.String("db", "", "SQLite database file (default DATA-DIR/portal.db), or postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=... for several replicas sharing one PostgreSQL 15+ database")
	keyFile := fs.String("secret-key-file", "", "file holding the 32-byte key that encrypts two-factor secrets, hex (default DATA-DIR/secret.key, created if missing with SQLite); "+SecretKeyEnv+" holds the key itself and wins. Replicas sharing PostgreSQL need the same key")
	adminEmail := fs.String("admin-email", "admin@portal.local", "email of the first administrator, created when no admin exists")
	require2FA := fs.String("require-2fa", "admin,ops,compliance,finance", "roles that must use two-factor authentication (comma-separated; empty for none): every role by default, since compliance and finance read CloudTrail, the audit trail and revenue")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	trustProxy := fs.Bool("trust-proxy", false, "take the client address from X-Forwarded-For (only behind a trusted reverse proxy)")
	sessionTimeout := fs.Duration("session-idle-timeout", 2*time.Hour, "sign people out after this long without a request")
	grace := fs.Duration("shutdown-grace", 15*time.Second, "how long to let requests finish on SIGINT/SIGTERM")
	trailBuckets := fs.String("activity-trail-bucket", "", "CloudTrail buckets to ingest, comma-separated ENV:BUCKET[:REGION[:PREFIX]] (read with ENV's deployer role)")
	lookups := fs.String("activity-lookup", "", "accounts read through CloudTrail LookupEvents instead, comma-separated ENV:REGION")
	digestKeys := fs.String("activity-digest-keys", "", "PEM file of the public keys CloudTrail digests are signed with (from aws cloudtrail list-public-keys)")
	webhook := fs.String("activity-webhook", "", "URL that receives a JSON POST for new sensitive AWS events")
	retention := fs.String("activity-retention", "", "years each jurisdiction's AWS events are kept, comma-separated JURISDICTION:YEARS (default 6 for each: us:6,eu:6,apac:6); older events are archived to the trail bucket, then removed")
	promotion := promotionFlags(fs)
	management := managementFlags(fs)
	singleSignOn := ssoFlags(fs)
	auditCfg := auditFlags(fs)
	stripeKeyFile := fs.String("stripe-secret-key-file", "", "file holding the Stripe secret key (default: the STRIPE_SECRET_KEY environment variable); use a restricted read-only key")
	stripeHookFile := fs.String("stripe-webhook-secret-file", "", "file holding the Stripe webhook signing secret (default: the STRIPE_WEBHOOK_SECRET environment variable)")
	stripeAPI := fs.String("stripe-api-url", "", "Stripe API address (default https://api.stripe.com; stripe-mock or a fixture server in tests)")
	stripeEvery := fs.Duration("stripe-sync-interval", 15*time.Minute, "how often to sync from Stripe")
	type envFlags struct{ account, role *string }
	envs := map[string]envFlags{}
	for _, name := range regions.EnvironmentNames() {
		envs[name] = envFlags{
			account: fs.String(name+"-account-id", "", "AWS account id of the "+name+" environment"),
			role:    fs.String(name+"-role-arn", "", "ARN of the deployer role the portal assumes in the "+name+" account (default arn:aws:iam::ACCOUNT:role/PortalDeployer)"),
		}
	}
	return func() (Config, error) {
		c := Config{Addr: *addr, BaseURL: *baseURL, DataDir: *dataDir, DBPath: *dbPath, SecretKeyFile: *keyFile,
			AdminEmail: *adminEmail, LogFormat: *logFormat, TrustProxy: *trustProxy, SessionTimeout: *sessionTimeout, ShutdownGrace: *grace}
		if c.DBPath == "" {
			c.DBPath = filepath.Join(c.DataDir, "portal.db")
		}
		if c.SecretKeyFile == "" {
			c.SecretKeyFile = filepath.Join(c.DataDir, "secret.key")
		}
		if a, err := auditCfg(c.DataDir); err != nil {
			return c, err
		} else {
			c.Audit = a
		}
		c.SecretKey = billing.NewSecret(os.Getenv(SecretKeyEnv))
		if strings.TrimSpace(*require2FA) != "" {
			rs, err := staff.ParseRoles([]string{*require2FA})
			if err != nil {
				return c, fmt.Errorf("-require-2fa: %w", err)
			}
			c.Require2FA = rs
		}
		if err := c.LogLevel.UnmarshalText([]byte(*logLevel)); err != nil {
			return c, fmt.Errorf("-log-level: %w", err)
		}
		configured := false
		for _, name := range regions.EnvironmentNames() {
			f := envs[name]
			if *f.account == "" && *f.role == "" {
				continue
			}
			configured = true
			role := *f.role
			if role == "" {
				role = "arn:aws:iam::" + *f.account + ":role/PortalDeployer"
			}
			c.Environments = append(c.Environments, regions.EnvironmentConfig{Name: name, AccountID: *f.account, DeployerRoleARN: role})
		}
		if configured {
			if _, err := regions.New(c.Environments); err != nil {
				return c, fmt.Errorf("environment accounts: %w", err)
			}
		}
		key, err := billing.LoadSecret("STRIPE_SECRET_KEY", *stripeKeyFile)
		if err != nil {
			return c, fmt.Errorf("-stripe-secret-key-file: %w", err)
		}
		hook, err := billing.LoadSecret("STRIPE_WEBHOOK_SECRET", *stripeHookFile)
		if err != nil {
			return c, fmt.Errorf("-stripe-webhook-secret-file: %w", err)
		}
		if *stripeEvery < time.Minute {
			return c, fmt.Errorf("-stripe-sync-interval: want at least 1m, got %s", *stripeEvery)
		}
		c.Billing = billing.Config{SecretKey: key, WebhookSecret: hook, APIURL: *stripeAPI, SyncInterval: *stripeEvery}
		promo, err := promotion()
		if err != nil {
			return c, err
		}
		c.Promotion = promo
		if c.Management, err = management(); err != nil {
			return c, err
		}
		if c.SSO, err = singleSignOn(); err != nil {
			return c, err
		}
		act, err := activity.ParseSettings(*trailBuckets, *lookups, *digestKeys, *webhook)
		if err != nil {
			return c, err
		}
		if act.Retention, err = activity.ParseRetention(*retention); err != nil {
			return c, err
		}
		c.Activity = act
		if c.LogFormat != "text" && c.LogFormat != "json" {
			return c, fmt.Errorf("-log-format: want text or json, got %q", c.LogFormat)
		}
		return c, nil
	}
}

// ParseServe parses the serve command line and environment.
func ParseServe(args []string) (Config, error) {
	fs := flag.NewFlagSet("portal serve", flag.ContinueOnError)
	build := FlagSet(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: portal serve [flags]\n\nRuns the portal. Every flag can also be set with an environment variable:\n-addr is PORTAL_ADDR, -data-dir is PORTAL_DATA_DIR, and so on (upper case, dashes become underscores).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := ff.Parse(fs, args, ff.WithEnvVarPrefix("PORTAL")); err != nil {
		return Config{}, err
	}
	return build()
}

// NewLogger builds the process's logger.
func NewLogger(c Config) *slog.Logger { return NewLoggerTo(os.Stderr, c) }

// NewLoggerTo is NewLogger writing to w (the sandbox's own error output).
func NewLoggerTo(w io.Writer, c Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
