package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"portal/internal/staff"
	"portal/internal/store"
)

// TestHandleRefusesUndeclaredAccess checks deny by default at registration:
// a route without an access declaration, or registered twice, panics.
func TestHandleRefusesUndeclaredAccess(t *testing.T) {
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "portal.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := New(Config{}, Deps{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() { s.Close(context.Background()) })
	ok := func(c echo.Context) error { return c.NoContent(http.StatusOK) }

	tests := []struct {
		name      string
		path      string
		access    Access
		wantPanic string
	}{
		{"zero access", "/undeclared", Access{}, "declares no access"},
		{"empty role list", "/no-roles", Roles(), "declares no access"},
		{"registered twice", "/healthz", Public, "registered twice"},
		{"declared", "/declared", Roles(staff.Admin), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			func() {
				defer func() {
					if r := recover(); r != nil {
						got, _ = r.(string)
						if got == "" {
							got = "non-string panic"
						}
					}
				}()
				s.handle(http.MethodGet, tt.path, ok, tt.access)
			}()
			switch {
			case tt.wantPanic == "" && got != "":
				t.Errorf("got panic %q, want none", got)
			case tt.wantPanic != "" && !strings.Contains(got, tt.wantPanic):
				t.Errorf("got panic %q, want one containing %q", got, tt.wantPanic)
			}
		})
	}
}

// TestEveryAPIRouteHasAScopeArea: a token's scopes name areas; an API route
// outside every area would be open only to "all" and "read" tokens, so
// each must map to one (or to "", what every token may do).
func TestEveryAPIRouteHasAScopeArea(t *testing.T) {
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "portal.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := New(Config{}, Deps{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() { s.Close(context.Background()) })
	known := map[string]bool{"": true}
	for _, a := range staff.TokenAreas {
		known[a.Name] = true
	}
	for _, r := range s.Routes() {
		if !r.IsAPI() {
			continue
		}
		if a := apiArea(r.Path); !known[a] {
			t.Errorf("%s %s: scope area %q, want one of staff.TokenAreas", r.Method, r.Path, a)
		}
	}
}
