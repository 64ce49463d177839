package activity

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"portal/internal/audit"
	"portal/internal/jobs"
)

// Job names.
const (
	JobIngest   = "activity.ingest"
	JobValidate = "activity.validate"
)

// Schedule is how often the jobs run.
type Schedule struct {
	Ingest, Validate, Retention time.Duration
}

// DefaultSchedule ingests every five minutes (CloudTrail delivers about
// every five) and validates hourly (digests are hourly).
// Retention runs daily.
var DefaultSchedule = Schedule{Ingest: 5 * time.Minute, Validate: time.Hour, Retention: 24 * time.Hour}

type lastIngest struct {
	mu  sync.Mutex
	res IngestResult
	at  time.Time
}

// Register adds the ingestion and validation jobs to sched; the scheduler
// makes sure no two replicas run either at once.
func (s *Service) Register(sched *jobs.Scheduler, every Schedule) {
	s.jobs = sched
	s.schedule = every
	sched.Every(JobIngest, every.Ingest, func(ctx context.Context) error {
		res, err := s.Ingest(ctx)
		s.last.mu.Lock()
		s.last.res, s.last.at = res, s.now()
		s.last.mu.Unlock()
		if res.New > 0 {
			s.log.Info("activity ingested", slog.Int("files", res.Files), slog.Int("new", res.New), slog.Int("sensitive", res.Sensitive),
				slog.Duration("took", res.Took))
		}
		return err
	})
	if every.Retention > 0 {
		sched.Every(JobRetention, every.Retention, func(ctx context.Context) error {
			res, err := s.ApplyRetention(ctx, audit.Entry{Actor: "system"})
			if res.Archived > 0 || len(res.Dropped) > 0 {
				s.log.Info("activity retention", slog.Int("archived", res.Archived), slog.Int("objects", len(res.Objects)), slog.Any("dropped", res.Dropped))
			}
			return err
		})
	}
	if len(s.cfg.Buckets) > 0 {
		sched.Every(JobValidate, every.Validate, func(ctx context.Context) error {
			v, err := s.Validate(ctx, audit.Entry{Actor: "system"})
			if err == nil && !v.OK {
				s.log.Warn("CloudTrail log validation failed", slog.Int("problems", len(v.Problems)))
			}
			return err
		})
	}
}

// IngestNow runs the ingestion job on this replica unless another holds
// it, and returns what it did.
func (s *Service) IngestNow(ctx context.Context) (IngestResult, bool, error) {
	if s.jobs == nil {
		res, err := s.Ingest(ctx)
		return res, true, err
	}
	ran, err := s.jobs.RunOnce(ctx, JobIngest)
	s.last.mu.Lock()
	defer s.last.mu.Unlock()
	return s.last.res, ran, err
}

// JobStatus returns what the scheduler recorded about job name.
func (s *Service) JobStatus(ctx context.Context, name string) (jobs.Status, error) {
	if s.jobs == nil {
		return jobs.Status{Name: name}, nil
	}
	return s.jobs.Status(ctx, name)
}

// ScheduleOf returns the registered schedule.
func (s *Service) ScheduleOf() Schedule { return s.schedule }
