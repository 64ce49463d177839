package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
)

// FuzzDecodeJSON feeds arbitrary bodies to the API's strict JSON decoder:
// it never panics, and whatever it refuses is an Invalid error with a
// message, never an internal error.
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []string{
		`{"email":"a@example.com","roles":["ops"]}`,
		`{"email":1}`,
		`{"roles":"ops"}`,
		`{"unknown":true}`,
		`{"email":"a@example.com"} {"again":1}`,
		`{"email":"a@example.com"`,
		``,
		`[]`,
		`null`,
		`{"stack":"dev-eu","version":"","kind":"destroy"}`,
		"\xff\xfe",
	} {
		f.Add(seed)
	}
	e := echo.New()
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/staff", strings.NewReader(body))
		req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
		c := e.NewContext(req, httptest.NewRecorder())
		var v struct {
			Email string   `json:"email"`
			Name  string   `json:"name"`
			Roles []string `json:"roles"`
			Stack string   `json:"stack"`
		}
		err := decodeJSON(c, &v)
		if err == nil {
			return
		}
		if k := apperr.KindOf(err); k != apperr.Invalid {
			t.Fatalf("body %q: error kind %s (%v), want invalid", body, k, err)
		}
		if apperr.MessageOf(err) == "" {
			t.Fatalf("body %q: refused without a message", body)
		}
	})
}
