package versions

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/store"
)

// MaxLimit bounds one page of List.
const MaxLimit = 200

// ListFilter pages through versions, newest first.
type ListFilter struct {
	BeforeSeq int64 // only versions with a smaller seq; 0 for the newest
	Limit     int   // 1..MaxLimit; 0 means 50
}

func (s *Service) insert(ctx context.Context, by audit.Entry, c *Checked, parent, message string, changed []string) (Version, bool, error) {
	var out Version
	created := false
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if v, err := getVersion(ctx, tx, c.ID); err == nil {
			out = v
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		now := s.now()
		var parentArg any
		if parent != "" {
			parentArg = parent
		}
		var seq int64
		if err := tx.QueryRowContext(ctx, `INSERT INTO blueprint_versions (id, parent_id, author, message, created_at) VALUES (?, ?, ?, ?, ?) RETURNING seq`,
			c.ID, parentArg, by.Actor, message, store.Time(now)).Scan(&seq); err != nil {
			return fmt.Errorf("versions: insert %s: %w", Short(c.ID), err)
		}
		for _, f := range c.Files {
			sum := sha256.Sum256(f.Content)
			h := hex.EncodeToString(sum[:])
			if _, err := tx.ExecContext(ctx, `INSERT INTO blueprint_blobs (sha256, content) VALUES (?, ?) ON CONFLICT (sha256) DO NOTHING`, h, f.Content); err != nil {
				return fmt.Errorf("versions: store %s: %w", f.Path, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO blueprint_files (version_id, path, sha256) VALUES (?, ?, ?)`, c.ID, f.Path, h); err != nil {
				return fmt.Errorf("versions: store %s: %w", f.Path, err)
			}
		}
		var err error
		if out, err = getVersion(ctx, tx, c.ID); err != nil {
			return err
		}
		created = true
		entry := by
		entry.Action = "blueprint.version.create"
		entry.Target = fmt.Sprintf("blueprint-version:%d %s", seq, Short(c.ID))
		entry.Details = map[string]any{"version": c.ID, "parent": parent, "message": message, "changed_files": changed}
		_, err = s.audit.Append(ctx, tx, entry)
		return err
	})
	if err != nil {
		return Version{}, false, err
	}
	if created {
		s.remember(c.ID, c)
	}
	return out, created, nil
}

const versionCols = `v.seq, v.id, COALESCE(v.parent_id, ''), COALESCE(p.seq, 0), v.author, v.message, v.created_at`

// versionFrom joins each version to its parent for the parent's number.
const versionFrom = ` FROM blueprint_versions v LEFT JOIN blueprint_versions p ON p.id = v.parent_id `

type scanner interface{ Scan(...any) error }

func scanVersion(r scanner) (Version, error) {
	var v Version
	var at string
	if err := r.Scan(&v.Seq, &v.ID, &v.Parent, &v.ParentSeq, &v.Author, &v.Message, &at); err != nil {
		return Version{}, err
	}
	t, err := store.ParseTime(at)
	if err != nil {
		return Version{}, fmt.Errorf("versions: created_at of %s: %w", Short(v.ID), err)
	}
	v.CreatedAt = t
	return v, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func getVersion(ctx context.Context, q querier, id string) (Version, error) {
	v, err := scanVersion(q.QueryRowContext(ctx, `SELECT `+versionCols+versionFrom+`WHERE v.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Version{}, notFound(id)
	}
	if err != nil {
		return Version{}, fmt.Errorf("versions: get %s: %w", Short(id), err)
	}
	return v, nil
}

func notFound(id string) error {
	return apperr.Wrap(apperr.NotFound, store.ErrNotFound, "there is no blueprint version %s", Short(id))
}

// Get returns version id. A unique prefix of at least 8 characters also
// names a version.
func (s *Service) Get(ctx context.Context, id string) (Version, error) {
	id = strings.ToLower(strings.TrimSpace(id))
	if len(id) >= 8 && len(id) < 64 && isHex(id) {
		rows, err := s.db.QueryContext(ctx, `SELECT `+versionCols+versionFrom+`WHERE v.id >= ? AND v.id < ? ORDER BY v.id LIMIT 2`, id, id+"g")
		if err != nil {
			return Version{}, fmt.Errorf("versions: get %s: %w", id, err)
		}
		defer rows.Close()
		var found []Version
		for rows.Next() {
			v, err := scanVersion(rows)
			if err != nil {
				return Version{}, err
			}
			found = append(found, v)
		}
		if err := rows.Err(); err != nil {
			return Version{}, fmt.Errorf("versions: get %s: %w", id, err)
		}
		switch len(found) {
		case 0:
			return Version{}, notFound(id)
		case 1:
			return found[0], nil
		default:
			return Version{}, apperr.New(apperr.Invalid, "%s names more than one version; give more characters", id)
		}
	}
	if !isHex(id) || len(id) != 64 {
		return Version{}, notFound(id)
	}
	return getVersion(ctx, s.db, id)
}

func isHex(s string) bool {
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return s != ""
}

// Latest returns the most recently saved version; store.ErrNotFound
// (wrapped, kind NotFound) when there is none.
func (s *Service) Latest(ctx context.Context) (Version, error) {
	v, err := scanVersion(s.db.QueryRowContext(ctx, `SELECT `+versionCols+versionFrom+`ORDER BY v.seq DESC LIMIT 1`))
	if errors.Is(err, sql.ErrNoRows) {
		return Version{}, apperr.Wrap(apperr.NotFound, store.ErrNotFound, "no blueprint version has been saved yet")
	}
	if err != nil {
		return Version{}, fmt.Errorf("versions: latest: %w", err)
	}
	return v, nil
}

// List returns versions newest first and whether older ones exist.
func (s *Service) List(ctx context.Context, f ListFilter) ([]Version, bool, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	if f.Limit > MaxLimit {
		f.Limit = MaxLimit
	}
	where, args := "", []any{}
	if f.BeforeSeq > 0 {
		where, args = "WHERE v.seq < ?", append(args, f.BeforeSeq)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+versionCols+versionFrom+where+` ORDER BY v.seq DESC LIMIT ?`, append(args, f.Limit+1)...)
	if err != nil {
		return nil, false, fmt.Errorf("versions: list: %w", err)
	}
	defer rows.Close()
	var out []Version
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return nil, false, fmt.Errorf("versions: list: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("versions: list: %w", err)
	}
	more := len(out) > f.Limit
	if more {
		out = out[:f.Limit]
	}
	return out, more, nil
}

// Files returns the files of version id in Paths order, byte for byte as
// saved.
func (s *Service) Files(ctx context.Context, id string) ([]File, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT f.path, b.content FROM blueprint_files f JOIN blueprint_blobs b ON b.sha256 = f.sha256 WHERE f.version_id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("versions: files of %s: %w", Short(id), err)
	}
	defer rows.Close()
	var files []File
	for rows.Next() {
		var f File
		if err := rows.Scan(&f.Path, &f.Content); err != nil {
			return nil, fmt.Errorf("versions: files of %s: %w", Short(id), err)
		}
		files = append(files, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("versions: files of %s: %w", Short(id), err)
	}
	if len(files) == 0 {
		return nil, notFound(id)
	}
	return Merge(nil, files), nil
}

// File returns one file of version id.
func (s *Service) File(ctx context.Context, id, path string) (File, error) {
	files, err := s.Files(ctx, id)
	if err != nil {
		return File{}, err
	}
	for _, f := range files {
		if f.Path == path {
			return f, nil
		}
	}
	return File{}, apperr.Wrap(apperr.NotFound, store.ErrNotFound, "version %s has no file %s", Short(id), path)
}
