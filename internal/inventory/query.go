package inventory

import (
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"portal/internal/apperr"
	"portal/internal/regions"
)

// MaxLimit is the largest page a query returns.
const MaxLimit = 500

// Filter selects resources of one snapshot. Empty fields match everything.
type Filter struct {
	Snapshot     int64 // 0: the latest usable snapshot
	Environment  string
	Jurisdiction string
	Region       string
	Service      string
	Type         string
	Stack        string
	// Tag is "key" (has the tag) or "key=value".
	Tag string
	// Managed is "yes" (carries a portal:stack tag of its account), "no",
	// or "" for both.
	Managed string
	// Violations keeps only residency violations.
	Violations bool
	// Query matches part of the ARN.
	Query string
	// After is the id of the last resource of the previous page.
	After int64
	Limit int
}

// Validate checks the filter, naming each bad field.
func (f Filter) Validate() error {
	var v apperr.Validation
	if f.Environment != "" && !slices.Contains(regions.EnvironmentNames(), f.Environment) {
		v.Add("environment", "must be dev, test or prod")
	}
	if f.Jurisdiction != "" {
		if _, ok := regions.JurisdictionByID(f.Jurisdiction); !ok {
			v.Add("jurisdiction", "must be us, eu or apac")
		}
	}
	if f.Managed != "" && f.Managed != "yes" && f.Managed != "no" {
		v.Add("managed", "must be yes or no")
	}
	if k, _, _ := strings.Cut(f.Tag, "="); f.Tag != "" && strings.TrimSpace(k) == "" {
		v.Add("tag", "needs a key: key or key=value")
	}
	if f.Limit < 0 || f.Limit > MaxLimit {
		v.Add("limit", fmt.Sprintf("must be between 1 and %d", MaxLimit))
	}
	if f.After < 0 {
		v.Add("after", "must be a resource number")
	}
	return v.Err()
}

// Page is one page of a query.
type Page struct {
	Snapshot  Snapshot
	Resources []Resource
	// Total is how many resources match the filter (all pages).
	Total int
	// NextAfter is the After of the next page, 0 on the last page.
	NextAfter int64
	// Counts are the matching resources per service.
	Counts []ServiceCount
}

// ServiceCount is how many resources of a service a snapshot holds.
type ServiceCount struct {
	Service    string `json:"service"`
	Label      string `json:"label"`
	Total      int    `json:"total"`
	Managed    int    `json:"managed"`
	Unmanaged  int    `json:"unmanaged"`
	Violations int    `json:"residency_violations"`
}

