package evidence

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/jobs"
	"portal/internal/regions"
	"portal/internal/store"
)

// Stored is a pack as stored: its HTML and PDF, byte for byte, with the
// SHA-256 of each.
type Stored struct {
	ID                int64
	Jurisdiction      string
	Period            Period
	Origin            string
	GeneratedAt       time.Time
	GeneratedBy       string // actor label
	Passed, Failed    int
	Unknown           int
	SHA256, PDFSHA256 string
	HTML, PDF         []byte
	HasPDF            bool
	AuditSeq          int64 // the audit record that anchors it
	AuditHash         string
}

// Service makes, stores and schedules evidence packs.
type Service struct {
	db    *store.DB
	audit *audit.Log
	log   *slog.Logger
	now   func() time.Time
	// Sources are what packs read; set before use.
	Sources Sources
	// BaseURL is the portal's address, for the packs' links.
	BaseURL string
	// Sandbox, when set, is printed on every pack (generated data).
	Sandbox string
}

// New returns the service.
func New(db *store.DB, log *audit.Log, logger *slog.Logger, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{db: db, audit: log, log: logger, now: now}
}

// Generate builds the pack of jurisdiction for period p, renders it as
// HTML and PDF and stores both, recording their SHA-256 in the audit trail
// in the same transaction. by is who asked (the system for the schedule);
// people is by's name as readers see it.
func (s *Service) Generate(ctx context.Context, by audit.Entry, people, jurisdiction string, p Period, origin string) (Stored, error) {
	if _, ok := regions.JurisdictionByID(jurisdiction); !ok {
		return Stored{}, &apperr.Error{Kind: apperr.Invalid, Message: fmt.Sprintf("%q is not a jurisdiction", jurisdiction),
			Fields: map[string]string{"jurisdiction": fmt.Sprintf("%q is not one of us, eu, apac", jurisdiction)}}
	}
	pack, err := Build(ctx, s.Sources, jurisdiction, p, s.now())
	if err != nil {
		return Stored{}, err
	}
	pack.GeneratedBy, pack.Origin, pack.BaseURL, pack.Sandbox = people, origin, s.BaseURL, s.Sandbox
	html, err := RenderHTML(ctx, pack)
	if err != nil {
		return Stored{}, fmt.Errorf("evidence: render HTML: %w", err)
	}
	pdf, err := RenderPDF(pack)
	if err != nil {
		return Stored{}, fmt.Errorf("evidence: render PDF: %w", err)
	}
	return s.save(ctx, by, pack, html, pdf)
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func (s *Service) save(ctx context.Context, by audit.Entry, p Pack, html, pdf []byte) (Stored, error) {
	pass, fail, unknown := p.Counts()
	st := Stored{Jurisdiction: p.Jurisdiction, Period: p.Period, Origin: p.Origin, GeneratedAt: p.GeneratedAt, GeneratedBy: by.Actor,
		Passed: pass, Failed: fail, Unknown: unknown, SHA256: sum(html), PDFSHA256: sum(pdf), HTML: html, PDF: pdf, HasPDF: true}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO activity_reports (jurisdiction, generated_at, generated_by, passed, failed, unknown, sha256, body,
			period_from, period_to, origin, pdf, pdf_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			st.Jurisdiction, store.Time(st.GeneratedAt), st.GeneratedBy, pass, fail, unknown, st.SHA256, string(html),
			store.Time(p.Period.From), store.Time(p.Period.To), st.Origin, pdf, st.PDFSHA256).Scan(&st.ID)
		if err != nil {
			if p.Origin == Scheduled && store.IsUniqueViolation(err) {
				return errAlreadyScheduled
			}
			return fmt.Errorf("evidence: save: %w", err)
		}
		e := by
		e.Action, e.Target = "evidence.pack", fmt.Sprintf("evidence-pack:%d jurisdiction:%s", st.ID, st.Jurisdiction)
		e.Details = map[string]any{"html_sha256": st.SHA256, "pdf_sha256": st.PDFSHA256, "period_from": store.Time(p.Period.From),
			"period_to": store.Time(p.Period.To), "origin": st.Origin, "pass": pass, "fail": fail, "unknown": unknown}
		rec, err := s.audit.Append(ctx, tx, e)
		st.AuditSeq, st.AuditHash = rec.Seq, rec.Hash
		return err
	})
	return st, err
}

var errAlreadyScheduled = errors.New("evidence: the scheduled pack of this period exists")

const storedCols = `id, jurisdiction, generated_at, generated_by, passed, failed, unknown, sha256, period_from, period_to, origin, pdf_sha256`

