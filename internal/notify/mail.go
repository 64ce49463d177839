package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"os"
	"strings"
	"time"
)

// TLS modes of the SMTP connection.
const (
	// TLSStartTLS connects in plain text and upgrades with STARTTLS,
	// which it requires (port 587).
	TLSStartTLS = "starttls"
	// TLSImplicit speaks TLS from the first byte (port 465).
	TLSImplicit = "tls"
	// TLSNone sends in plain text: only to a server on loopback.
	TLSNone = "none"
)

// SMTPConfig is where e-mail goes. The zero value sends none.
type SMTPConfig struct {
	// Addr is the server, host:port; empty sends no e-mail.
	Addr string
	// From is the sender, e.g. "Portal <portal@example.com>".
	From string
	// TLS is TLSStartTLS (default), TLSImplicit or TLSNone.
	TLS string
	// RootCAs, when set, are the only CAs trusted for the server's
	// certificate (a private CA); nil uses the system's.
	RootCAs *x509.CertPool
	// Username and password authenticate (PLAIN) when Username is set.
	Username string
	password string
	// Timeout bounds one message's delivery; zero means 15s.
	Timeout time.Duration
}

// SetPassword sets the password, which String never shows.
func (c *SMTPConfig) SetPassword(p string) { c.password = strings.TrimSpace(p) }

// String describes the configuration without its password.
func (c SMTPConfig) String() string {
	if c.Addr == "" {
		return "no e-mail"
	}
	auth := "no authentication"
	if c.Username != "" {
		auth = "as " + c.Username + " (password [redacted])"
	}
	return fmt.Sprintf("SMTP %s (%s) from %s, %s", c.Addr, c.tlsMode(), c.From, auth)
}

func (c SMTPConfig) tlsMode() string {
	if c.TLS == "" {
		return TLSStartTLS
	}
	return c.TLS
}

// LoadPassword reads the SMTP password from file, or from the environment
// variable env when file is empty.
func LoadPassword(env, file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("notify: read SMTP password file %s: %w", file, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return os.Getenv(env), nil
}

// LoadCAs reads a PEM file of CA certificates into a pool of its own.
func LoadCAs(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("notify: read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("notify: %s holds no PEM certificate", file)
	}
	return pool, nil
}

// Validate checks the configuration: an address with a port, a sender
// address, a known TLS mode, plain text only to loopback.
func (c SMTPConfig) Validate() error {
	if c.Addr == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("SMTP address %q: want host:port, e.g. smtp.example.com:587", c.Addr)
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		return fmt.Errorf("SMTP sender %q: not an e-mail address (%v)", c.From, err)
	}
	switch c.tlsMode() {
	case TLSStartTLS, TLSImplicit:
	case TLSNone:
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("SMTP without TLS is allowed only to a server on loopback, not %s", host)
		}
	default:
		return fmt.Errorf("SMTP TLS mode %q: want starttls, tls or none", c.TLS)
	}
	return nil
}

// Mail is one e-mail to one recipient.
type Mail struct {
	To, Subject, Text string
	// ID makes the Message-ID (the notification and recipient).
	ID string
}

// Mailer sends e-mail.
type Mailer interface {
	Send(ctx context.Context, m Mail) error
}

// SMTP sends e-mail through an SMTP server.
type SMTP struct {
	Config SMTPConfig
	// Hostname names this portal in HELO and Message-IDs.
	Hostname string
}

// Send delivers m, refusing to go on without TLS unless the configuration
// says none.
func (s SMTP) Send(ctx context.Context, m Mail) error {
	c := s.Config
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 15 * time.Second
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	host, _, _ := net.SplitHostPort(c.Addr)
	tlsConf := &tls.Config{ServerName: host, RootCAs: c.RootCAs, MinVersion: tls.VersionTLS12}
	d := net.Dialer{Deadline: deadline}
	var conn net.Conn
	var err error
	if c.tlsMode() == TLSImplicit {
		conn, err = tls.DialWithDialer(&d, "tcp", c.Addr, tlsConf)
	} else {
		conn, err = d.DialContext(ctx, "tcp", c.Addr)
	}
	if err != nil {
		return fmt.Errorf("connect to %s: %w", c.Addr, err)
	}
	_ = conn.SetDeadline(deadline)
	cl, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("SMTP greeting from %s: %w", c.Addr, err)
	}
	defer cl.Close()
	if s.Hostname != "" {
		if err := cl.Hello(s.Hostname); err != nil {
			return fmt.Errorf("SMTP HELO: %w", err)
		}
	}
	if c.tlsMode() == TLSStartTLS {
		if ok, _ := cl.Extension("STARTTLS"); !ok {
			return fmt.Errorf("%s does not offer STARTTLS, and e-mail is never sent in plain text to a remote server", c.Addr)
		}
		if err := cl.StartTLS(tlsConf); err != nil {
			return fmt.Errorf("STARTTLS with %s: %w", c.Addr, err)
		}
	}
	if c.Username != "" {
		if err := cl.Auth(smtp.PlainAuth("", c.Username, c.password, host)); err != nil {
			return fmt.Errorf("SMTP authentication as %s: %w", c.Username, err)
		}
	}
	from, err := mail.ParseAddress(c.From)
	if err != nil {
		return fmt.Errorf("SMTP sender %q: %w", c.From, err)
	}
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return fmt.Errorf("recipient %q: %w", m.To, err)
	}
	if err := cl.Mail(from.Address); err != nil {
		return fmt.Errorf("SMTP MAIL FROM: %w", err)
	}
	if err := cl.Rcpt(to.Address); err != nil {
		return fmt.Errorf("SMTP RCPT TO %s: %w", to.Address, err)
	}
	w, err := cl.Data()
	if err != nil {
		return fmt.Errorf("SMTP DATA: %w", err)
	}
	if _, err := w.Write(s.message(from, to, m)); err != nil {
		return fmt.Errorf("SMTP DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("SMTP DATA: %w", err)
	}
	return cl.Quit()
}

// message renders m as a plain-text MIME message.
func (s SMTP) message(from, to *mail.Address, m Mail) []byte {
	var b bytes.Buffer
	host := s.Hostname
	if host == "" {
		host = "portal.local"
	}
	id := m.ID
	if id == "" {
		r := make([]byte, 8)
		_, _ = rand.Read(r)
		id = hex.EncodeToString(r)
	}
	h := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	h("From", from.String())
	h("To", to.String())
	h("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	h("Date", time.Now().UTC().Format(time.RFC1123Z))
	h("Message-ID", "<"+id+"@"+host+">")
	h("Auto-Submitted", "auto-generated")
	h("MIME-Version", "1.0")
	h("Content-Type", `text/plain; charset="utf-8"`)
	h("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(strings.ReplaceAll(m.Text, "\n", "\r\n")))
	_ = qp.Close()
	return b.Bytes()
}

// errNoMailer says e-mail is not configured.
var errNoMailer = errors.New("e-mail is not configured (-smtp-addr), so nothing was sent")
