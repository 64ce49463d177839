// Package sandbox runs the portal on a local sandbox: moto stands in for
// AWS (three accounts for dev, test and prod) over HTTPS with the sandbox's
// own CA, stripe-mock for Stripe, mailpit for e-mail, an alert inbox for the
// stacks' SNS subscribers, and the project's own OpenID provider for the
// organization's identity provider (a few sample people and groups); all data
// lives under .sandbox/ in the project. It is what `make run` runs.
package sandbox

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"portal/internal/accounts"
	"portal/internal/app"
	"portal/internal/audit"
	"portal/internal/notify"
	"portal/internal/peers"
	"portal/internal/regions"
	"portal/internal/web"
)

// Run starts moto, stripe-mock, mailpit and the identity provider on free loopback
// ports, points the portal at them and serves until ctx ends, then stops everything it
// started.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("portal-dev sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "address for the portal (port 0 picks a free port)")
	dir := fs.String("dir", "", "sandbox folder (default .sandbox in the project)")
	endpoint := fs.String("aws-endpoint", "", "use this AWS emulator endpoint, already running (e.g. moto behind the soak's fault proxy), instead of starting moto")
	// A replica of a sandbox: several sandboxes sharing one folder, one
	// PostgreSQL database, the keys and the AWS endpoint serve one portal,
	// as `portal-dev soak -replicas 2` runs them behind its balancer.
	db := fs.String("db", "", "the portal's database, as portal serve's -db (default DIR/data/portal.db, SQLite); a postgres:// URL shared by several sandboxes makes each a replica")
	keyFile := fs.String("secret-key-file", "", "as portal serve's -secret-key-file (default DIR/data/secret.key); required with PostgreSQL, the same for every replica")
	auditKeyFile := fs.String("audit-key-file", "", "as portal serve's -audit-key-file (default DIR/data/audit.key); required with PostgreSQL, the same for every replica")
	baseURL := fs.String("base-url", "", "as portal serve's -base-url: the address people use, e.g. the load balancer's in front of several replicas (default the portal's own)")
	small := fs.Bool("small", false, "generate "+smallData.describe()+" instead of "+fullData.describe()+": the same kinds of data, quicker to write, sync, ingest and validate (the contract fuzzer's sandbox)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *endpoint != "" {
		if u, err := url.Parse(*endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("sandbox: -aws-endpoint %q is not an http(s) URL such as http://127.0.0.1:5000", *endpoint)
		}
	}
	if *dir == "" {
		root, err := peers.ProjectRoot()
		if err != nil {
			return err
		}
		*dir = filepath.Join(root, ".sandbox")
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	stripeLog, err := os.OpenFile(filepath.Join(*dir, "stripe-mock.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	defer stripeLog.Close()

	// The sandbox's own CA signs the certificates of the peers that serve
	// TLS here; only the clients that talk to them trust it.
	ca, err := peers.NewCA()
	if err != nil {
		return err
	}
	inbox, err := peers.StartAlertInbox(ca)
	if err != nil {
		return err
	}
	defer inbox.Close()

	awsURL, awsCA := *endpoint, ""
	if awsURL == "" {
		fmt.Fprintln(stdout, "Starting moto (AWS, over HTTPS) and stripe-mock (Stripe) on loopback…")
		motoLog, err := os.OpenFile(filepath.Join(*dir, "moto.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		defer motoLog.Close()
		// moto's SNS deliveries to the blueprints' alert receivers go to
		// the sandbox inbox, which answers for any host name over TLS.
		moto, err := peers.StartMoto(ctx, peers.MotoOptions{Log: motoLog, CA: ca, Outbound: inbox.ProxyURL()})
		if err != nil {
			return err
		}
		defer moto.Stop()
		awsURL, awsCA = moto.URL(), moto.CAFile()
	} else {
		fmt.Fprintf(stdout, "Using the AWS emulator at %s; starting stripe-mock (Stripe) on loopback…\n", awsURL)
	}
	// mailpit receives the portal's e-mails over SMTP with STARTTLS (the
	// sandbox CA); its inbox is linked from every page.
	mailLog, err := os.OpenFile(filepath.Join(*dir, "mailpit.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	defer mailLog.Close()
	mail, err := peers.StartMailpit(ctx, peers.MailpitOptions{Log: mailLog, Database: filepath.Join(*dir, "mailpit.db"), CA: ca})
	if err != nil {
		return err
	}
	defer mail.Stop()
	stripe, err := peers.StartStripeMock(ctx, peers.StripeMockOptions{Log: stripeLog})
	if err != nil {
		return err
	}
	defer stripe.Stop()
	data := fullData
	if *small {
		data = smallData
	}
	fixture, err := startStripeFixture(data)
	if err != nil {
		return err
	}
	defer fixture.Close()

	// The portal finds AWS the standard way; these variables point the
	// default credential chain and endpoint resolution at moto.
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL":      awsURL,
		"AWS_ACCESS_KEY_ID":     "sandbox",
		"AWS_SECRET_ACCESS_KEY": "sandbox",
		"AWS_REGION":            "us-east-1",
		"STRIPE_SECRET_KEY":     peers.StripeTestKey,
		"PORTAL_STRIPE_API_URL": fixture.URL(),
		"STRIPE_WEBHOOK_SECRET": sandboxWebhookSecret,
	} {
		os.Setenv(k, v)
	}
	if awsCA != "" {
		// The AWS SDK trusts the sandbox CA, and only it, for AWS calls.
		os.Setenv("AWS_CA_BUNDLE", awsCA)
	}

	// The organization's identity provider: people sign in through it.
	fmt.Fprintln(stdout, "Starting the sandbox identity provider (OpenID Connect) on loopback…")
	idp, err := startIdentity(ctx, *dir)
	if err != nil {
		return err
	}
	defer idp.stop()

	serve := []string{"-addr", *addr, "-data-dir", filepath.Join(*dir, "data")}
	for _, f := range []struct{ name, value string }{{"db", *db}, {"secret-key-file", *keyFile}, {"audit-key-file", *auditKeyFile}, {"base-url", *baseURL}} {
		if f.value != "" {
			serve = append(serve, "-"+f.name, f.value)
		}
	}
	cfg, err := app.ParseServe(append(serve, idp.flags...))
	if err != nil {
		return err
	}
	cfg.Environments = regions.SandboxEnvironments()
	mgmt := app.SandboxManagement
	cfg.Management = &mgmt
	anchor := app.SandboxAuditAnchor
	cfg.Audit.Anchor = &anchor
	if err := ensureAnchorBucket(ctx, anchor, stdout); err != nil {
		return err
	}
	// moto cannot serve Textract text detection: verifications there are
	// incomplete (shown as such), and the sandbox lets them prove a version
	// so promotion can be tried end to end. Real AWS keeps this off.
	cfg.Promotion.AcceptUnsupported = true
	cfg.Promotion.Mail = notify.SMTPConfig{Addr: mail.SMTPAddr(), From: "Portal sandbox <portal@portal.local>", RootCAs: ca.Pool()}
	cfg.SandboxNotice = "Sandbox: AWS is moto and Stripe is a fixture server with generated data on this machine. No real accounts are touched."
	cfg.Billing.Sandbox = data.stripeNotice()
	log := app.NewLoggerTo(stderr, cfg)
	trail, err := startActivityTrail(ctx, &cfg, *dir, data.trailDays, stdout)
	if err != nil {
		return err
	}

	opts := app.Options{Sandbox: &web.Sandbox{Inbox: alertInbox{inbox}, MailURL: mail.URL()}}
	a, err := app.New(ctx, cfg, log, opts)
	if errors.Is(err, app.ErrAddrInUse) && *addr == "127.0.0.1:8080" {
		cfg.Addr = "127.0.0.1:0"
		a, err = app.New(ctx, cfg, log, opts)
	}
	if err != nil {
		return err
	}
	defer a.Close()
	defer wireActivityTrail(ctx, a, trail)()

	if err := ensureDeployerRoles(ctx, cfg); err != nil {
		return err
	}
	if err := checkAccounts(ctx, cfg, stdout); err != nil {
		return err
	}
	if err := ensureOrganization(ctx, cfg, stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nThe portal is running at %s (moto %s, stripe-mock %s, identity provider %s, data in %s). Ctrl-C stops everything.\n",
		a.URL(), awsURL, stripe.URL(), idp.provider.Issuer(), *dir)
	idp.print(stdout, a.URL(), cfg)
	if rp, err := a.Staff.Passkeys(); err == nil {
		fmt.Fprintf(stdout, "To use passkeys, open it at %s (browsers do not accept an IP address for passkeys).\n", rp.Origin)
	}
	fmt.Fprintf(stdout, "E-mails the portal sends arrive at %s; alerts the stacks' SNS topics send, on the portal's Sandbox inbox (%s/sandbox/inbox).\n",
		mail.URL(), a.URL())
	if a.FirstAdmin != nil {
		app.PrintFirstAdmin(stdout, a.URL(), *a.FirstAdmin)
	} else {
		fmt.Fprintf(stdout, "An administrator already exists in %s; sign in with your own password (or delete the folder to start afresh).\n", *dir)
	}
	err = a.Run(ctx)
	fmt.Fprintln(stdout, "Stopping the portal, moto, stripe-mock, mailpit and the identity provider.")
	return err
}

// checkAccounts assumes the deployer role in each environment's account in
// moto and prints who the portal is there.
func checkAccounts(ctx context.Context, cfg app.Config, stdout io.Writer) error {
	base, err := accounts.LoadBase(ctx)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	cat, err := regions.New(cfg.Environments)
	if err != nil {
		return err
	}
	for _, id := range accounts.New(base, cat).Check(ctx, "us-east-1") {
		if id.Err != nil {
			return id.Err
		}
		fmt.Fprintf(stdout, "  %-5s account %s as %s\n", id.Environment, id.AccountID, id.ARN)
	}
	return nil
}

// ensureAnchorBucket makes the audit account's anchor bucket in moto, with
// Object Lock in compliance mode, as whoever runs the audit account does
// once in AWS.
func ensureAnchorBucket(ctx context.Context, a app.AnchorConfig, stdout io.Writer) error {
	st, err := app.AnchorStore(ctx, a)
	if err != nil {
		return err
	}
	if err := audit.CreateAnchorBucket(ctx, st.Client.(*s3.Client), a.Bucket, a.Region, 1); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	fmt.Fprintf(stdout, "  audit account %s: the audit chain is anchored in s3://%s (Object Lock, compliance mode)\n", a.AccountID, a.Bucket)
	return nil
}

// alertInbox shows the peers' alert inbox to the portal's pages.
type alertInbox struct{ in *peers.AlertInbox }

func (a alertInbox) Since() time.Time { return a.in.Since() }

func (a alertInbox) Deliveries() []web.InboxDelivery {
	var out []web.InboxDelivery
	for _, d := range a.in.Deliveries() {
		out = append(out, web.InboxDelivery{ID: d.ID, At: d.At, URL: d.URL, Type: d.Type, TopicARN: d.TopicARN, MessageID: d.MessageID,
			Subject: d.Subject, Message: d.Message})
	}
	return out
}
