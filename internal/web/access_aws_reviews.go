package web

import (
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"portal/internal/access"
	"portal/internal/apperr"
	"portal/web/templates"
)

const reviewsPerPage = 25

func reviewRow(r access.Review, people *actors) templates.AWSReviewRow {
	return templates.AWSReviewRow{ID: r.ID, Title: r.Title, OpenedBy: people.view(r.OpenedBy), OpenedAt: r.OpenedAt, ClosedAt: r.ClosedAt,
		Items: r.Items, Decided: r.Decided, Revoke: r.Revoke}
}

func (s *Server) awsReviews(c echo.Context) error {
	return s.renderAWSReviews(c, http.StatusOK, nil)
}

func (s *Server) renderAWSReviews(c echo.Context, status int, errs map[string]string) error {
	p := s.page(c, "Access reviews", "access")
	v := templates.AWSReviewsView{IsAdmin: isAdmin(c), Errors: errs}
	if s.deps.Access != nil {
		before, _ := strconv.ParseInt(c.QueryParam("before"), 10, 64)
		rs, err := s.deps.Access.Reviews(c.Request().Context(), before, reviewsPerPage+1)
		if err != nil {
			return err
		}
		if len(rs) > reviewsPerPage {
			rs = rs[:reviewsPerPage]
			v.NextPage = "/access/aws/reviews?before=" + itoa(rs[len(rs)-1].ID)
		}
		people := s.actors(c)
		for _, r := range rs {
			v.Reviews = append(v.Reviews, reviewRow(r, people))
		}
	}
	return s.render(c, status, templates.AWSReviews(p, v))
}

func (s *Server) awsReviewOpen(c echo.Context) error {
	if s.deps.Access == nil {
		return apperr.New(apperr.Conflict, "no AWS accounts are configured")
	}
	id, err := s.deps.Access.OpenReview(c.Request().Context(), awsActor(c), c.FormValue("title"))
	if apperr.KindOf(err) == apperr.Invalid {
		return s.renderAWSReviews(c, http.StatusBadRequest, apperr.FieldsOf(err))
	} else if err != nil {
		return err
	}
	s.flash(c, "Review opened: decide keep or revoke for each grant, then close it.")
	return c.Redirect(http.StatusSeeOther, "/access/aws/reviews/"+itoa(id))
}

func (s *Server) awsReview(c echo.Context) error {
	return s.renderAWSReview(c, http.StatusOK, "")
}

// renderAWSReview shows review :id; problem, when set, says why the last
// action was refused, and the undecided grants are marked.
func (s *Server) renderAWSReview(c echo.Context, status int, problem string) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	if s.deps.Access == nil {
		return apperr.New(apperr.NotFound, "no access review %d", id)
	}
	r, items, err := s.deps.Access.GetReview(c.Request().Context(), id)
	if err != nil {
		return err
	}
	people := s.actors(c)
	v := templates.AWSReviewView{IsAdmin: isAdmin(c), Review: reviewRow(r, people), Problem: problem}
	for _, it := range items {
		v.Items = append(v.Items, templates.AWSReviewItemRow{ID: it.ID, GrantID: it.GrantID, Email: it.UserEmail, PortalRoles: it.PortalRoles,
			Environment: it.Environment, Role: it.Role, Kind: it.Kind, Principal: it.Principal, GrantedAt: it.GrantedAt, ExpiresAt: it.ExpiresAt,
			LastUsed: it.LastUsed, Decision: it.Decision, DecidedBy: people.view(it.DecidedBy), Note: it.Note})
	}
	return s.render(c, status, templates.AWSReview(s.page(c, r.Title, "access"), v))
}

func (s *Server) awsReviewDecide(c echo.Context) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	item, err := paramID(c, "item")
	if err != nil {
		return err
	}
	if s.deps.Access == nil {
		return apperr.New(apperr.NotFound, "no access review %d", id)
	}
	if err := s.deps.Access.DecideItem(c.Request().Context(), awsActor(c), id, item, c.FormValue("decision"), c.FormValue("note")); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/access/aws/reviews/"+itoa(id))
}

func (s *Server) awsReviewClose(c echo.Context) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	if s.deps.Access == nil {
		return apperr.New(apperr.NotFound, "no access review %d", id)
	}
	if err := s.deps.Access.CloseReview(c.Request().Context(), awsActor(c), id); apperr.KindOf(err) == apperr.Conflict {
		// Undecided grants (or a review closed meanwhile): the review
		// itself, with the reason on top and the undecided rows marked.
		return s.renderAWSReview(c, http.StatusConflict, apperr.MessageOf(err))
	} else if err != nil {
		return err
	}
	s.flash(c, fmt.Sprintf("Review %d closed. Export it as CSV for your evidence.", id))
	return c.Redirect(http.StatusSeeOther, "/access/aws/reviews/"+itoa(id))
}

func (s *Server) awsReviewExport(c echo.Context) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	if s.deps.Access == nil {
		return apperr.New(apperr.NotFound, "no access review %d", id)
	}
	r, items, err := s.deps.Access.GetReview(c.Request().Context(), id)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="access-review-%d.csv"`, id))
	c.Response().WriteHeader(http.StatusOK)
	return s.auditedExport(c, "access_review", "csv", true, func(w io.Writer) error { return access.WriteReviewCSV(w, r, items) })
}
