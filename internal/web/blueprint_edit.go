package web

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/internal/guardrails"
	"portal/internal/versions"
	"portal/web/templates"
)

// versionForm is the editor's form that creates a version: the file in
// the editor, and the other files already changed in this version
// (carried along as the person moves from file to file).
type versionForm struct {
	Base    string
	Path    string
	Content string
	Message string
	// Staged are the other files this version changes, by path order of
	// editing; the file in the editor is never among them.
	Staged []versions.File
	// Open is the file to edit next ("" to stay on Path).
	Open string
	// uploaded is set when a file was uploaded in place of the text.
	uploaded bool
}

// Files is every file the version changes: the staged ones and the one in
// the editor.
func (f versionForm) Files() []versions.File {
	return append(slices.Clone(f.Staged), versions.File{Path: f.Path, Content: []byte(f.Content)})
}

// Validate checks the fields that do not need the blueprint itself.
func (f versionForm) Validate(saving bool) error {
	var v apperr.Validation
	if _, ok := filePath(f.Path); !ok || f.Path == "" {
		v.Add("path", "must be architecture.yaml or stacks/<stack>.yaml")
	}
	if len(f.Content) > versions.MaxFileBytes {
		v.Add("content", fmt.Sprintf("is larger than %d KiB", versions.MaxFileBytes>>10))
	}
	for _, st := range f.Staged {
		if _, ok := filePath(st.Path); !ok || st.Path == "" {
			v.Add("path", fmt.Sprintf("a changed file is named %q: it must be architecture.yaml or stacks/<stack>.yaml", st.Path))
		} else if len(st.Content) > versions.MaxFileBytes {
			v.Add("content", fmt.Sprintf("%s is larger than %d KiB", st.Path, versions.MaxFileBytes>>10))
		}
	}
	if f.Open != "" {
		if _, ok := filePath(f.Open); !ok {
			v.Add("open", fmt.Sprintf("%q is not a file of a version", f.Open))
		}
	}
	if saving {
		if strings.TrimSpace(f.Message) == "" {
			v.Add("message", "is required: say what changed and why")
		} else if len([]rune(f.Message)) > versions.MaxMessage {
			v.Add("message", fmt.Sprintf("is longer than %d characters", versions.MaxMessage))
		}
	}
	return v.Err()
}

// readVersionForm reads the form, taking an uploaded file (if any) in place
// of the textarea. Textareas send CRLF line ends; files keep theirs.
func readVersionForm(c echo.Context) (versionForm, error) {
	f := versionForm{Base: c.FormValue("base"), Path: c.FormValue("path"), Message: strings.TrimSpace(c.FormValue("message")),
		Content: strings.ReplaceAll(c.FormValue("content"), "\r\n", "\n"), Open: c.FormValue("open")}
	form, err := c.FormParams()
	if err != nil {
		return f, apperr.New(apperr.Invalid, "the form could not be read")
	}
	paths, contents := form["staged_path"], form["staged_content"]
	if len(paths) != len(contents) {
		return f, apperr.New(apperr.Invalid, "the form's changed files are incomplete: open the editor again")
	}
	for i, p := range paths {
		if p == f.Path {
			continue // the editor's text wins
		}
		f.Staged = append(f.Staged, versions.File{Path: p, Content: []byte(strings.ReplaceAll(contents[i], "\r\n", "\n"))})
	}
	if !strings.HasPrefix(c.Request().Header.Get(echo.HeaderContentType), echo.MIMEMultipartForm) {
		return f, nil
	}
	fh, err := c.FormFile("upload")
	if errors.Is(err, http.ErrMissingFile) || (err == nil && fh.Size == 0) {
		return f, nil
	}
	if err != nil {
		return f, apperr.New(apperr.Invalid, "the uploaded file could not be read")
	}
	if fh.Size > versions.MaxFileBytes {
		return f, &apperr.Error{Kind: apperr.Invalid, Message: "content: the uploaded file is too large",
			Fields: map[string]string{"content": fmt.Sprintf("the uploaded file is larger than %d KiB", versions.MaxFileBytes>>10)}}
	}
	r, err := fh.Open()
	if err != nil {
		return f, apperr.New(apperr.Invalid, "the uploaded file could not be read")
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, versions.MaxFileBytes+1))
	if err != nil {
		return f, apperr.New(apperr.Invalid, "the uploaded file could not be read")
	}
	f.Content, f.uploaded = string(b), true
	return f, nil
}

