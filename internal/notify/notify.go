// Package notify tells people what needs them: pending approvals, failed
// runs, drift and failed verifications. Every notification is kept in the
// portal's own list (the database), published to the ops SNS topic of the
// stack concerned, and e-mailed through SMTP to the people who must act on
// it (Notification.To). Doctors' alert topics are never used: the topic is
// looked up by the caller-supplied Topics function, which for stacks is the
// blueprint's ops_alerts topic and nothing else.
package notify

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"portal/internal/apperr"
	"portal/internal/store"
)

// Kinds of notification.
const (
	ApprovalPending    = "approval_pending"
	RunFailed          = "run_failed"
	Drift              = "drift"
	VerificationFailed = "verification_failed"
)

// Kinds lists every kind, for filters.
func Kinds() []string {
	return []string{ApprovalPending, RunFailed, Drift, VerificationFailed}
}

// Publisher is the slice of the SNS client notify uses.
type Publisher interface {
	Publish(ctx context.Context, params *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// Topics returns the ops topic of stack and a client that reaches it. It
// returns an error saying why when the stack has no ops topic (not deployed
// yet).
type Topics func(ctx context.Context, stack string) (topicARN string, pub Publisher, err error)

// Notification is one message to ops.
type Notification struct {
	ID                     int64
	Kind, Stack            string
	Subject, Message, Link string
	// To are the e-mail addresses the notification is sent to (the people
	// who must act on it); empty sends no e-mail.
	To []string
	// TopicARN is where it was published; PublishError says why it was
	// not (the notification is still in the portal's list).
	TopicARN, MessageID, PublishError string
	CreatedAt                         time.Time
	// Emails are the e-mails sent for it, one per recipient.
	Emails []Email
}

// E-mail states.
const (
	EmailPending = "pending"
	EmailSent    = "sent"
	EmailFailed  = "failed"
)

// MaxEmailAttempts is how often an e-mail is tried before it stays failed.
const MaxEmailAttempts = 5

// Email is one e-mail of a notification.
type Email struct {
	ID       int64
	To       string
	State    string
	Attempts int
	Error    string
	SentAt   time.Time
}

// Published reports whether SNS accepted the message.
func (n Notification) Published() bool { return n.MessageID != "" }

// Service stores and publishes notifications.
type Service struct {
	db     *store.DB
	topics Topics
	log    *slog.Logger
	now    func() time.Time
	// BaseURL prefixes links in published messages and e-mails.
	BaseURL string
	// Mail sends the e-mails; nil sends none (each e-mail records why).
	Mail Mailer
}

// New returns a Service. topics may be nil (nothing is published, and the
// list says so).
func New(db *store.DB, topics Topics, log *slog.Logger, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{db: db, topics: topics, log: log, now: now}
}

// Notify stores n and publishes it to the stack's ops topic. A failure to
// publish is recorded on the notification, not returned: the portal's list
// always has it.
func (s *Service) Notify(ctx context.Context, n Notification) (Notification, error) {
	n.CreatedAt = s.now()
	if n.Kind == "" || n.Subject == "" {
		return n, fmt.Errorf("notify: kind and subject are required")
	}
	if err := s.db.QueryRowContext(ctx, `INSERT INTO notifications (kind, stack, subject, message, link, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
		n.Kind, n.Stack, n.Subject, n.Message, n.Link, store.Time(n.CreatedAt)).Scan(&n.ID); err != nil {
		return n, fmt.Errorf("notify: store: %w", err)
	}
	n.TopicARN, n.MessageID, n.PublishError = s.publish(ctx, n)
	if _, err := s.db.ExecContext(ctx, `UPDATE notifications SET topic_arn = ?, message_id = ?, publish_error = ? WHERE id = ?`,
		n.TopicARN, n.MessageID, n.PublishError, n.ID); err != nil {
		return n, fmt.Errorf("notify: record publish: %w", err)
	}
	if n.PublishError != "" {
		s.log.Warn("ops notification not published", slog.String("stack", n.Stack), slog.String("kind", n.Kind), slog.String("why", n.PublishError))
	}
	var err2 error
	n.Emails, err2 = s.email(ctx, n)
	return n, err2
}

// email records and sends one e-mail per recipient of n.
func (s *Service) email(ctx context.Context, n Notification) ([]Email, error) {
	var out []Email
	seen := map[string]bool{}
	for _, to := range n.To {
		to = strings.TrimSpace(to)
		if to == "" || seen[strings.ToLower(to)] {
			continue
		}
		seen[strings.ToLower(to)] = true
		e := Email{To: to, State: EmailPending}
		if err := s.db.QueryRowContext(ctx, `INSERT INTO notification_emails (notification_id, recipient, state, updated_at) VALUES (?, ?, 'pending', ?) RETURNING id`,
			n.ID, to, store.Time(s.now())).Scan(&e.ID); err != nil {
			return out, fmt.Errorf("notify: store e-mail: %w", err)
		}
		e = s.deliver(ctx, n, e)
		out = append(out, e)
	}
	return out, nil
}

// deliver tries e once and records the outcome.
func (s *Service) deliver(ctx context.Context, n Notification, e Email) Email {
	e.Attempts++
	var err error
	if s.Mail == nil {
		err = errNoMailer
	} else {
		err = s.Mail.Send(ctx, Mail{To: e.To, Subject: n.Subject, Text: s.emailText(n), ID: fmt.Sprintf("notification-%d-%d", n.ID, e.ID)})
	}
	if err != nil {
		e.State, e.Error = EmailFailed, err.Error()
		s.log.Warn("notification e-mail not sent", slog.Int64("notification", n.ID), slog.String("kind", n.Kind), slog.String("why", e.Error))
	} else {
		e.State, e.Error, e.SentAt = EmailSent, "", s.now()
	}
	sent := ""
	if !e.SentAt.IsZero() {
		sent = store.Time(e.SentAt)
	}
	if _, uerr := s.db.ExecContext(context.WithoutCancel(ctx), `UPDATE notification_emails SET state = ?, attempts = ?, error = ?, sent_at = ?, updated_at = ? WHERE id = ?`,
		e.State, e.Attempts, e.Error, sent, store.Time(s.now()), e.ID); uerr != nil {
		s.log.Warn("record notification e-mail", slog.String("err", uerr.Error()))
	}
	return e
}

// emailText is the body of n's e-mails.
func (s *Service) emailText(n Notification) string {
	var b strings.Builder
	b.WriteString(n.Message)
	b.WriteString("\n")
	if n.Link != "" {
		fmt.Fprintf(&b, "\nOpen it in the portal: %s%s\n", s.BaseURL, n.Link)
	}
	if n.Kind == ApprovalPending {
		fmt.Fprintf(&b, "Everything waiting for your decision: %s/approvals\n", s.BaseURL)
	}
	b.WriteString("\n-- \nThe portal. You get this e-mail because your role lets you act on it.\n")
	return b.String()
}

// RetryEmails tries again the e-mails that failed, fewer than
// MaxEmailAttempts times, at least a minute ago. The notify job runs it.
func (s *Service) RetryEmails(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `SELECT e.id, e.recipient, e.attempts, e.notification_id FROM notification_emails e
		WHERE e.state = 'failed' AND e.attempts < ? AND e.updated_at <= ? ORDER BY e.id LIMIT 100`, MaxEmailAttempts, store.Time(s.now().Add(-time.Minute)))
	if err != nil {
		return fmt.Errorf("notify: e-mails to retry: %w", err)
	}
	type retry struct {
		e  Email
		id int64
	}
	var todo []retry
	for rows.Next() {
		var r retry
		if err := rows.Scan(&r.e.ID, &r.e.To, &r.e.Attempts, &r.id); err != nil {
			rows.Close()
			return err
		}
		todo = append(todo, r)
	}
	rows.Close()
	for _, r := range todo {
		n, err := s.Get(ctx, r.id)
		if err != nil {
			return err
		}
		s.deliver(ctx, n, r.e)
	}
	return rows.Err()
}

// emails loads the e-mails of the notifications in ns.
func (s *Service) emails(ctx context.Context, ns []Notification) error {
	for i := range ns {
		rows, err := s.db.QueryContext(ctx, `SELECT id, recipient, state, attempts, error, sent_at FROM notification_emails WHERE notification_id = ? ORDER BY id`, ns[i].ID)
		if err != nil {
			return fmt.Errorf("notify: e-mails: %w", err)
		}
		for rows.Next() {
			var e Email
			var sent string
			if err := rows.Scan(&e.ID, &e.To, &e.State, &e.Attempts, &e.Error, &sent); err != nil {
				rows.Close()
				return err
			}
			if sent != "" {
				e.SentAt, _ = store.ParseTime(sent)
			}
			ns[i].Emails = append(ns[i].Emails, e)
			ns[i].To = append(ns[i].To, e.To)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) publish(ctx context.Context, n Notification) (topic, id, problem string) {
	if s.topics == nil {
		return "", "", "AWS is not configured, so nothing was published"
	}
	if n.Stack == "" {
		return "", "", "not about a stack, so there is no ops topic to publish to"
	}
	topic, pub, err := s.topics(ctx, n.Stack)
	if err != nil {
		return "", "", err.Error()
	}
	if strings.Contains(topic, "doctor") {
		// Belt and braces: ops messages never go to doctors.
		return topic, "", "refused: " + topic + " looks like a doctors' alert topic"
	}
	subject := n.Subject
	if len(subject) > 100 { // SNS limit
		subject = subject[:97] + "..."
	}
	msg := n.Message
	if n.Link != "" {
		msg += "\n\n" + s.BaseURL + n.Link
	}
	out, err := pub.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(topic), Subject: aws.String(subject), Message: aws.String(msg)})
	if err != nil {
		return topic, "", "publish failed: " + err.Error()
	}
	return topic, aws.ToString(out.MessageId), ""
}

// Filter selects notifications, newest first, keyset-paginated.
type Filter struct {
	Stack, Kind string
	BeforeID    int64
	Limit       int
}

// List returns notifications matching f and whether there are more.
func (s *Service) List(ctx context.Context, f Filter) ([]Notification, bool, error) {
	var where []string
	var args []any
	if f.Stack != "" {
		where, args = append(where, "stack = ?"), append(args, f.Stack)
	}
	if f.Kind != "" {
		where, args = append(where, "kind = ?"), append(args, f.Kind)
	}
	if f.BeforeID > 0 {
		where, args = append(where, "id < ?"), append(args, f.BeforeID)
	}
	if f.Limit <= 0 || f.Limit > 200 {
		f.Limit = 50
	}
	q := `SELECT id, kind, stack, subject, message, link, topic_arn, message_id, publish_error, created_at FROM notifications`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT ?"
	rows, err := s.db.QueryContext(ctx, q, append(args, f.Limit+1)...)
	if err != nil {
		return nil, false, fmt.Errorf("notify: list: %w", err)
	}
	defer rows.Close()
	var out []Notification
	for rows.Next() {
		n, err := scan(rows)
		if err != nil {
			return nil, false, err
		}
		out = append(out, n)
	}
	more := len(out) > f.Limit
	if more {
		out = out[:f.Limit]
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	rows.Close()
	return out, more, s.emails(ctx, out)
}

// Get returns notification id.
func (s *Service) Get(ctx context.Context, id int64) (Notification, error) {
	n, err := scan(s.db.QueryRowContext(ctx, `SELECT id, kind, stack, subject, message, link, topic_arn, message_id, publish_error, created_at FROM notifications WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return n, apperr.Wrap(apperr.NotFound, store.ErrNotFound, "no notification %d", id)
	} else if err != nil {
		return n, err
	}
	ns := []Notification{n}
	err = s.emails(ctx, ns)
	return ns[0], err
}

func scan(r interface{ Scan(...any) error }) (Notification, error) {
	var n Notification
	var at string
	if err := r.Scan(&n.ID, &n.Kind, &n.Stack, &n.Subject, &n.Message, &n.Link, &n.TopicARN, &n.MessageID, &n.PublishError, &at); err != nil {
		return n, err
	}
	n.CreatedAt, _ = store.ParseTime(at)
	return n, nil
}
