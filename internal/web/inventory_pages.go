package web

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/internal/inventory"
	"portal/internal/regions"
	"portal/internal/staff"
	"portal/web/templates"
)

const inventoryPageSize = 100

// inventorySvc returns the inventory, or a clear error when the portal was
// assembled without one.
func (s *Server) inventorySvc() (*inventory.Service, error) {
	if s.deps.Inventory == nil {
		return nil, apperr.New(apperr.Conflict, "the inventory is not available in this portal")
	}
	return s.deps.Inventory, nil
}

// parseInventoryFilter reads the inventory filter from the query string
// (the page, the API and the CSV export take the same parameters).
func parseInventoryFilter(q url.Values) (inventory.Filter, templates.InventoryFilter, error) {
	view := templates.InventoryFilter{Environment: q.Get("environment"), Jurisdiction: q.Get("jurisdiction"), Region: q.Get("region"),
		Service: q.Get("service"), Type: q.Get("type"), Stack: q.Get("stack"), Tag: q.Get("tag"), Managed: q.Get("managed"), Query: q.Get("q")}
	f := inventory.Filter{Environment: view.Environment, Jurisdiction: view.Jurisdiction, Region: view.Region, Service: view.Service, Type: view.Type,
		Stack: view.Stack, Tag: view.Tag, Managed: view.Managed, Query: view.Query}
	var v apperr.Validation
	switch q.Get("violations") {
	case "", "0":
	case "1":
		f.Violations, view.Violations = true, true
	default:
		v.Add("violations", "must be 1 or 0")
	}
	num := func(name string, max int64) int64 {
		raw := q.Get(name)
		if raw == "" {
			return 0
		}
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n <= 0 || max > 0 && n > max {
			if max > 0 {
				v.Add(name, fmt.Sprintf("must be a number between 1 and %d", max))
			} else {
				v.Add(name, "must be a positive number")
			}
		}
		return n
	}
	f.Snapshot = num("snapshot", 0)
	f.After = num("after", 0)
	f.Limit = int(num("limit", inventory.MaxLimit))
	if err := v.Err(); err != nil {
		return f, view, err
	}
	return f, view, f.Validate()
}

func inventoryRow(r inventory.Resource, snapshot int64) templates.InventoryRow {
	row := templates.InventoryRow{ARN: r.ARN, Name: r.Name, Environment: r.Environment, AccountID: r.AccountID, Region: r.Region, Service: r.Service,
		Type: r.Type, Managed: r.Managed, Stack: r.Stack, PortalID: r.PortalID, Version: r.Version, Jurisdiction: r.Jurisdiction,
		JurisdictionByRegion: r.JurisdictionByRegion, Violation: r.Violation, Note: r.Note, Tags: inventory.TagList(r.Tags)}
	q := url.Values{"arn": {r.ARN}}
	if snapshot != 0 {
		q.Set("snapshot", strconv.FormatInt(snapshot, 10))
	}
	row.DetailURL = "/inventory/resource?" + q.Encode()
	if m := r.Managing; m != nil {
		row.InState, row.RunID, row.BlueprintVersion = m.InState, m.RunID, m.BlueprintVersion
	}
	st := r.Settings
	add := func(label, value string, bad bool) {
		if value != "" {
			row.Settings = append(row.Settings, templates.SettingView{Label: label, Value: value, Bad: bad})
		}
	}
	key := ""
	if st.KMSKey != "" {
		key = " (" + shortKey(st.KMSKey) + ")"
	}
	add("Encryption", st.Encryption+key, st.Encryption == "none" || st.Encryption == "AES256" && r.Service == "s3")
	add("Public access", st.PublicAccess, st.PublicAccess == "public" || st.PublicAccess == "not blocked")
	add("Versioning", st.Versioning, st.Versioning != "enabled")
	add("Backups", st.Backups, st.Backups == "off")
	add("Multi-AZ", st.MultiAZ, false)
	add("Deletion protection", st.Deletion, false)
	return row
}

// shortKey shortens a KMS key ARN to "key/1234abcd…" or an alias.
func shortKey(k string) string {
	if i := strings.LastIndex(k, ":"); i >= 0 && strings.HasPrefix(k, "arn:") {
		k = k[i+1:]
	}
	if len(k) > 18 {
		k = k[:17] + "…"
	}
	return k
}