// versionNew shows a file of a version (the latest unless ?base=) in the
// editor.
func (s *Server) versionNew(c echo.Context) error {
	svc, err := s.versionsSvc()
	if err != nil {
		return err
	}
	base, err := s.versionParam(c, svc, "base")
	if err != nil {
		return err
	}
	path := versions.StackPath("prod-eu")
	if q := c.QueryParam("file"); q != "" {
		var ok bool
		if path, ok = filePath(q); !ok {
			return apperr.New(apperr.NotFound, "a version has no file %q", q)
		}
	}
	f, err := svc.File(c.Request().Context(), base.ID, path)
	if err != nil {
		return err
	}
	return s.renderEdit(c, http.StatusOK, editState{base: base, form: versionForm{Base: base.ID, Path: path, Content: string(f.Content)}})
}

// editState is what the editor page shows.
type editState struct {
	base      versions.Version
	form      versionForm
	prepared  *versions.Prepared
	previewed bool
	errs      map[string]string
	notice    string
	// unchanged is set when the files differ from the base only in
	// comments or formatting: the blueprint they describe is the base's.
	unchanged bool
}

func (s *Server) renderEdit(c echo.Context, status int, st editState) error {
	svc := s.deps.Versions
	ctx := c.Request().Context()
	latest, err := latestID(c, svc)
	if err != nil {
		return err
	}
	v := templates.EditView{Base: versionRow(st.base, latest, s.actors(c)), HasBase: st.base.ID != "", Paths: versions.Paths(), Path: st.form.Path,
		Content: st.form.Content, Message: st.form.Message, Errors: st.errs, Previewed: st.previewed, Notice: st.notice, Unchanged: st.unchanged}
	for _, f := range st.form.Staged {
		content := string(f.Content)
		if strings.HasPrefix(content, "\n") {
			content = "\n" + content // a textarea drops one leading newline
		}
		v.Staged = append(v.Staged, templates.StagedFile{Path: f.Path, Content: content})
	}
	if strings.HasPrefix(v.Content, "\n") {
		v.Content = "\n" + v.Content // a textarea drops one leading newline
	}
	marks := map[int]bool{}
	if p := st.prepared; p != nil {
		v.Diagnostics = diagnosticViews(p.Checked.Errors(), p.Checked.Files, st.form.Path)
		for _, d := range p.Checked.Errors() {
			if d.File == st.form.Path {
				marks[d.Line] = true
			}
		}
		now := svc.Now()
		src := newSources(p.Checked.Files)
		for _, r := range p.Reports {
			for _, res := range r.Results {
				if res.Status != guardrails.Fail {
					continue
				}
				fv := findingView(r.Stack, res, now)
				fv.Source, fv.CaretPad = src.excerpt(res.File, res.Line, res.Column)
				fv.Anchor = gutterAnchor(res.File, st.form.Path, res.Line)
				if res.Severity == guardrails.Blocking {
					v.Blocking = append(v.Blocking, fv)
				} else {
					v.Warnings = append(v.Warnings, fv)
				}
				if res.File == st.form.Path && res.Severity == guardrails.Blocking {
					marks[res.Line] = true
				}
			}
		}
	}
	if st.previewed && st.base.ID != "" {
		for _, f := range st.form.Files() {
			old, err := svc.File(ctx, st.base.ID, f.Path)
			if err != nil {
				return err
			}
			if d := fileDiff(f.Path, old.Content, f.Content); d != nil {
				v.Preview = append(v.Preview, *d)
			}
		}
	}
	v.Marked = len(marks) > 0
	n := len(versions.Lines([]byte(st.form.Content)))
	for i := 1; i <= n+1; i++ {
		v.Gutter = append(v.Gutter, templates.CodeLine{N: i, Mark: marks[i]})
	}
	v.Rows = n + 1
	title := "New blueprint version"
	return s.render(c, status, templates.BlueprintEdit(s.page(c, title, "blueprints"), v))
}

// prepareForm reads the form and checks it against the blueprint; the
// returned state is ready to render.
func (s *Server) prepareForm(c echo.Context, saving bool) (editState, *versions.Prepared, error) {
	svc, err := s.versionsSvc()
	if err != nil {
		return editState{}, nil, err
	}
	f, ferr := readVersionForm(c)
	st := editState{form: f, previewed: true}
	if f.Base != "" {
		if st.base, err = svc.Get(c.Request().Context(), f.Base); err != nil {
			return st, nil, err
		}
	}
	if ferr == nil {
		ferr = f.Validate(saving)
	}
	if ferr != nil {
		if apperr.KindOf(ferr) != apperr.Invalid {
			return st, nil, ferr
		}
		st.errs = apperr.FieldsOf(ferr)
		if st.errs == nil {
			st.errs = map[string]string{"content": apperr.MessageOf(ferr)}
		}
		if st.errs["path"] != "" {
			return st, nil, ferr
		}
	}
	p, err := svc.Prepare(c.Request().Context(), versions.Draft{Base: f.Base, Files: f.Files()})
	if err != nil {
		return st, nil, err
	}
	st.prepared = p
	if p.Base != nil {
		st.base = *p.Base
		st.unchanged = len(p.Changed) > 0 && p.Checked.ID == p.Base.ID
	}
	if f.uploaded {
		st.notice = "The uploaded file replaced the text of " + f.Path + "."
	}
	return st, p, nil
}