// where builds the filter's SQL condition on inventory_resources r.
func (f Filter) where(snapshot int64, withAfter bool) (string, []any) {
	where := []string{"r.snapshot_id = ?"}
	args := []any{snapshot}
	eq := func(col, v string) {
		if v != "" {
			where = append(where, "r."+col+" = ?")
			args = append(args, v)
		}
	}
	eq("environment", f.Environment)
	eq("jurisdiction", f.Jurisdiction)
	eq("region", f.Region)
	eq("service", f.Service)
	eq("type", f.Type)
	eq("stack", f.Stack)
	switch f.Managed {
	case "yes":
		where = append(where, "r.managed = 1")
	case "no":
		where = append(where, "r.managed = 0")
	}
	if f.Violations {
		where = append(where, "r.violation <> ''")
	}
	if f.Tag != "" {
		k, val, hasVal := strings.Cut(f.Tag, "=")
		if hasVal {
			where = append(where, "r.id IN (SELECT resource FROM inventory_tags WHERE key = ? AND value = ?)")
			args = append(args, strings.TrimSpace(k), strings.TrimSpace(val))
		} else {
			where = append(where, "r.id IN (SELECT resource FROM inventory_tags WHERE key = ?)")
			args = append(args, strings.TrimSpace(k))
		}
	}
	if q := strings.TrimSpace(f.Query); q != "" {
		where = append(where, `r.arn LIKE ? ESCAPE '\'`)
		args = append(args, "%"+likeEscape(q)+"%")
	}
	if withAfter && f.After > 0 {
		where = append(where, "r.id > ?")
		args = append(args, f.After)
	}
	return strings.Join(where, " AND "), args
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

const resourceCols = `r.id, r.arn, r.environment, r.account_id, r.region, r.service, r.type, r.name, r.managed, r.stack, r.portal_resource, r.version,
	r.jurisdiction, r.jurisdiction_by_region, r.violation, r.note, r.tags, r.settings`

func scanResource(row interface{ Scan(...any) error }) (Resource, error) {
	var r Resource
	var managed, byRegion int
	var tags, settings string
	if err := row.Scan(&r.ID, &r.ARN, &r.Environment, &r.AccountID, &r.Region, &r.Service, &r.Type, &r.Name, &managed, &r.Stack, &r.PortalID, &r.Version,
		&r.Jurisdiction, &byRegion, &r.Violation, &r.Note, &tags, &settings); err != nil {
		return r, err
	}
	r.Managed, r.JurisdictionByRegion = managed == 1, byRegion == 1
	if err := json.Unmarshal([]byte(tags), &r.Tags); err != nil {
		return r, fmt.Errorf("inventory: tags of %s: %w", r.ARN, err)
	}
	if err := json.Unmarshal([]byte(settings), &r.Settings); err != nil {
		return r, fmt.Errorf("inventory: settings of %s: %w", r.ARN, err)
	}
	return r, nil
}

// resolve returns the snapshot a filter reads.
func (s *Service) resolve(ctx context.Context, id int64) (Snapshot, error) {
	if id == 0 {
		return s.Latest(ctx)
	}
	sn, err := s.Snapshot(ctx, id)
	if err != nil {
		return sn, err
	}
	if !sn.Usable() {
		return sn, apperr.New(apperr.Conflict, "discovery #%d is %s: its resources cannot be listed", id, sn.State)
	}
	return sn, nil
}

// Query returns a page of the resources matching f, with the total and
// the counts per service of everything matching.
func (s *Service) Query(ctx context.Context, f Filter) (Page, error) {
	if err := f.Validate(); err != nil {
		return Page{}, err
	}
	if f.Limit == 0 {
		f.Limit = 100
	}
	sn, err := s.resolve(ctx, f.Snapshot)
	if err != nil {
		return Page{}, err
	}
	p := Page{Snapshot: sn}
	where, args := f.where(sn.ID, true)
	rows, err := s.db.QueryContext(ctx, `SELECT `+resourceCols+` FROM inventory_resources r WHERE `+where+` ORDER BY r.id LIMIT ?`, append(args, f.Limit+1)...)
	if err != nil {
		return p, fmt.Errorf("inventory: query: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanResource(rows)
		if err != nil {
			return p, err
		}
		p.Resources = append(p.Resources, r)
	}
	if err := rows.Err(); err != nil {
		return p, fmt.Errorf("inventory: query: %w", err)
	}
	if len(p.Resources) > f.Limit {
		p.Resources = p.Resources[:f.Limit]
		p.NextAfter = p.Resources[f.Limit-1].ID
	}
	if p.Counts, err = s.counts(ctx, f, sn.ID); err != nil {
		return p, err
	}
	for _, c := range p.Counts {
		p.Total += c.Total
	}
	if err := s.link(ctx, p.Resources); err != nil {
		return p, err
	}
	return p, nil
}

func (s *Service) counts(ctx context.Context, f Filter, snapshot int64) ([]ServiceCount, error) {
	where, args := f.where(snapshot, false)
	rows, err := s.db.QueryContext(ctx, `SELECT r.service, COUNT(*), SUM(r.managed), SUM(r.violation <> '') FROM inventory_resources r WHERE `+where+` GROUP BY r.service`, args...)
	if err != nil {
		return nil, fmt.Errorf("inventory: counts: %w", err)
	}
	defer rows.Close()
	var out []ServiceCount
	for rows.Next() {
		var c ServiceCount
		if err := rows.Scan(&c.Service, &c.Total, &c.Managed, &c.Violations); err != nil {
			return nil, err
		}
		c.Label, c.Unmanaged = ServiceLabel(c.Service), c.Total-c.Managed
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Total > out[j].Total || out[i].Total == out[j].Total && out[i].Label < out[j].Label
	})
	return out, rows.Err()
}

// Summary is what the Overview shows: the latest snapshot's counts per
// service.
type Summary struct {
	Snapshot   Snapshot
	Counts     []ServiceCount
	Total      int
	Unmanaged  int
	Violations int
}

// Summary returns the latest snapshot's counts; a NotFound error when
// nothing has been discovered yet.
func (s *Service) Summary(ctx context.Context) (Summary, error) {
	sn, err := s.Latest(ctx)
	if err != nil {
		return Summary{}, err
	}
	out := Summary{Snapshot: sn}
	if out.Counts, err = s.counts(ctx, Filter{}, sn.ID); err != nil {
		return out, err
	}
	for _, c := range out.Counts {
		out.Total += c.Total
		out.Unmanaged += c.Unmanaged
		out.Violations += c.Violations
	}
	return out, nil
}

// Facets are the values present in a snapshot, for filter menus.
type Facets struct {
	Regions, Services, Types, Stacks []string
}

// Facets lists the regions, services, types and stacks of snapshot id.
func (s *Service) Facets(ctx context.Context, id int64) (Facets, error) {
	var f Facets
	for _, q := range []struct {
		col string
		out *[]string
	}{{"region", &f.Regions}, {"service", &f.Services}, {"type", &f.Types}, {"stack", &f.Stacks}} {
		rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT `+q.col+` FROM inventory_resources WHERE snapshot_id = ? AND `+q.col+` <> '' ORDER BY 1`, id)
		if err != nil {
			return f, fmt.Errorf("inventory: facets: %w", err)
		}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return f, err
			}
			*q.out = append(*q.out, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return f, err
		}
	}
	return f, nil
}

// Get returns resource arn as snapshot id (0: latest) recorded it.
func (s *Service) Get(ctx context.Context, id int64, arn string) (Resource, Snapshot, error) {
	sn, err := s.resolve(ctx, id)
	if err != nil {
		return Resource{}, sn, err
	}
	r, err := scanResource(s.db.QueryRowContext(ctx, `SELECT `+resourceCols+` FROM inventory_resources r WHERE r.snapshot_id = ? AND r.arn = ?`, sn.ID, arn))
	if errors.Is(err, sql.ErrNoRows) {
		return r, sn, apperr.New(apperr.NotFound, "discovery #%d found no resource %s", sn.ID, arn)
	} else if err != nil {
		return r, sn, fmt.Errorf("inventory: get %s: %w", arn, err)
	}
	rs := []Resource{r}
	if err := s.link(ctx, rs); err != nil {
		return r, sn, err
	}
	return rs[0], sn, nil
}

// Managing links a managed resource to what the portal knows of it.
type Managing struct {
	// InState is true when the portal's state of the stack records it.
	InState bool `json:"in_state"`
	// RunID is the latest run that created, updated or replaced it.
	RunID int64 `json:"run_id,omitempty"`
	// BlueprintVersion is the blueprint version that run applied (or,
	// without a run, the latest plan of the tagged stack version).
	BlueprintVersion string `json:"blueprint_version,omitempty"`
}

// link fills Managing on the managed resources of rs.
func (s *Service) link(ctx context.Context, rs []Resource) error {
	for i := range rs {
		r := &rs[i]
		if !r.Managed || r.PortalID == "" {
			continue
		}
		m := &Managing{}
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM stack_resources WHERE stack = ? AND resource_id = ?`, r.Stack, r.PortalID).Scan(&n); err != nil {
			return fmt.Errorf("inventory: state of %s: %w", r.ARN, err)
		}
		m.InState = n > 0
		err := s.db.QueryRowContext(ctx, `SELECT ru.id, p.blueprint_version FROM runs ru JOIN run_steps st ON st.run_id = ru.id JOIN plans p ON p.id = ru.plan_id
			WHERE ru.stack = ? AND st.resource_id = ? AND st.state = 'done' AND st.action IN ('create', 'update', 'replace')
			ORDER BY ru.id DESC LIMIT 1`, r.Stack, r.PortalID).Scan(&m.RunID, &m.BlueprintVersion)
		if errors.Is(err, sql.ErrNoRows) && r.Version != "" {
			err = s.db.QueryRowContext(ctx, `SELECT blueprint_version FROM plans WHERE stack = ? AND version = ? ORDER BY id DESC LIMIT 1`, r.Stack, r.Version).Scan(&m.BlueprintVersion)
		}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("inventory: run of %s: %w", r.ARN, err)
		}
		r.Managing = m
	}
	return nil
}