func snapshotView(sn inventory.Snapshot) templates.SnapshotView {
	v := templates.SnapshotView{ID: sn.ID, State: sn.State, RequestedBy: sn.RequestedBy, CreatedAt: sn.CreatedAt, StartedAt: sn.StartedAt, FinishedAt: sn.FinishedAt,
		TasksTotal: sn.TasksTotal, TasksDone: sn.TasksDone, Resources: sn.Resources, Calls: sn.Calls, LastTask: sn.LastTask, Took: sn.Took.Round(1e6).String()}
	for _, e := range sn.Errors {
		v.Errors = append(v.Errors, e.Task+": "+e.Error)
	}
	if sn.TasksTotal > 0 {
		v.Percent = sn.TasksDone * 100 / sn.TasksTotal
	}
	return v
}

func options(values []string, label func(string) string) []templates.InvOption {
	out := make([]templates.InvOption, len(values))
	for i, v := range values {
		out[i] = templates.InvOption{Value: v, Label: v}
		if label != nil {
			out[i].Label = label(v)
		}
	}
	return out
}

// current returns the discovery queued or running, if any.
func current(hist []inventory.Snapshot) *templates.SnapshotView {
	for _, sn := range hist {
		if sn.State == inventory.Queued || sn.State == inventory.Running {
			v := snapshotView(sn)
			return &v
		}
	}
	return nil
}

func (s *Server) inventoryList(c echo.Context) error {
	inv, err := s.inventorySvc()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	u := currentUser(c)
	f, fv, ferr := parseInventoryFilter(c.QueryParams())
	v := templates.InventoryView{Filter: fv, CanDiscover: u.Has(staff.Ops, staff.Admin), AWSReady: inv.CanDiscover()}
	for _, e := range regions.EnvironmentNames() {
		v.Environments = append(v.Environments, templates.InvOption{Value: e, Label: e})
	}
	for _, j := range regions.Jurisdictions() {
		v.Jurisdictions = append(v.Jurisdictions, templates.InvOption{Value: j.ID, Label: j.Name})
	}
	hist, err := inv.Snapshots(ctx, 10)
	if err != nil {
		return err
	}
	v.Current = current(hist)
	for _, sn := range hist {
		v.History = append(v.History, snapshotView(sn))
	}
	latest, err := inv.Latest(ctx)
	if apperr.KindOf(err) == apperr.NotFound {
		return s.render(c, http.StatusOK, templates.Inventory(s.page(c, "Inventory", "inventory"), v))
	} else if err != nil {
		return err
	}
	lv := snapshotView(latest)
	v.Latest = &lv
	facetsOf := latest.ID
	if f.Snapshot != 0 {
		facetsOf = f.Snapshot
	}
	facets, err := inv.Facets(ctx, facetsOf)
	if err != nil {
		return err
	}
	v.Regions, v.Services, v.Types, v.Stacks = options(facets.Regions, nil), options(facets.Services, inventory.ServiceLabel), options(facets.Types, nil), options(facets.Stacks, nil)
	if ch, err := inv.Compare(ctx, 0, 0); err == nil && ch.To.ID != 0 {
		v.ChangesURL = fmt.Sprintf("/inventory/changes?from=%d&to=%d", ch.From.ID, ch.To.ID)
	}
	q := c.QueryParams()
	q.Del("after")
	v.ExportURL = "/inventory/export.csv?" + q.Encode()
	status := http.StatusOK
	if ferr != nil {
		v.Errors, status = apperr.FieldsOf(ferr), http.StatusBadRequest
		return s.render(c, status, templates.Inventory(s.page(c, "Inventory", "inventory"), v))
	}
	if f.Limit == 0 {
		f.Limit = inventoryPageSize
	}
	p, err := inv.Query(ctx, f)
	if err != nil {
		return err
	}
	if f.Snapshot != 0 {
		sv := snapshotView(p.Snapshot)
		v.Latest = &sv
	}
	for _, r := range p.Resources {
		v.Rows = append(v.Rows, inventoryRow(r, f.Snapshot))
	}
	v.Total = p.Total
	for _, sc := range p.Counts {
		cq := c.QueryParams()
		cq.Del("after")
		cq.Set("service", sc.Service)
		v.Counts = append(v.Counts, templates.ServiceCountView{Service: sc.Service, Label: sc.Label, Total: sc.Total, Managed: sc.Managed,
			Unmanaged: sc.Unmanaged, Violations: sc.Violations, URL: "/inventory?" + cq.Encode()})
	}
	if p.NextAfter != 0 {
		nq := c.QueryParams()
		nq.Set("after", strconv.FormatInt(p.NextAfter, 10))
		v.NextURL = "/inventory?" + nq.Encode()
	}
	if f.After != 0 {
		v.FirstURL = "/inventory?" + q.Encode()
	}
	return s.render(c, status, templates.Inventory(s.page(c, "Inventory", "inventory"), v))
}

