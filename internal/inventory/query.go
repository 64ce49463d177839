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
	"portal/internal/csvcell"
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

// span is the range of row ids a snapshot's resources occupy: they are
// inserted in one transaction, so the range holds nothing else, and a page
// is a scan of that range in id (display) order.
type span struct{ lo, hi int64 }

func (s *Service) span(ctx context.Context, id int64) (span, error) {
	// Two indexed look-ups: MIN and MAX together would scan the snapshot.
	var sp span
	for _, q := range []struct {
		order string
		into  *int64
	}{{"", &sp.lo}, {" DESC", &sp.hi}} {
		err := s.db.QueryRowContext(ctx, `SELECT id FROM inventory_resources WHERE snapshot_id = ? ORDER BY id`+q.order+` LIMIT 1`, id).Scan(q.into)
		if errors.Is(err, sql.ErrNoRows) {
			return span{}, nil
		} else if err != nil {
			return span{}, fmt.Errorf("inventory: rows of snapshot %d: %w", id, err)
		}
	}
	return sp, nil
}

// unfiltered reports whether f selects a whole snapshot.
func (f Filter) unfiltered() bool {
	f.Snapshot, f.After, f.Limit = 0, 0, 0
	return f == Filter{}
}

// where builds the filter's SQL condition on inventory_resources r: by
// snapshot id (for counts, answered from the covering index) or, with a
// span, by row id range (for pages, read in id order).
func (f Filter) where(snapshot int64, withAfter bool, sp *span) (string, []any) {
	where := []string{"r.snapshot_id = ?"}
	args := []any{snapshot}
	if sp != nil {
		// One range on the primary key, so SQLite scans exactly the rows
		// after the previous page, in order.
		lo := sp.lo
		if withAfter && f.After >= lo {
			lo = f.After + 1
		}
		where, args = []string{"r.id BETWEEN ? AND ?"}, []any{lo, sp.hi}
	}
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
		where = append(where, "r.violates = 1")
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
		// instr is several times faster than LIKE over 100,000 ARNs.
		where = append(where, `instr(r.arn, ?) > 0`)
		args = append(args, q)
	}
	if withAfter && f.After > 0 && sp == nil {
		where = append(where, "r.id > ?")
		args = append(args, f.After)
	}
	return strings.Join(where, " AND "), args
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
	sp, err := s.span(ctx, sn.ID)
	if err != nil {
		return p, err
	}
	where, args := f.where(sn.ID, true, &sp)
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
	if f.unfiltered() {
		if st, ok, err := s.summaryOf(ctx, snapshot); err != nil || ok {
			return st.Counts, err
		}
	}
	var sp *span
	if strings.TrimSpace(f.Query) != "" {
		// The ARN is not in the covering index: read the table in order
		// rather than look every index entry up in it.
		x, err := s.span(ctx, snapshot)
		if err != nil {
			return nil, err
		}
		sp = &x
	}
	where, args := f.where(snapshot, false, sp)
	rows, err := s.db.QueryContext(ctx, `SELECT r.service, COUNT(*), SUM(r.managed), SUM(r.violates) FROM inventory_resources r WHERE `+where+` GROUP BY r.service`, args...)
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
	sortCounts(out)
	return out, rows.Err()
}

func sortCounts(cs []ServiceCount) {
	sort.Slice(cs, func(i, j int) bool {
		return cs[i].Total > cs[j].Total || cs[i].Total == cs[j].Total && cs[i].Label < cs[j].Label
	})
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
	if st, ok, err := s.summaryOf(ctx, id); err != nil || ok {
		return st.Facets, err
	}
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

// link fills Managing on the managed resources of rs, with one query per
// kind of link for the whole page.
func (s *Service) link(ctx context.Context, rs []Resource) error {
	stacks := map[string]bool{}
	for _, r := range rs {
		if r.Managed && r.Stack != "" {
			stacks[r.Stack] = true
		}
	}
	if len(stacks) == 0 {
		return nil
	}
	in := make([]string, 0, len(stacks))
	args := make([]any, 0, len(stacks))
	for st := range stacks {
		in = append(in, "?")
		args = append(args, st)
	}
	list := "(" + strings.Join(in, ", ") + ")"
	type key struct{ stack, id string }
	inState := map[key]bool{}
	type run struct {
		id int64
		bp string
	}
	lastRun := map[key]run{}
	planOf := map[key]string{} // (stack, stack version) -> blueprint version
	err := s.each(ctx, `SELECT stack, resource_id FROM stack_resources WHERE stack IN `+list, args, func(sc func(...any) error) error {
		var k key
		if err := sc(&k.stack, &k.id); err != nil {
			return err
		}
		inState[k] = true
		return nil
	})
	if err != nil {
		return err
	}
	err = s.each(ctx, `SELECT ru.stack, st.resource_id, ru.id, p.blueprint_version FROM runs ru JOIN run_steps st ON st.run_id = ru.id JOIN plans p ON p.id = ru.plan_id
		WHERE ru.stack IN `+list+` AND st.state = 'done' AND st.action IN ('create', 'update', 'replace') ORDER BY ru.id`, args, func(sc func(...any) error) error {
		var k key
		var r run
		if err := sc(&k.stack, &k.id, &r.id, &r.bp); err != nil {
			return err
		}
		lastRun[k] = r
		return nil
	})
	if err != nil {
		return err
	}
	err = s.each(ctx, `SELECT stack, version, blueprint_version FROM plans WHERE stack IN `+list+` ORDER BY id`, args, func(sc func(...any) error) error {
		var k key
		var bp string
		if err := sc(&k.stack, &k.id, &bp); err != nil {
			return err
		}
		planOf[k] = bp
		return nil
	})
	if err != nil {
		return err
	}
	for i := range rs {
		r := &rs[i]
		if !r.Managed || r.Stack == "" {
			continue
		}
		k := key{r.Stack, r.PortalID}
		m := &Managing{InState: r.PortalID != "" && inState[k]}
		if run, ok := lastRun[k]; ok && r.PortalID != "" {
			m.RunID, m.BlueprintVersion = run.id, run.bp
		} else if r.Version != "" {
			m.BlueprintVersion = planOf[key{r.Stack, r.Version}]
		}
		r.Managing = m
	}
	return nil
}

// each runs q and calls fn with a scanner for every row.
func (s *Service) each(ctx context.Context, q string, args []any, fn func(scan func(...any) error) error) error {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("inventory: links: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows.Scan); err != nil {
			return fmt.Errorf("inventory: links: %w", err)
		}
	}
	return rows.Err()
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
	sp, err := s.span(ctx, sn.ID)
	if err != nil {
		return err
	}
	where, args := f.where(sn.ID, false, &sp)
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
	// Names, tags and notes come from AWS, that is from whoever tagged the
	// resource: neutralise formulas.
	return csvcell.Row([]string{r.ARN, r.Environment, r.AccountID, r.Region, r.Service, r.Type, r.Name, yesNo(r.Managed), r.Stack, r.PortalID, r.Version,
		r.Jurisdiction, r.Violation, r.Note, st.Encryption, st.KMSKey, st.PublicAccess, st.Versioning, st.Backups, st.MultiAZ, st.Deletion, strings.Join(tags, "; ")})
}
