package templates

import (
	"context"
	"io"
	"strings"

	"github.com/a-h/templ"
)

// ActorView is who did something, as a person reads it: a staff member's
// name (linked to their staff page when the viewer may open it) and
// email, or the portal's own name for work it did by itself ("system").
type ActorView struct {
	Name  string
	Email string // "" when Name says it all
	Href  string // the staff page, "" when the viewer may not open it
	Via   string // e.g. "API token #3" when the person used one
}

// Plain is the actor as text, for documents that leave the portal.
func (a ActorView) Plain() string {
	s := a.Name
	if a.Email != "" {
		s += " (" + a.Email + ")"
	}
	if a.Via != "" {
		s += " via " + a.Via
	}
	return s
}

// Actor shows who did something, inline: written by hand rather than in
// templ so that no whitespace comes between it and the punctuation after
// it ("started by Olga Ops (olga@…).").
func Actor(a ActorView) templ.Component {
	return templ.ComponentFunc(func(_ context.Context, w io.Writer) error {
		var b strings.Builder
		b.WriteString(`<span class="actor" data-testid="actor">`)
		if a.Href != "" {
			b.WriteString(`<a href="` + templ.EscapeString(string(templ.URL(a.Href))) + `" data-testid="actor-link">` + templ.EscapeString(a.Name) + `</a>`)
		} else {
			b.WriteString(templ.EscapeString(a.Name))
		}
		if a.Email != "" {
			b.WriteString(` <span class="muted">(` + templ.EscapeString(a.Email) + `)</span>`)
		}
		if a.Via != "" {
			b.WriteString(" via " + templ.EscapeString(a.Via))
		}
		b.WriteString(`</span>`)
		_, err := io.WriteString(w, b.String())
		return err
	})
}
