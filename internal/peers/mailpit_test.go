package peers_test

import (
	"context"
	"net/smtp"
	"strings"
	"testing"
	"time"

	"portal/internal/peers/peertest"
)

// TestMailpit sends a message to mailpit over SMTP with STARTTLS (trusting
// the sandbox CA only) and finds it through mailpit's API; a client that
// does not start TLS is refused.
func TestMailpit(t *testing.T) {
	t.Parallel()
	mp := peertest.MailpitForTest(t)
	to := "ada.mailpit-test@example.com"
	c, err := smtp.Dial(mp.SMTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("portal@portal.local"); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("MAIL FROM before STARTTLS: got %v, want a refusal asking for STARTTLS", err)
	}
	c.Close()

	c, err = smtp.Dial(mp.SMTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := peertest.CAForTest(t).ClientTLS()
	cfg.ServerName = "127.0.0.1"
	if err := c.StartTLS(cfg); err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	if err := c.Mail("portal@portal.local"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(to); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte("From: portal@portal.local\r\nTo: " + to + "\r\nSubject: Approval needed\r\n\r\nPlan #1 waits for you.\r\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_ = c.Quit()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg, err := mp.WaitFor(ctx, "to:"+to)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Subject != "Approval needed" || !strings.Contains(msg.Text, "Plan #1 waits for you.") {
		t.Errorf("message: got subject %q text %q", msg.Subject, msg.Text)
	}
}
