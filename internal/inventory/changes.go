package inventory

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// MaxChanges bounds each kind of change a comparison lists.
const MaxChanges = 500

// Change is one difference between two snapshots.
type Change struct {
	Kind     string   `json:"kind"` // "added", "removed", "changed"
	Resource Resource `json:"resource"`
	// Details list what changed, e.g. "tag owner: alice → bob".
	Details []string `json:"details,omitempty"`
}

// Changes are the differences between two snapshots.
type Changes struct {
	From, To                   Snapshot
	Added, Removed, Changed    []Change
	NAdded, NRemoved, NChanged int
}

// Truncated reports whether a kind of change has more than MaxChanges.
func (c Changes) Truncated() bool {
	return c.NAdded > len(c.Added) || c.NRemoved > len(c.Removed) || c.NChanged > len(c.Changed)
}

// Compare lists what was added, removed and changed (tags, settings,
// region, managed state, residency) from snapshot from to snapshot to.
// Zero ids pick the two newest usable snapshots.
func (s *Service) Compare(ctx context.Context, from, to int64) (Changes, error) {
	var out Changes
	var err error
	if from == 0 && to == 0 {
		rows, err := s.db.QueryContext(ctx, `SELECT id FROM inventory_snapshots WHERE state IN ('succeeded', 'partial') ORDER BY id DESC LIMIT 2`)
		if err != nil {
			return out, fmt.Errorf("inventory: compare: %w", err)
		}
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return out, err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if len(ids) < 2 {
			return out, nil
		}
		to, from = ids[0], ids[1]
	}
	if out.From, err = s.resolve(ctx, from); err != nil {
		return out, err
	}
	if out.To, err = s.resolve(ctx, to); err != nil {
		return out, err
	}
	one := func(kind, q string, args ...any) ([]Change, error) {
		rows, err := s.db.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("inventory: compare: %w", err)
		}
		defer rows.Close()
		var cs []Change
		for rows.Next() {
			r, err := scanResource(rows)
			if err != nil {
				return nil, err
			}
			cs = append(cs, Change{Kind: kind, Resource: r})
		}
		return cs, rows.Err()
	}
	count := func(q string, args ...any) (int, error) {
		var n int
		err := s.db.QueryRowContext(ctx, q, args...).Scan(&n)
		return n, err
	}
	const missing = ` FROM inventory_resources r WHERE r.snapshot_id = ? AND NOT EXISTS (SELECT 1 FROM inventory_resources o WHERE o.snapshot_id = ? AND o.arn = r.arn)`
	const differs = ` FROM inventory_resources r JOIN inventory_resources o ON o.snapshot_id = ? AND o.arn = r.arn WHERE r.snapshot_id = ?
		AND (o.tags <> r.tags OR o.settings <> r.settings OR o.region <> r.region OR o.managed <> r.managed OR o.violation <> r.violation OR o.stack <> r.stack)`
	a, b := out.From.ID, out.To.ID
	if out.Added, err = one("added", `SELECT `+resourceCols+missing+` ORDER BY r.id LIMIT ?`, b, a, MaxChanges); err != nil {
		return out, err
	}
	if out.Removed, err = one("removed", `SELECT `+resourceCols+missing+` ORDER BY r.id LIMIT ?`, a, b, MaxChanges); err != nil {
		return out, err
	}
	if out.Changed, err = one("changed", `SELECT `+resourceCols+differs+` ORDER BY r.id LIMIT ?`, a, b, MaxChanges); err != nil {
		return out, err
	}
	if out.NAdded, err = count(`SELECT COUNT(*)`+missing, b, a); err != nil {
		return out, err
	}
	if out.NRemoved, err = count(`SELECT COUNT(*)`+missing, a, b); err != nil {
		return out, err
	}
	if out.NChanged, err = count(`SELECT COUNT(*)`+differs, a, b); err != nil {
		return out, err
	}
	for i := range out.Changed {
		before, _, err := s.getIn(ctx, a, out.Changed[i].Resource.ARN)
		if err != nil {
			return out, err
		}
		out.Changed[i].Details = describeChange(before, out.Changed[i].Resource)
	}
	return out, nil
}

func (s *Service) getIn(ctx context.Context, snapshot int64, arn string) (Resource, bool, error) {
	r, err := scanResource(s.db.QueryRowContext(ctx, `SELECT `+resourceCols+` FROM inventory_resources r WHERE r.snapshot_id = ? AND r.arn = ?`, snapshot, arn))
	if err != nil {
		return r, false, fmt.Errorf("inventory: compare %s: %w", arn, err)
	}
	return r, true, nil
}

// describeChange lists the differences between two records of a resource.
func describeChange(a, b Resource) []string {
	var out []string
	val := func(s string) string {
		if s == "" {
			return "—"
		}
		return s
	}
	diff := func(what, x, y string) {
		if x != y {
			out = append(out, fmt.Sprintf("%s: %s → %s", what, val(x), val(y)))
		}
	}
	diff("region", a.Region, b.Region)
	diff("managed", yesNo(a.Managed), yesNo(b.Managed))
	diff("stack", a.Stack, b.Stack)
	diff("residency", a.Violation, b.Violation)
	sa, sb := a.Settings, b.Settings
	diff("encryption", sa.Encryption, sb.Encryption)
	diff("KMS key", sa.KMSKey, sb.KMSKey)
	diff("public access", sa.PublicAccess, sb.PublicAccess)
	diff("versioning", sa.Versioning, sb.Versioning)
	diff("backups", sa.Backups, sb.Backups)
	diff("Multi-AZ", sa.MultiAZ, sb.MultiAZ)
	diff("deletion protection", sa.Deletion, sb.Deletion)
	keys := map[string]bool{}
	for k := range a.Tags {
		keys[k] = true
	}
	for k := range b.Tags {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		x, inA := a.Tags[k]
		y, inB := b.Tags[k]
		switch {
		case !inA:
			out = append(out, fmt.Sprintf("tag %s added: %s", k, val(y)))
		case !inB:
			out = append(out, fmt.Sprintf("tag %s removed (was %s)", k, val(x)))
		case x != y:
			out = append(out, fmt.Sprintf("tag %s: %s → %s", k, val(x), val(y)))
		}
	}
	return out
}

// TagList renders tags as "k=v" sorted by key.
func TagList(tags map[string]string) []string {
	out := make([]string, 0, len(tags))
	for k, v := range tags {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// JoinTags renders tags on one line.
func JoinTags(tags map[string]string) string { return strings.Join(TagList(tags), ", ") }
