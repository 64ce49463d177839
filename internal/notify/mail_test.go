package notify_test

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"portal/internal/notify"
	"portal/internal/peers/peertest"
	"portal/internal/store"
)

// TestNotificationsAreEmailed sends a notification's e-mails through a real
// SMTP server (mailpit, STARTTLS with the sandbox CA), one per recipient
// with the link into the portal; a delivery that fails is recorded with
// the reason and sent by the retry once the server answers.
func TestNotificationsAreEmailed(t *testing.T) {
	ctx := context.Background()
	mp := peertest.MailpitForTest(t)
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "portal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now().UTC()
	clock := func() time.Time { return now }
	cfg := notify.SMTPConfig{Addr: mp.SMTPAddr(), From: "Portal <portal@portal.local>", RootCAs: peertest.CAForTest(t).Pool()}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	svc := notify.New(db, nil, nil, clock)
	svc.BaseURL = "https://portal.example.com"
	svc.Mail = notify.SMTP{Config: cfg, Hostname: "portal.example.com"}
	ada, bob := "ada.notify-test@example.com", "bob.notify-test@example.com"
	n, err := svc.Notify(ctx, notify.Notification{Kind: notify.ApprovalPending, Stack: "prod-eu", Subject: "Approval needed: apply prod-eu (plan #7)",
		Message: "Olga planned to apply prod-eu. It needs one approver holding ops or admin.", Link: "/plans/7", To: []string{ada, bob, ada}})
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Emails) != 2 || n.Emails[0].State != notify.EmailSent || n.Emails[1].State != notify.EmailSent {
		t.Fatalf("e-mails: got %+v, want two sent", n.Emails)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, to := range []string{ada, bob} {
		msg, err := mp.WaitFor(wctx, "to:"+to)
		if err != nil {
			t.Fatal(err)
		}
		if msg.Subject != "Approval needed: apply prod-eu (plan #7)" || len(msg.To) != 1 || msg.To[0].Address != to {
			t.Errorf("e-mail to %s: got subject %q to %+v", to, msg.Subject, msg.To)
		}
		for _, want := range []string{"Olga planned to apply prod-eu.", "https://portal.example.com/plans/7", "https://portal.example.com/approvals"} {
			if !strings.Contains(msg.Text, want) {
				t.Errorf("e-mail to %s: text %q lacks %q", to, msg.Text, want)
			}
		}
	}
	got, err := svc.Get(ctx, n.ID)
	if err != nil || len(got.Emails) != 2 || got.Emails[1].To != bob || got.Emails[1].SentAt.IsZero() {
		t.Errorf("stored e-mails: got %+v, %v", got.Emails, err)
	}

	// A server that is down: the e-mail is kept as failed with the reason,
	// and the retry sends it once the server answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()
	svc.Mail = notify.SMTP{Config: notify.SMTPConfig{Addr: down, From: "portal@portal.local", RootCAs: cfg.RootCAs}}
	carol := "carol.notify-test@example.com"
	n2, err := svc.Notify(ctx, notify.Notification{Kind: notify.Drift, Stack: "dev-eu", Subject: "Drift in dev-eu", Message: "db_sg changed", Link: "/drift/3", To: []string{carol}})
	if err != nil {
		t.Fatal(err)
	}
	if e := n2.Emails[0]; e.State != notify.EmailFailed || !strings.Contains(e.Error, "connect to "+down) {
		t.Fatalf("e-mail to a server that is down: got %+v, want failed naming the server", e)
	}
	svc.Mail = notify.SMTP{Config: cfg}
	now = now.Add(2 * time.Minute)
	if err := svc.RetryEmails(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := mp.WaitFor(wctx, "to:"+carol); err != nil {
		t.Fatal(err)
	}
	if got, _ := svc.Get(ctx, n2.ID); got.Emails[0].State != notify.EmailSent || got.Emails[0].Attempts != 2 {
		t.Errorf("after the retry: got %+v, want sent on the second attempt", got.Emails[0])
	}
}

func TestSMTPConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  notify.SMTPConfig
		want string
	}{
		{notify.SMTPConfig{}, ""},
		{notify.SMTPConfig{Addr: "smtp.example.com:587", From: "Portal <portal@example.com>"}, ""},
		{notify.SMTPConfig{Addr: "smtp.example.com", From: "portal@example.com"}, "want host:port"},
		{notify.SMTPConfig{Addr: "smtp.example.com:587", From: "portal"}, "not an e-mail address"},
		{notify.SMTPConfig{Addr: "smtp.example.com:25", From: "portal@example.com", TLS: notify.TLSNone}, "only to a server on loopback"},
		{notify.SMTPConfig{Addr: "127.0.0.1:1025", From: "portal@example.com", TLS: notify.TLSNone}, ""},
		{notify.SMTPConfig{Addr: "smtp.example.com:587", From: "portal@example.com", TLS: "ssl"}, "want starttls, tls or none"},
	} {
		err := tc.cfg.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Validate(%+v): got %v, want %q", tc.cfg, err, tc.want)
		}
	}
	c := notify.SMTPConfig{Addr: "smtp.example.com:587", From: "portal@example.com", Username: "portal"}
	c.SetPassword("hunter2")
	if s := c.String(); strings.Contains(s, "hunter2") || !strings.Contains(s, "[redacted]") {
		t.Errorf("String(): got %q, want the password redacted", s)
	}
}
