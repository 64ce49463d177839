package web

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"portal/internal/notify"
	"portal/web/templates"
)

func (s *Server) notificationsList(c echo.Context) error {
	v := templates.NotificationsView{Kinds: notify.Kinds(), Stacks: s.deps.Stacks, Kind: c.QueryParam("kind"), Stack: c.QueryParam("stack")}
	wf := s.deps.Workflows
	if wf == nil || wf.Notify == nil {
		return s.render(c, http.StatusOK, templates.NotificationsPage(s.page(c, "Notifications", "promotions"), v))
	}
	f := notify.Filter{Kind: v.Kind, Stack: v.Stack, Limit: 50}
	if b := c.QueryParam("before"); b != "" {
		f.BeforeID, _ = strconv.ParseInt(b, 10, 64)
	}
	ns, more, err := wf.Notify.List(c.Request().Context(), f)
	if err != nil {
		return err
	}
	for _, n := range ns {
		row := templates.NotificationRow{ID: n.ID, Kind: n.Kind, Stack: n.Stack, Subject: n.Subject, Message: n.Message, Link: n.Link,
			TopicARN: n.TopicARN, PublishError: n.PublishError, Published: n.Published(), CreatedAt: n.CreatedAt}
		for _, e := range n.Emails {
			row.Emails = append(row.Emails, templates.EmailRow{To: e.To, State: e.State, Error: e.Error})
		}
		v.Rows = append(v.Rows, row)
	}
	if more && len(ns) > 0 {
		q := c.QueryParams()
		q.Set("before", itoa(ns[len(ns)-1].ID))
		v.NextURL = "/notifications?" + q.Encode()
	}
	return s.render(c, http.StatusOK, templates.NotificationsPage(s.page(c, "Notifications", "promotions"), v))
}
