package app

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sns"

	"portal/internal/audit"
	"portal/internal/notify"
	"portal/internal/staff"
	"portal/internal/verify"
	"portal/internal/workflows"
)

// PromotionConfig is how promotion, approvals, drift detection and
// verification behave.
type PromotionConfig struct {
	// Approvals is who must approve prod applies and destroys.
	Approvals workflows.ApprovalPolicy
	// DriftInterval is how often every deployed stack is checked for
	// drift; 0 turns the schedule off.
	DriftInterval time.Duration
	// AcceptUnsupported lets verifications whose only gaps are steps the
	// endpoint cannot serve prove a version (the local sandbox).
	AcceptUnsupported bool
	// Mail is the SMTP server notifications are e-mailed through; its
	// zero value sends none.
	Mail notify.SMTPConfig
}

// promotionFlags declares the promotion flags on fs and returns a function
// that, after parsing, builds the PromotionConfig.
func promotionFlags(fs *flag.FlagSet) func() (PromotionConfig, error) {
	approvers := fs.String("approvers", "ops|admin", "who approves prod applies and destroys: one approver per comma-separated slot, each holding one of its |-separated roles (ops|admin: one holding ops or admin; ops,admin: one ops AND one admin)")
	expiry := fs.Duration("approval-expiry", 24*time.Hour, "how long an approval stays valid")
	drift := fs.Duration("drift-interval", time.Hour, "how often every deployed stack is planned to detect drift (0 turns it off)")
	accept := fs.Bool("verify-accept-unsupported", false, "let a verification whose only gaps are steps the AWS endpoint cannot serve (Textract on a local emulator) count as proof for promotion")
	smtpAddr := fs.String("smtp-addr", "", "SMTP server (host:port) that e-mails approval requests, failed verifications and drift to the people who act on them; empty sends no e-mail")
	smtpFrom := fs.String("smtp-from", "Portal <portal@portal.local>", "sender of the portal's e-mails")
	smtpTLS := fs.String("smtp-tls", notify.TLSStartTLS, "SMTP encryption: starttls (required, port 587), tls (port 465) or none (loopback only)")
	smtpUser := fs.String("smtp-username", "", "SMTP user name (PLAIN authentication over TLS); empty for none")
	smtpPassFile := fs.String("smtp-password-file", "", "file holding the SMTP password (default: the SMTP_PASSWORD environment variable)")
	smtpCA := fs.String("smtp-ca-file", "", "PEM file of the only CAs trusted for the SMTP server's certificate (a private CA); default the system's")
	return func() (PromotionConfig, error) {
		slots, err := workflows.ParseApprovalSlots(*approvers)
		if err != nil {
			return PromotionConfig{}, fmt.Errorf("-approvers: %w", err)
		}
		if *expiry < time.Minute {
			return PromotionConfig{}, fmt.Errorf("-approval-expiry: want at least 1m, got %s", *expiry)
		}
		if *drift != 0 && *drift < time.Minute {
			return PromotionConfig{}, fmt.Errorf("-drift-interval: want 0 (off) or at least 1m, got %s", *drift)
		}
		mail := notify.SMTPConfig{Addr: *smtpAddr, From: *smtpFrom, TLS: *smtpTLS, Username: *smtpUser}
		if *smtpAddr != "" {
			pass, err := notify.LoadPassword("SMTP_PASSWORD", *smtpPassFile)
			if err != nil {
				return PromotionConfig{}, fmt.Errorf("-smtp-password-file: %w", err)
			}
			mail.SetPassword(pass)
			if *smtpCA != "" {
				if mail.RootCAs, err = notify.LoadCAs(*smtpCA); err != nil {
					return PromotionConfig{}, fmt.Errorf("-smtp-ca-file: %w", err)
				}
			}
		}
		if err := mail.Validate(); err != nil {
			return PromotionConfig{}, fmt.Errorf("-smtp-*: %w", err)
		}
		return PromotionConfig{Approvals: workflows.ApprovalPolicy{Slots: slots, Expiry: *expiry}, DriftInterval: *drift, AcceptUnsupported: *accept, Mail: mail}, nil
	}
}

