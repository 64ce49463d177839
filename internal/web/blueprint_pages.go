package web

import (
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/internal/store"
	"portal/internal/versions"
	"portal/web/templates"
)

const versionsPageSize = 25

// latestID returns the latest version's id, "" when there is none.
func latestID(c echo.Context, svc *versions.Service) (string, error) {
	v, err := svc.Latest(c.Request().Context())
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	return v.ID, err
}

func (s *Server) blueprintsList(c echo.Context) error {
	svc, err := s.versionsSvc()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	f := versions.ListFilter{Limit: versionsPageSize}
	if b := c.QueryParam("before"); b != "" {
		if f.BeforeSeq, err = strconv.ParseInt(b, 10, 64); err != nil || f.BeforeSeq <= 0 {
			return apperr.New(apperr.Invalid, "before must be a version number")
		}
	}
	list, more, err := svc.List(ctx, f)
	if err != nil {
		return err
	}
	latest, err := latestID(c, svc)
	if err != nil {
		return err
	}
	v := templates.BlueprintsView{CanEdit: s.canEditBlueprints(c), LatestID: latest}
	for _, x := range list {
		v.Rows = append(v.Rows, versionRow(x, latest, s.actors(c)))
	}
	if more && len(list) > 0 {
		v.NextURL = "/blueprints?before=" + strconv.FormatInt(list[len(list)-1].Seq, 10)
	}
	if latest != "" && f.BeforeSeq == 0 {
		reports, id, err := svc.Reports(ctx, latest)
		if err != nil {
			return err
		}
		for _, r := range reports {
			v.Stacks = append(v.Stacks, stackStatus(r, id))
		}
	}
	inForce, err := svc.ListExceptions(ctx, versions.ExceptionFilter{InForce: true})
	if err != nil {
		return err
	}
	v.InForce = len(inForce)
	return s.render(c, http.StatusOK, templates.Blueprints(s.page(c, "Blueprints", "blueprints"), v))
}

// exceptionsInForce lists the active exceptions of stacks (all when none
// are given), for reports.
func (s *Server) exceptionsInForce(c echo.Context, svc *versions.Service, stacks ...string) ([]templates.ExceptionRow, error) {
	list, err := svc.ListExceptions(c.Request().Context(), versions.ExceptionFilter{InForce: true})
	if err != nil {
		return nil, err
	}
	now := svc.Now()
	var out []templates.ExceptionRow
	for _, e := range list {
		if len(stacks) == 0 || slices.Contains(stacks, e.Stack) {
			out = append(out, exceptionRow(e, now, false, s.actors(c)))
		}
	}
	return out, nil
}

func (s *Server) versionShow(c echo.Context) error {
	svc, err := s.versionsSvc()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	ver, err := svc.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	latest, err := latestID(c, svc)
	if err != nil {
		return err
	}
	files, err := svc.Files(ctx, ver.ID)
	if err != nil {
		return err
	}
	var parentFiles []versions.File
	if ver.Parent != "" {
		if parentFiles, err = svc.Files(ctx, ver.Parent); err != nil {
			return err
		}
	}
	v := templates.VersionView{Version: versionRow(ver, latest, s.actors(c)), CanEdit: s.canEditBlueprints(c)}
	if ver.Parent != "" {
		v.DiffURL = "/blueprints/diff?from=" + ver.Parent + "&to=" + ver.ID
	}
	for _, f := range files {
		row := templates.BlueprintFileRow{Path: f.Path, Name: fileName(f.Path), Lines: len(versions.Lines(f.Content)), URL: fileURL(ver.ID, f.Path)}
		for _, pf := range parentFiles {
			if pf.Path == f.Path && string(pf.Content) != string(f.Content) {
				row.Changed = true
			}
		}
		v.Files = append(v.Files, row)
	}
	reports, _, err := svc.Reports(ctx, ver.ID)
	if err != nil {
		return err
	}
	for _, r := range reports {
		v.Stacks = append(v.Stacks, stackStatus(r, ver.ID))
	}
	if v.Exceptions, err = s.exceptionsInForce(c, svc); err != nil {
		return err
	}
	return s.render(c, http.StatusOK, templates.BlueprintVersion(s.page(c, "Blueprint version #"+strconv.FormatInt(ver.Seq, 10), "blueprints"), v))
}

func (s *Server) fileShow(c echo.Context) error {
	svc, err := s.versionsSvc()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	ver, err := svc.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	path, ok := filePath(c.Param("name"))
	if !ok {
		return apperr.New(apperr.NotFound, "a version has no file %q", c.Param("name"))
	}
	f, err := svc.File(ctx, ver.ID, path)
	if err != nil {
		return err
	}
	latest, err := latestID(c, svc)
	if err != nil {
		return err
	}
	v := templates.BlueprintFileView{Version: versionRow(ver, latest, s.actors(c)), Path: path, CanEdit: s.canEditBlueprints(c),
		EditURL: "/blueprints/new?base=" + ver.ID + "&file=" + path}
	for i, l := range versions.Lines(f.Content) {
		v.Lines = append(v.Lines, templates.CodeLine{N: i + 1, Text: l})
	}
	for _, p := range versions.Paths() {
		if p != path {
			v.Files = append(v.Files, templates.BlueprintFileRow{Path: p, Name: fileName(p), URL: fileURL(ver.ID, p)})
		}
	}
	return s.render(c, http.StatusOK, templates.BlueprintFile(s.page(c, path, "blueprints"), v))
}

func (s *Server) versionsDiff(c echo.Context) error {
	svc, err := s.versionsSvc()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	to, err := s.versionParam(c, svc, "to")
	if err != nil {
		return err
	}
	var from versions.Version
	if c.QueryParam("from") == "" && to.Parent != "" {
		from, err = svc.Get(ctx, to.Parent)
	} else if c.QueryParam("from") == "" {
		from = to
	} else {
		from, err = svc.Get(ctx, c.QueryParam("from"))
	}
	if err != nil {
		return err
	}
	latest, err := latestID(c, svc)
	if err != nil {
		return err
	}
	oldFiles, err := svc.Files(ctx, from.ID)
	if err != nil {
		return err
	}
	newFiles, err := svc.Files(ctx, to.ID)
	if err != nil {
		return err
	}
	v := templates.DiffView{From: versionRow(from, latest, s.actors(c)), To: versionRow(to, latest, s.actors(c))}
	for i, nf := range newFiles {
		var old []byte
		if i < len(oldFiles) && oldFiles[i].Path == nf.Path {
			old = oldFiles[i].Content
		}
		if d := fileDiff(nf.Path, old, nf.Content); d != nil {
			v.Files = append(v.Files, *d)
		} else {
			v.Same = append(v.Same, nf.Path)
		}
	}
	list, _, err := svc.List(ctx, versions.ListFilter{Limit: versions.MaxLimit})
	if err != nil {
		return err
	}
	for _, x := range list {
		v.Versions = append(v.Versions, versionRow(x, latest, s.actors(c)))
	}
	return s.render(c, http.StatusOK, templates.BlueprintDiff(s.page(c, "Compare versions", "blueprints"), v))
}

// versionParam reads a version from query parameter name: the latest when
// it is empty.
func (s *Server) versionParam(c echo.Context, svc *versions.Service, name string) (versions.Version, error) {
	if id := c.QueryParam(name); id != "" {
		return svc.Get(c.Request().Context(), id)
	}
	v, err := svc.Latest(c.Request().Context())
	if errors.Is(err, store.ErrNotFound) {
		return versions.Version{}, apperr.New(apperr.NotFound, "no blueprint version has been saved yet")
	}
	return v, err
}
