package web

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/web/templates"
)

// Sandbox is what only the local sandbox has: the alert inbox that stands
// in for the blueprints' SNS subscribers, and the mail server's inbox.
type Sandbox struct {
	// Inbox lists what moto delivered to the blueprints' http(s)
	// subscribers (the doctors' and ops alert receivers).
	Inbox SandboxInbox
	// MailURL is the web inbox of the sandbox's mail server (mailpit),
	// where the portal's e-mails arrive.
	MailURL string
}

// SandboxInbox is the sandbox's alert inbox.
type SandboxInbox interface {
	Deliveries() []InboxDelivery
	Since() time.Time
}

// InboxDelivery is one SNS delivery the alert inbox received.
type InboxDelivery struct {
	ID        int64
	At        time.Time
	URL       string
	Type      string
	TopicARN  string
	MessageID string
	Subject   string
	Message   string
}

func (s *Server) sandboxInbox(c echo.Context) error {
	sb := s.deps.Sandbox
	if sb == nil || sb.Inbox == nil {
		return apperr.New(apperr.NotFound, "there is no sandbox inbox: this portal talks to real AWS, whose SNS topics deliver to their real subscribers")
	}
	v := templates.SandboxInboxView{Since: sb.Inbox.Since(), MailURL: sb.MailURL, Topic: c.QueryParam("topic")}
	for _, d := range sb.Inbox.Deliveries() {
		if v.Topic != "" && d.TopicARN != v.Topic {
			continue
		}
		v.Rows = append(v.Rows, templates.InboxRow{ID: d.ID, At: d.At, URL: d.URL, Type: d.Type, TopicARN: d.TopicARN, MessageID: d.MessageID,
			Subject: d.Subject, Message: d.Message})
	}
	return s.render(c, http.StatusOK, templates.SandboxInboxPage(s.page(c, "Sandbox inbox", ""), v))
}