// inventoryProgress is the htmx fragment the discovery panel polls.
func (s *Server) inventoryProgress(c echo.Context) error {
	inv, err := s.inventorySvc()
	if err != nil {
		return err
	}
	hist, err := inv.Snapshots(c.Request().Context(), 1)
	if err != nil {
		return err
	}
	if len(hist) == 0 {
		return apperr.New(apperr.NotFound, "no discovery has been requested yet")
	}
	return s.render(c, http.StatusOK, templates.InventoryProgress(snapshotView(hist[0])))
}

func (s *Server) inventoryDiscover(c echo.Context) error {
	inv, err := s.inventorySvc()
	if err != nil {
		return err
	}
	sn, err := inv.Request(c.Request().Context(), who(c))
	if err != nil {
		return err
	}
	if sn.State == inventory.Running {
		s.flash(c, fmt.Sprintf("Discovery #%d is already running; its progress is shown below.", sn.ID))
	} else {
		s.flash(c, fmt.Sprintf("Discovery #%d queued: it reads every account and region; progress is shown below.", sn.ID))
	}
	return c.Redirect(http.StatusSeeOther, "/inventory")
}

func (s *Server) inventoryResource(c echo.Context) error {
	inv, err := s.inventorySvc()
	if err != nil {
		return err
	}
	arn := c.QueryParam("arn")
	if arn == "" {
		return apperr.New(apperr.Invalid, "arn is missing: open a resource from the inventory list")
	}
	var snap int64
	if raw := c.QueryParam("snapshot"); raw != "" {
		if snap, err = strconv.ParseInt(raw, 10, 64); err != nil || snap <= 0 {
			return &apperr.Error{Kind: apperr.Invalid, Message: "snapshot must be a discovery number", Fields: map[string]string{"snapshot": "must be a discovery number"}}
		}
	}
	r, sn, err := inv.Get(c.Request().Context(), snap, arn)
	if err != nil {
		return err
	}
	v := templates.InventoryResourceView{Row: inventoryRow(r, snap), Snapshot: snapshotView(sn)}
	for _, kv := range inventory.TagList(r.Tags) {
		k, val, _ := strings.Cut(kv, "=")
		v.Tags = append(v.Tags, templates.TagView{Key: k, Value: val, URL: "/inventory?" + url.Values{"tag": {kv}}.Encode()})
	}
	return s.render(c, http.StatusOK, templates.InventoryResource(s.page(c, r.Name, "inventory"), v))
}

