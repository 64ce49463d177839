package peers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// MailpitOptions configures StartMailpit. The zero value is ready to use.
type MailpitOptions struct {
	// Path is the mailpit executable. Empty means $PORTAL_MAILPIT, or else
	// .tools/bin/mailpit under the project root.
	Path string
	// Log receives mailpit's output. Nil discards it.
	Log io.Writer
	// Database keeps the messages in this file across restarts; empty
	// keeps them in a temporary file removed at Stop.
	Database string
	// CA signs the certificate mailpit offers with STARTTLS, which it then
	// requires of every SMTP client (as a real mail relay does). Nil
	// serves SMTP without TLS.
	CA *CA
	// StartTimeout bounds the wait until mailpit answers. Zero means 30s.
	StartTimeout time.Duration
}

// Mailpit is a running mailpit: a real SMTP server that keeps every
// message, with an inbox in the browser and a JSON API, on 127.0.0.1.
type Mailpit struct {
	smtp, web string
	dir       string
	proc      *proc
}

// StartMailpit starts mailpit on two free ports of 127.0.0.1 (SMTP and its
// web inbox) and returns once the inbox answers. A missing executable
// gives an error wrapping ErrNotInstalled.
func StartMailpit(ctx context.Context, opts MailpitOptions) (*Mailpit, error) {
	path := opts.Path
	if path == "" {
		var err error
		path, err = toolPath("PORTAL_MAILPIT", ".tools/bin/mailpit", "make tools")
		if err != nil {
			return nil, fmt.Errorf("peers: start mailpit: %w", err)
		}
	}
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	dir, err := os.MkdirTemp("", "portal-mailpit-")
	if err != nil {
		return nil, fmt.Errorf("peers: start mailpit: %w", err)
	}
	db := opts.Database
	if db == "" {
		db = filepath.Join(dir, "mailpit.db")
	}
	extra := []string{}
	if opts.CA != nil {
		_, certPEM, keyPEM, err := opts.CA.Issue("127.0.0.1", "localhost")
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "smtp.crt"), certPEM, 0o644)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "smtp.key"), keyPEM, 0o600)
		}
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("peers: start mailpit: %w", err)
		}
		extra = []string{"--smtp-tls-cert", filepath.Join(dir, "smtp.crt"), "--smtp-tls-key", filepath.Join(dir, "smtp.key"), "--smtp-require-starttls"}
	}
	p, ports, err := startProc(ctx, spec{
		name:  "mailpit",
		path:  path,
		ports: 2,
		args: func(ports []int) []string {
			return append([]string{"--smtp", hostPort(ports[0]), "--listen", hostPort(ports[1]), "--database", db,
				"--disable-version-check", "--smtp-disable-rdns", "--smtp-auth-accept-any", "--quiet",
				"--label", "Portal sandbox"}, extra...)
		},
		ready:   func(ports []int) string { return "http://" + hostPort(ports[1]) + "/livez" },
		out:     opts.Log,
		timeout: timeout,
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("peers: start mailpit: %w", err)
	}
	return &Mailpit{smtp: hostPort(ports[0]), web: "http://" + hostPort(ports[1]), dir: dir, proc: p}, nil
}

// SMTPAddr returns the SMTP server's address, e.g. "127.0.0.1:41236".
func (m *Mailpit) SMTPAddr() string { return m.smtp }

// URL returns the web inbox's base URL, e.g. "http://127.0.0.1:41237".
func (m *Mailpit) URL() string { return m.web }

// Stop kills mailpit and removes its temporary files. It is idempotent.
func (m *Mailpit) Stop() error {
	err := m.proc.stop()
	os.RemoveAll(m.dir)
	if err != nil {
		return fmt.Errorf("peers: stop mailpit: %w", err)
	}
	return nil
}

// MailAddress is a sender or recipient in mailpit's API.
type MailAddress struct {
	Name    string `json:"Name"`
	Address string `json:"Address"`
}

// MailMessage is a message as mailpit's API lists it, with its text body
// once read with Message.
type MailMessage struct {
	ID      string        `json:"ID"`
	From    MailAddress   `json:"From"`
	To      []MailAddress `json:"To"`
	Subject string        `json:"Subject"`
	Snippet string        `json:"Snippet"`
	Created time.Time     `json:"Created"`
	Text    string        `json:"Text"`
}

// Search returns the messages matching a mailpit search query (such as
// `to:ada@example.com subject:"Approval needed"`), newest first.
func (m *Mailpit) Search(ctx context.Context, query string) ([]MailMessage, error) {
	var out struct {
		Messages []MailMessage `json:"messages"`
	}
	if err := m.get(ctx, "/api/v1/search?limit=200&query="+url.QueryEscape(query), &out); err != nil {
		return nil, err
	}
	return out.Messages, nil
}

// Message returns one message with its text body.
func (m *Mailpit) Message(ctx context.Context, id string) (MailMessage, error) {
	var out MailMessage
	err := m.get(ctx, "/api/v1/message/"+url.PathEscape(id), &out)
	return out, err
}

// WaitFor returns the newest message matching query, waiting for one to
// arrive until ctx ends.
func (m *Mailpit) WaitFor(ctx context.Context, query string) (MailMessage, error) {
	for {
		msgs, err := m.Search(ctx, query)
		if err == nil && len(msgs) > 0 {
			return m.Message(ctx, msgs[0].ID)
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			return MailMessage{}, fmt.Errorf("peers: mailpit: no message matching %s: %w", strconv.Quote(query), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (m *Mailpit) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.web+path, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("peers: mailpit: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return fmt.Errorf("peers: mailpit: GET %s: %s: %s", path, res.Status, b)
	}
	return json.NewDecoder(res.Body).Decode(out)
}