func (s *Server) versionPreview(c echo.Context) error {
	st, p, err := s.prepareForm(c, false)
	if err != nil {
		return err
	}
	if st.form.Open != "" && st.form.Open != st.form.Path && st.errs == nil {
		return s.openNext(c, st)
	}
	if st.unchanged {
		st.notice = strings.TrimSpace(st.notice + " " + unchangedNotice(st))
	}
	status := http.StatusOK
	if st.errs != nil {
		status = http.StatusBadRequest
	} else if p.Rejection() != nil {
		status = http.StatusUnprocessableEntity
	}
	return s.renderEdit(c, status, st)
}

func (s *Server) versionCreate(c echo.Context) error {
	st, p, err := s.prepareForm(c, true)
	if err != nil {
		return err
	}
	if p.Rejection() != nil {
		return s.renderEdit(c, http.StatusUnprocessableEntity, st)
	}
	if st.errs != nil {
		return s.renderEdit(c, http.StatusBadRequest, st)
	}
	if st.unchanged {
		// Saving would store nothing and show the base with its old
		// comments: the person's edit would seem to vanish. Keep it in the
		// editor and say why nothing was saved.
		st.notice = unchangedNotice(st)
		return s.renderEdit(c, http.StatusOK, st)
	}
	v, created, err := s.deps.Versions.SavePrepared(c.Request().Context(), who(c), p, st.form.Message)
	var rej *versions.Rejection
	if errors.As(err, &rej) {
		return s.renderEdit(c, http.StatusUnprocessableEntity, st)
	} else if err != nil {
		return err
	}
	if created {
		s.flash(c, fmt.Sprintf("Saved version #%d, changing %s.", v.Seq, strings.Join(p.Changed, ", ")))
	} else {
		s.flash(c, "Nothing new to save: version #"+strconv.FormatInt(v.Seq, 10)+" already holds this content (comments and formatting alone do not make a new version).")
	}
	return c.Redirect(http.StatusSeeOther, "/blueprints/versions/"+v.ID)
}

// unchangedNotice says that a change touches only comments or formatting.
func unchangedNotice(st editState) string {
	return fmt.Sprintf("This change edits only comments or formatting of %s: the blueprint it describes is exactly version #%d's, so saving it makes no new version. "+
		"Change a value as well, or leave it.", strings.Join(st.prepared.Changed, ", "), st.base.Seq)
}

// openNext keeps the file in the editor among the version's changed files
// (when it differs from the base) and opens st.form.Open: its text as
// already changed in this version, or else the base's.
func (s *Server) openNext(c echo.Context, st editState) error {
	ctx := c.Request().Context()
	svc := s.deps.Versions
	cur, err := svc.File(ctx, st.base.ID, st.form.Path)
	if err != nil {
		return err
	}
	f := st.form
	var staged []versions.File
	next, found := "", false
	for _, x := range f.Staged {
		if x.Path == f.Open {
			next, found = string(x.Content), true
			continue
		}
		staged = append(staged, x)
	}
	if string(cur.Content) != f.Content {
		staged = append(staged, versions.File{Path: f.Path, Content: []byte(f.Content)})
	}
	if !found {
		base, err := svc.File(ctx, st.base.ID, f.Open)
		if err != nil {
			return err
		}
		next = string(base.Content)
	}
	f.Staged, f.Path, f.Content, f.Open = staged, f.Open, next, ""
	st.form = f
	// Check the whole draft again, with the new file in the editor.
	p, err := svc.Prepare(ctx, versions.Draft{Base: st.base.ID, Files: f.Files()})
	if err != nil {
		return err
	}
	st.prepared, st.unchanged = p, len(p.Changed) > 0 && p.Checked.ID == st.base.ID
	st.notice = ""
	if len(staged) > 0 {
		var names []string
		for _, x := range staged {
			names = append(names, x.Path)
		}
		st.notice = "Your changes to " + strings.Join(names, ", ") + " are kept: they are saved with this file in one version."
	}
	return s.renderEdit(c, http.StatusOK, st)
}
