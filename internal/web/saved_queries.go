package web

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"portal/internal/activity"
	"portal/internal/apperr"
	"portal/web/templates"
)

// savedQueries is the saved-searches strip of page for the signed-in
// person, with the current query string offered for saving.
func (s *Server) savedQueries(c echo.Context, page string, q url.Values) (templates.SavedQueriesView, error) {
	v := templates.SavedQueriesView{Page: page}
	cur := url.Values{}
	for k, vs := range q {
		if k != "before" && !(page == activity.PageSensitive && k == "sensitive") {
			cur[k] = vs
		}
	}
	v.Query = cur.Encode()
	u := currentUser(c)
	if u == nil || s.deps.Activity == nil {
		return v, nil
	}
	list, err := s.deps.Activity.SavedQueries(c.Request().Context(), page, u.ID)
	if err != nil {
		return v, err
	}
	a := s.actors(c)
	for _, sq := range list {
		row := templates.SavedQueryRow{ID: sq.ID, Name: sq.Name, URL: sq.URL(), Shared: sq.Shared, Mine: sq.OwnerID == u.ID,
			Current: sq.Query == v.Query}
		if !row.Mine {
			owner := a.view(sq.Owner)
			row.Owner = &owner
		}
		v.Items = append(v.Items, row)
	}
	return v, nil
}

// savedQueryPages are the pages whose searches can be saved, with the route
// whose access the saving needs.
var savedQueryPages = map[string]string{
	activity.PageExplorer:  "/activity",
	activity.PageSensitive: "/activity/sensitive",
	activity.PageAudit:     "/audit",
}

// savedQueryCreate saves the search of a page under a name (POST
// /saved-searches: page, name, query, shared) and goes back to it.
func (s *Server) savedQueryCreate(c echo.Context) error {
	svc, err := s.activityService()
	if err != nil {
		return err
	}
	u := currentUser(c)
	page := c.FormValue("page")
	route, ok := savedQueryPages[page]
	if !ok {
		return &apperr.Error{Kind: apperr.Invalid, Message: fmt.Sprintf("searches of %q cannot be saved", page), Fields: map[string]string{"page": "is not a page with saved searches"}}
	}
	if !s.allowed(u, http.MethodGet, route) {
		return apperr.New(apperr.Forbidden, "your roles do not allow %s", page)
	}
	sq, err := svc.SaveQuery(c.Request().Context(), activity.SavedQuery{OwnerID: u.ID, Owner: u.Label(), Page: page,
		Name: c.FormValue("name"), Query: c.FormValue("query"), Shared: c.FormValue("shared") == "1"})
	back := page
	if q := c.FormValue("query"); q != "" {
		back += "?" + q
	}
	if apperr.KindOf(err) == apperr.Invalid || apperr.KindOf(err) == apperr.Conflict {
		s.flashError(c, "The search was not saved: "+apperr.MessageOf(err)+".")
		return c.Redirect(http.StatusSeeOther, safeBack(back, page))
	} else if err != nil {
		return err
	}
	who := "you"
	if sq.Shared {
		who = "everyone who can open this page"
	}
	s.flash(c, fmt.Sprintf("Saved the search %q for %s.", sq.Name, who))
	return c.Redirect(http.StatusSeeOther, sq.URL())
}

// savedQueryDelete deletes one of the signed-in person's saved searches.
func (s *Server) savedQueryDelete(c echo.Context) error {
	svc, err := s.activityService()
	if err != nil {
		return err
	}
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	sq, err := svc.DeleteQuery(c.Request().Context(), currentUser(c).ID, id)
	if err != nil {
		return err
	}
	s.flash(c, fmt.Sprintf("Deleted the saved search %q.", sq.Name))
	return c.Redirect(http.StatusSeeOther, sq.Page)
}

// safeBack is back when it is a path on this site under page, else page.
func safeBack(back, page string) string {
	u, err := url.Parse(back)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Path != page {
		return page
	}
	return back
}
