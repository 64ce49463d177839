package billing

import "context"

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
