// Package notify tells ops what needs them: pending approvals, failed runs,
// drift and failed verifications. Every notification is kept in the
// portal's own list (the database) and published to the ops SNS topic of
// the stack concerned. Doctors' alert topics are never used: the topic is
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
	// TopicARN is where it was published; PublishError says why it was
	// not (the notification is still in the portal's list).
	TopicARN, MessageID, PublishError string
	CreatedAt                         time.Time
}

// Published reports whether SNS accepted the message.
func (n Notification) Published() bool { return n.MessageID != "" }

// Service stores and publishes notifications.
type Service struct {
	db     *store.DB
	topics Topics
	log    *slog.Logger
	now    func() time.Time
	// BaseURL prefixes links in published messages.
	BaseURL string
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
	res, err := s.db.ExecContext(ctx, `INSERT INTO notifications (kind, stack, subject, message, link, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		n.Kind, n.Stack, n.Subject, n.Message, n.Link, store.Time(n.CreatedAt))
	if err != nil {
		return n, fmt.Errorf("notify: store: %w", err)
	}
	n.ID, _ = res.LastInsertId()
	n.TopicARN, n.MessageID, n.PublishError = s.publish(ctx, n)
	if _, err := s.db.ExecContext(ctx, `UPDATE notifications SET topic_arn = ?, message_id = ?, publish_error = ? WHERE id = ?`,
		n.TopicARN, n.MessageID, n.PublishError, n.ID); err != nil {
		return n, fmt.Errorf("notify: record publish: %w", err)
	}
	if n.PublishError != "" {
		s.log.Warn("ops notification not published", slog.String("stack", n.Stack), slog.String("kind", n.Kind), slog.String("why", n.PublishError))
	}
	return n, nil
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
	return out, more, rows.Err()
}

// Get returns notification id.
func (s *Service) Get(ctx context.Context, id int64) (Notification, error) {
	n, err := scan(s.db.QueryRowContext(ctx, `SELECT id, kind, stack, subject, message, link, topic_arn, message_id, publish_error, created_at FROM notifications WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return n, apperr.Wrap(apperr.NotFound, store.ErrNotFound, "no notification %d", id)
	}
	return n, err
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
