package engine

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"

	"portal/internal/store"
)

// stateRow is what the portal recorded about one resource.
type stateRow struct {
	Type, Region, PhysicalID, Version string
	Outputs                           map[string]string
}

func (e *Engine) loadState(ctx context.Context, stack string) (map[string]*stateRow, error) {
	rows, err := e.db.QueryContext(ctx, `SELECT resource_id, type, region, physical_id, outputs, version FROM stack_resources WHERE stack = ?`, stack)
	if err != nil {
		return nil, fmt.Errorf("engine: load state of %s: %w", stack, err)
	}
	defer rows.Close()
	out := map[string]*stateRow{}
	for rows.Next() {
		var id, outputs string
		r := &stateRow{}
		if err := rows.Scan(&id, &r.Type, &r.Region, &r.PhysicalID, &outputs, &r.Version); err != nil {
			return nil, fmt.Errorf("engine: scan state: %w", err)
		}
		if err := json.Unmarshal([]byte(outputs), &r.Outputs); err != nil {
			return nil, fmt.Errorf("engine: state of %s/%s: %w", stack, id, err)
		}
		out[id] = r
	}
	return out, rows.Err()
}

// execer is a *sql.Tx or the database.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (e *Engine) saveState(ctx context.Context, tx execer, stack, id, typ, version string, live *Live) error {
	outputs, err := json.Marshal(live.Outputs)
	if err != nil {
		return fmt.Errorf("engine: state of %s/%s: %w", stack, id, err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO stack_resources (stack, resource_id, type, region, physical_id, outputs, version, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (stack, resource_id) DO UPDATE SET type = excluded.type, region = excluded.region, physical_id = excluded.physical_id,
			outputs = excluded.outputs, version = excluded.version, updated_at = excluded.updated_at`,
		stack, id, typ, live.Region, live.PhysicalID, string(outputs), version, store.Time(e.now()))
	if err != nil {
		return fmt.Errorf("engine: save state of %s/%s: %w", stack, id, err)
	}
	return nil
}

func (e *Engine) dropState(ctx context.Context, tx execer, stack, id string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM stack_resources WHERE stack = ? AND resource_id = ?`, stack, id); err != nil {
		return fmt.Errorf("engine: drop state of %s/%s: %w", stack, id, err)
	}
	return nil
}

// ForgetState deletes everything the portal recorded about stack's
// resources (not the resources). The next plan finds them again by their
// ownership tags.
func (e *Engine) ForgetState(ctx context.Context, stack string) error {
	_, err := e.db.ExecContext(ctx, `DELETE FROM stack_resources WHERE stack = ?`, stack)
	return err
}

// StateResource is one resource the portal manages, as listed on pages.
type StateResource struct {
	Stack, ID, Type, Region, PhysicalID, Version string
	Outputs                                      map[string]string
}

// Resources lists what the portal manages in stack.
func (e *Engine) Resources(ctx context.Context, stack string) ([]StateResource, error) {
	st, err := e.loadState(ctx, stack)
	if err != nil {
		return nil, err
	}
	out := make([]StateResource, 0, len(st))
	for id, r := range st {
		out = append(out, StateResource{Stack: stack, ID: id, Type: r.Type, Region: r.Region, PhysicalID: r.PhysicalID, Version: r.Version, Outputs: r.Outputs})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