// wirePromotion gives the workflows their database, notifications,
// verifier and policy, hooks verification to finished runs and registers
// the scheduled jobs (leases in the database: one replica runs each).
func (a *App) wirePromotion(e *Estate, now func() time.Time) error {
	wf := e.Workflows
	topics := func(ctx context.Context, stack string) (string, notify.Publisher, error) {
		st, ok := e.Catalogue.Stack(stack)
		if !ok {
			return "", nil, fmt.Errorf("no stack %q", stack)
		}
		res, err := e.Engine.Resources(ctx, stack)
		if err != nil {
			return "", nil, err
		}
		for _, r := range res {
			// Only the blueprint's ops topic: never doctor_alerts.
			if r.ID == "ops_alerts" && r.Type == "sns_topic" {
				arn := r.Outputs["arn"]
				if arn == "" {
					arn = r.PhysicalID
				}
				cfg, err := e.Accounts.Config(st.Environment.Name, r.Region)
				if err != nil {
					return "", nil, err
				}
				return arn, sns.NewFromConfig(cfg), nil
			}
		}
		return "", nil, fmt.Errorf("%s has no ops_alerts topic yet: deploy the stack first", stack)
	}
	n := notify.New(a.DB, topics, a.log, now)
	if m := a.cfg.Promotion.Mail; m.Addr != "" {
		host := "portal.local"
		if u, err := url.Parse(a.cfg.BaseURL); err == nil && u.Hostname() != "" {
			host = u.Hostname()
		}
		n.Mail = notify.SMTP{Config: m, Hostname: host}
		a.log.Info("notifications are e-mailed", slog.String("smtp", m.String()))
	}
	v, err := verify.New()
	if err != nil {
		return err
	}
	wf.DB, wf.Audit, wf.Notify, wf.Log, wf.Now = a.DB, a.Audit, n, a.log, now
	wf.Verifier = verify.Stacks{Verifier: v, Config: e.Accounts.Config}
	wf.Approvals = a.cfg.Promotion.Approvals
	wf.AcceptUnsupported = a.cfg.Promotion.AcceptUnsupported
	wf.People = staffPeople{a.Staff}
	e.Engine.OnFinish = wf.AfterRun
	e.Engine.BeforeRun = wf.BeforeRun

	if d := a.cfg.Promotion.DriftInterval; d > 0 {
		a.Jobs.Every("drift-check", d, func(ctx context.Context) error {
			checked, drifted, err := wf.CheckAllDrift(ctx, audit.Entry{Actor: "system"})
			a.log.Info("drift check", slog.Int("checked", checked), slog.Int("drifted", drifted))
			return err
		})
	}
	a.Jobs.Every("verify-pending", 5*time.Minute, wf.VerifyPending)
	a.Jobs.Every("notify-email-retry", time.Minute, n.RetryEmails)
	a.Jobs.Every("rollout-advance", 3*time.Second, wf.AdvanceRollOuts)
	return nil
}

// staffPeople tells the workflows who holds which roles now.
type staffPeople struct{ s *staff.Service }

func person(u staff.User) workflows.Person {
	p := workflows.Person{ID: u.ID, Email: u.Email, Name: u.Name, Active: !u.Disabled}
	for _, r := range u.Roles {
		p.Roles = append(p.Roles, string(r))
	}
	return p
}

func (p staffPeople) Person(ctx context.Context, id int64) (workflows.Person, error) {
	u, err := p.s.Get(ctx, id)
	if err != nil {
		return workflows.Person{}, err
	}
	return person(u), nil
}

func (p staffPeople) WithRoles(ctx context.Context, roles ...string) ([]workflows.Person, error) {
	users, err := p.s.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []workflows.Person
	for _, u := range users {
		for _, r := range roles {
			if !u.Disabled && u.Has(staff.Role(r)) {
				out = append(out, person(u))
				break
			}
		}
	}
	return out, nil
}