func parseSnapshotID(q url.Values, name string, v *apperr.Validation) int64 {
	raw := q.Get(name)
	if raw == "" {
		return 0
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n <= 0 {
		v.Add(name, "must be a discovery number")
		return 0
	}
	return n
}

// compareParams reads from and to; with only to, from is the discovery
// before it, and with only from, to is the latest.
func (s *Server) compareParams(c echo.Context, inv *inventory.Service) (from, to int64, err error) {
	var v apperr.Validation
	q := c.QueryParams()
	from, to = parseSnapshotID(q, "from", &v), parseSnapshotID(q, "to", &v)
	if err := v.Err(); err != nil {
		return 0, 0, err
	}
	if to != 0 && from == 0 {
		hist, err := inv.Snapshots(c.Request().Context(), 200)
		if err != nil {
			return 0, 0, err
		}
		for _, sn := range hist {
			if sn.ID < to && sn.Usable() {
				from = sn.ID
				break
			}
		}
		if from == 0 {
			from = to
		}
	}
	if from != 0 && to == 0 {
		// With only from, the comparison is with the latest discovery.
		latest, err := inv.Latest(c.Request().Context())
		if err != nil {
			return 0, 0, err
		}
		to = latest.ID
	}
	return from, to, nil
}

func (s *Server) inventoryChanges(c echo.Context) error {
	inv, err := s.inventorySvc()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	v := templates.InventoryChangesView{}
	hist, err := inv.Snapshots(ctx, 30)
	if err != nil {
		return err
	}
	for _, sn := range hist {
		v.Snapshots = append(v.Snapshots, snapshotView(sn))
	}
	page := s.page(c, "Inventory changes", "inventory")
	from, to, err := s.compareParams(c, inv)
	if apperr.KindOf(err) == apperr.Invalid {
		v.Errors = apperr.FieldsOf(err)
		return s.render(c, http.StatusBadRequest, templates.InventoryChanges(page, v))
	} else if err != nil {
		return err
	}
	ch, err := inv.Compare(ctx, from, to)
	if err != nil {
		return err
	}
	if ch.To.ID == 0 {
		return s.render(c, http.StatusOK, templates.InventoryChanges(page, v))
	}
	fv, tv := snapshotView(ch.From), snapshotView(ch.To)
	v.From, v.To = &fv, &tv
	v.NAdded, v.NRemoved, v.NChanged, v.Truncated = ch.NAdded, ch.NRemoved, ch.NChanged, ch.Truncated()
	for _, a := range ch.Added {
		v.Added = append(v.Added, inventoryRow(a.Resource, ch.To.ID))
	}
	for _, r := range ch.Removed {
		v.Removed = append(v.Removed, inventoryRow(r.Resource, ch.From.ID))
	}
	for _, x := range ch.Changed {
		v.Changed = append(v.Changed, templates.ChangeView{Row: inventoryRow(x.Resource, ch.To.ID), Details: x.Details})
	}
	return s.render(c, http.StatusOK, templates.InventoryChanges(page, v))
}

func (s *Server) inventoryExport(c echo.Context) error {
	inv, err := s.inventorySvc()
	if err != nil {
		return err
	}
	f, _, err := parseInventoryFilter(c.QueryParams())
	if err != nil {
		return err
	}
	// Resolve the snapshot before the header goes out, so that "nothing
	// discovered" is an error page, not an empty file.
	sn, err := inv.Latest(c.Request().Context())
	if err != nil {
		return err
	}
	if f.Snapshot == 0 {
		f.Snapshot = sn.ID
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="inventory-%d-%s.csv"`, f.Snapshot, s.deps.Now().UTC().Format("20060102-150405")))
	c.Response().WriteHeader(http.StatusOK)
	return s.auditedExport(c, "inventory", "csv", true, func(w io.Writer) error { return inv.ExportCSV(c.Request().Context(), f, w) })
}

// inventorySummary is the Overview's inventory card; nil when the inventory
// is not available.
func (s *Server) inventorySummary(c echo.Context) (*templates.InventorySummaryView, error) {
	if s.deps.Inventory == nil {
		return nil, nil
	}
	sum, err := s.deps.Inventory.Summary(c.Request().Context())
	if apperr.KindOf(err) == apperr.NotFound {
		return &templates.InventorySummaryView{}, nil
	} else if err != nil {
		return nil, err
	}
	v := &templates.InventorySummaryView{Discovered: true, At: sum.Snapshot.FinishedAt, Total: sum.Total, Unmanaged: sum.Unmanaged, Violations: sum.Violations}
	for _, sc := range sum.Counts {
		v.Counts = append(v.Counts, templates.ServiceCountView{Service: sc.Service, Label: sc.Label, Total: sc.Total, Managed: sc.Managed,
			Unmanaged: sc.Unmanaged, Violations: sc.Violations, URL: "/inventory?" + url.Values{"service": {sc.Service}}.Encode()})
	}
	return v, nil
}
