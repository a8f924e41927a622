package storage

// For the external tests: the run counters' mapping.
var (
	RunCounters     = runCounters
	LogOnlyCounters = logOnlyCounters
)
