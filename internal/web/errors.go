package web

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/web/templates"
)

var statusOf = map[apperr.Kind]int{
	apperr.Invalid:      http.StatusBadRequest,
	apperr.NotFound:     http.StatusNotFound,
	apperr.Unauthorized: http.StatusUnauthorized,
	apperr.Forbidden:    http.StatusForbidden,
	apperr.Conflict:     http.StatusConflict,
	apperr.TooMany:      http.StatusTooManyRequests,
	apperr.Internal:     http.StatusInternalServerError,
}

// APIError is the JSON body of every API error.
type APIError struct {
	Error APIErrorBody `json:"error"`
}

// APIErrorBody names what went wrong; Fields maps input fields to messages.
type APIErrorBody struct {
	Code      string            `json:"code"`
	Message   string            `json:"message"`
	Fields    map[string]string `json:"fields,omitempty"`
	RequestID string            `json:"request_id"`
}

// handleError is the one place errors become responses. Only internal
// errors are logged in full; people see a request ID instead of details.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		s.deps.Logger.Error("error after response started", slog.String("err", err.Error()))
		return
	}
	kind, msg, fields := apperr.KindOf(err), apperr.MessageOf(err), apperr.FieldsOf(err)
	var he *echo.HTTPError
	if errors.As(err, &he) {
		kind = kindForStatus(he.Code)
		if m, ok := he.Message.(string); ok {
			msg = m
		}
		if he.Code == http.StatusNotFound {
			msg = "There is no page at this address."
		}
	}
	status := statusOf[kind]
	if apperr.IsUnprocessable(err) {
		status = http.StatusUnprocessableEntity
	}
	if he != nil && he.Code == http.StatusMethodNotAllowed {
		status = he.Code
	}
	if status == http.StatusForbidden {
		s.recordRefusal(c, msg)
	}
	reqID := c.Response().Header().Get(echo.HeaderXRequestID)
	if kind == apperr.Internal {
		s.deps.Logger.Error("internal error", slog.String("err", err.Error()), slog.String("request_id", reqID),
			slog.String("method", c.Request().Method), slog.String("path", c.Request().URL.Path))
		msg = "Something went wrong on our side. It has been logged; quote the request ID if you report it."
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	if isAPI(c) {
		_ = c.JSON(status, APIError{Error: APIErrorBody{Code: string(kind), Message: msg, Fields: fields, RequestID: reqID}})
		return
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	_ = s.render(c, status, templates.ErrorPage(s.page(c, http.StatusText(status), ""), templates.ErrorView{
		Status: status, Title: http.StatusText(status), Message: msg, RequestID: reqID, SignedIn: currentUser(c) != nil,
	}))
}

func kindForStatus(code int) apperr.Kind {
	switch code {
	case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusRequestEntityTooLarge:
		return apperr.Invalid
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return apperr.NotFound
	case http.StatusUnauthorized:
		return apperr.Unauthorized
	case http.StatusForbidden:
		return apperr.Forbidden
	case http.StatusConflict:
		return apperr.Conflict
	case http.StatusTooManyRequests:
		return apperr.TooMany
	}
	return apperr.Internal
}

func isAPI(c echo.Context) bool {
	p := c.Request().URL.Path
	return len(p) >= 5 && p[:5] == "/api/"
}
