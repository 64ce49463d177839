package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// ui is the provider's own pages (login) and its admin API.
type ui struct {
	name       string
	st         *storage
	callback   func(context.Context, string) string
	issuer     *op.IssuerInterceptor
	adminToken string
	log        *slog.Logger
}

var loginTmpl = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · {{.Provider}}</title>
<style>
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;background:#1f2a44;color:#1b1b1b;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{background:#fff;border-radius:10px;padding:2rem 2.25rem;width:22rem;box-shadow:0 10px 30px rgba(0,0,0,.35)}
.brand{font-weight:700;color:#3b4cca;letter-spacing:.02em;margin:0 0 1.25rem}
h1{font-size:1.35rem;margin:0 0 .25rem}
p.for{margin:0 0 1.25rem;color:#555}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input{width:100%;box-sizing:border-box;padding:.55rem .6rem;border:1px solid #aab;border-radius:6px;font:inherit}
button{margin-top:1.25rem;width:100%;padding:.65rem;border:0;border-radius:6px;background:#3b4cca;color:#fff;font:inherit;font-weight:600;cursor:pointer}
.error{background:#fde8e8;color:#8a1c1c;border-radius:6px;padding:.5rem .7rem;margin:0 0 .5rem}
.note{color:#666;font-size:.85rem;margin-top:1.25rem}
</style></head>
<body><main>
<p class="brand">{{.Provider}}</p>
{{if .Expired}}
<h1>Sign-in expired</h1>
<p class="error" role="alert" data-testid="idp-error">{{.Error}}</p>
{{else}}
<h1>Sign in</h1>
<p class="for">to continue to <strong>{{.App}}</strong></p>
{{if .Error}}<p class="error" role="alert" data-testid="idp-error">{{.Error}}</p>{{end}}
<form method="post" action="/login" data-testid="idp-login-form">
<input type="hidden" name="authRequestID" value="{{.ID}}">
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" value="{{.Username}}" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" data-testid="idp-submit">Sign in</button>
</form>
<p class="note">A test identity provider on this machine (loopback only).</p>
{{end}}
</main></body></html>`))

type loginView struct {
	Provider, App, ID, Username, Error string
	Expired                            bool
}

func (u *ui) render(w http.ResponseWriter, status int, v loginView) {
	v.Provider = u.name
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	_ = loginTmpl.Execute(w, v)
}

func (u *ui) loginPage(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	app, ok := u.st.clientName(id)
	if !ok {
		u.render(w, http.StatusBadRequest, loginView{Expired: true, Error: "This sign-in has expired or was already used. Go back to the application and start again."})
		return
	}
	u.render(w, http.StatusOK, loginView{App: app, ID: id})
}

func (u *ui) loginSubmit(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "the form could not be read", http.StatusBadRequest)
		return
	}
	id, name := r.PostForm.Get("authRequestID"), strings.TrimSpace(r.PostForm.Get("username"))
	app, ok := u.st.clientName(id)
	if !ok {
		u.render(w, http.StatusBadRequest, loginView{Expired: true, Error: "This sign-in has expired or was already used. Go back to the application and start again."})
		return
	}
	if err := u.st.checkPassword(id, name, r.PostForm.Get("password")); err != nil {
		u.log.Info("sign-in refused", "username", name, "reason", err.Error())
		u.render(w, http.StatusUnauthorized, loginView{App: app, ID: id, Username: name, Error: err.Error()})
		return
	}
	u.log.Info("signed in", "username", name)
	http.Redirect(w, r, u.callback(r.Context(), id), http.StatusFound)
}

func (u *ui) signedOut(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("You are signed out of " + u.name + ".\n"))
}

// admin guards an admin API handler with the bearer token.
func (u *ui) admin(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(u.adminToken)) != 1 {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "admin token required"})
			return
		}
		next(w, r)
	}
}

func (u *ui) listUsers(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, u.st.listUsers())
}

func (u *ui) disable(disabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if err := u.st.setDisabled(name, disabled); err != nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no user " + name})
			return
		}
		u.log.Info("user changed by admin", "username", name, "disabled", disabled)
		w.WriteHeader(http.StatusNoContent)
	}
}

func (u *ui) setGroups(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var groups []string
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&groups); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "want a JSON list of group names"})
		return
	}
	if err := u.st.setGroups(name, groups); err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, errNotFound) {
			status = http.StatusNotFound
		}
		writeJSON(w, status, map[string]string{"error": "no user " + name})
		return
	}
	u.log.Info("groups changed by admin", "username", name, "groups", groups)
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