// CSVHeader is the first line of an export.
var CSVHeader = []string{"arn", "environment", "account_id", "region", "service", "type", "name", "managed", "stack", "portal_resource", "version",
	"jurisdiction", "residency_violation", "note", "encryption", "kms_key", "public_access", "versioning", "backups", "multi_az", "deletion_protection", "tags"}

// ExportCSV writes every resource matching f (ignoring After and Limit) as
// CSV, streaming row by row.
func (s *Service) ExportCSV(ctx context.Context, f Filter, w io.Writer) error {
	if err := f.Validate(); err != nil {
		return err
	}
	sn, err := s.resolve(ctx, f.Snapshot)
	if err != nil {
		return err
	}
	where, args := f.where(sn.ID, false)
	rows, err := s.db.QueryContext(ctx, `SELECT `+resourceCols+` FROM inventory_resources r WHERE `+where+` ORDER BY r.id`, args...)
	if err != nil {
		return fmt.Errorf("inventory: export: %w", err)
	}
	defer rows.Close()
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	n := 0
	for rows.Next() {
		r, err := scanResource(rows)
		if err != nil {
			return err
		}
		if err := cw.Write(csvRow(r)); err != nil {
			return err
		}
		if n++; n%500 == 0 {
			cw.Flush()
			if fl, ok := w.(interface{ Flush() }); ok {
				fl.Flush()
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("inventory: export: %w", err)
	}
	cw.Flush()
	return cw.Error()
}

func csvRow(r Resource) []string {
	keys := make([]string, 0, len(r.Tags))
	for k := range r.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tags := make([]string, len(keys))
	for i, k := range keys {
		tags[i] = k + "=" + r.Tags[k]
	}
	st := r.Settings
	return []string{r.ARN, r.Environment, r.AccountID, r.Region, r.Service, r.Type, r.Name, yesNo(r.Managed), r.Stack, r.PortalID, r.Version,
		r.Jurisdiction, r.Violation, r.Note, st.Encryption, st.KMSKey, st.PublicAccess, st.Versioning, st.Backups, st.MultiAZ, st.Deletion, strings.Join(tags, "; ")}
}