func scanStored(r interface{ Scan(...any) error }) (Stored, error) {
	var st Stored
	var at, from, to string
	err := r.Scan(&st.ID, &st.Jurisdiction, &at, &st.GeneratedBy, &st.Passed, &st.Failed, &st.Unknown, &st.SHA256, &from, &to, &st.Origin, &st.PDFSHA256)
	st.GeneratedAt, _ = store.ParseTime(at)
	st.Period.From, _ = store.ParseTime(from)
	st.Period.To, _ = store.ParseTime(to)
	st.HasPDF = st.PDFSHA256 != ""
	return st, err
}

// Filter selects stored packs.
type Filter struct {
	Jurisdiction string
	// BeforeID continues a listing after its last pack.
	BeforeID int64
	Limit    int
}

// List returns stored packs newest first, without their files, and
// whether there are more.
func (s *Service) List(ctx context.Context, f Filter) ([]Stored, bool, error) {
	var where []string
	var args []any
	if f.Jurisdiction != "" {
		where, args = append(where, "jurisdiction = ?"), append(args, f.Jurisdiction)
	}
	if f.BeforeID > 0 {
		where, args = append(where, "id < ?"), append(args, f.BeforeID)
	}
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	q := `SELECT ` + storedCols + ` FROM activity_reports`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY id DESC LIMIT ?`, append(args, f.Limit+1)...)
	if err != nil {
		return nil, false, fmt.Errorf("evidence: list: %w", err)
	}
	defer rows.Close()
	var out []Stored
	for rows.Next() {
		st, err := scanStored(rows)
		if err != nil {
			return nil, false, fmt.Errorf("evidence: list: %w", err)
		}
		out = append(out, st)
	}
	more := len(out) > f.Limit
	if more {
		out = out[:f.Limit]
	}
	return out, more, rows.Err()
}

// Get returns stored pack id with its HTML and PDF.
func (s *Service) Get(ctx context.Context, id int64) (Stored, error) {
	var html string
	var pdf []byte
	row := s.db.QueryRowContext(ctx, `SELECT `+storedCols+`, body, pdf FROM activity_reports WHERE id = ?`, id)
	var st Stored
	var at, from, to string
	err := row.Scan(&st.ID, &st.Jurisdiction, &at, &st.GeneratedBy, &st.Passed, &st.Failed, &st.Unknown, &st.SHA256, &from, &to, &st.Origin, &st.PDFSHA256, &html, &pdf)
	if errors.Is(err, sql.ErrNoRows) {
		return st, apperr.Wrap(apperr.NotFound, store.ErrNotFound, "no evidence pack %d", id)
	} else if err != nil {
		return st, fmt.Errorf("evidence: pack %d: %w", id, err)
	}
	st.GeneratedAt, _ = store.ParseTime(at)
	st.Period.From, _ = store.ParseTime(from)
	st.Period.To, _ = store.ParseTime(to)
	st.HTML, st.PDF, st.HasPDF = []byte(html), pdf, len(pdf) > 0
	return st, nil
}

// JobMonthly is the job that makes last month's packs.
const JobMonthly = "evidence.monthly"

// settle is how long after the portal starts the monthly job waits before
// making packs: the first discovery and CloudTrail ingestion of a fresh
// start must have run, or the pack would say nothing is known.
const settle = 10 * time.Minute

// Register schedules the monthly packs: every 15 minutes the job checks
// whether each jurisdiction has its scheduled pack for the month just ended,
// and makes the missing ones (a unique index makes sure of one per month,
// also with several replicas). A portal down on the 1st catches up when it
// starts again.
func (s *Service) Register(sched *jobs.Scheduler) {
	started := s.now()
	sched.Every(JobMonthly, 15*time.Minute, func(ctx context.Context) error {
		if s.now().Sub(started) < settle {
			return nil
		}
		return s.MakeMonthly(ctx)
	})
}

// MakeMonthly makes last month's scheduled pack of every jurisdiction that
// has none yet.
func (s *Service) MakeMonthly(ctx context.Context) error {
	p := LastMonth(s.now())
	var errs []error
	for _, j := range regions.Jurisdictions() {
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM activity_reports WHERE jurisdiction = ? AND period_from = ? AND period_to = ? AND origin = ?`,
			j.ID, store.Time(p.From), store.Time(p.To), Scheduled).Scan(&n); err != nil {
			return fmt.Errorf("evidence: monthly: %w", err)
		}
		if n > 0 {
			continue
		}
		st, err := s.Generate(ctx, audit.Entry{Actor: "system"}, "the monthly schedule", j.ID, p, Scheduled)
		if errors.Is(err, errAlreadyScheduled) {
			continue
		} else if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", j.ID, err))
			continue
		}
		s.log.Info("monthly evidence pack", slog.String("jurisdiction", j.ID), slog.String("period", p.String()), slog.Int64("pack", st.ID),
			slog.Int("pass", st.Passed), slog.Int("fail", st.Failed), slog.Int("unknown", st.Unknown))
	}
	return errors.Join(errs...)
}
