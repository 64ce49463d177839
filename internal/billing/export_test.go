package billing

import "context"

// RefreshDailyForBenchmark brings the daily rollup up to date after rows
// were written straight into the database.
func (s *Service) RefreshDailyForBenchmark(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := refreshDaily(ctx, tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// SyncKindForBenchmark lists one kind (e.g. "balance_transactions") as a
// sync would, for the benchmark of sync throughput.
func (s *Service) SyncKindForBenchmark(ctx context.Context, name string) error {
	for _, k := range kinds {
		if k.name == name {
			return s.syncKind(ctx, &stripeLists{s: s}, 0, k)
		}
	}
	return nil
}
