package ferry

// JobState is a migration job's state as users see it. The workflow owns the
// transitions; the database keeps the last one for lists and reports.
type JobState string

// Every job state, in lifecycle order.
const (
	JobPending         JobState = "pending"
	JobPrechecking     JobState = "prechecking"
	JobMirroring       JobState = "mirroring"
	JobSyncing         JobState = "syncing"
	JobPaused          JobState = "paused"
	JobReadyForCutover JobState = "ready_for_cutover"
	JobTestCutover     JobState = "test_cutover"
	JobCuttingOver     JobState = "cutting_over"
	JobCutoverComplete JobState = "cutover_complete"
	JobFailed          JobState = "failed"
	JobCancelled       JobState = "cancelled"
	JobRolledBack      JobState = "rolled_back"
)

// JobStates returns every job state in lifecycle order.
func JobStates() []JobState {
	return []JobState{
		JobPending, JobPrechecking, JobMirroring, JobSyncing, JobPaused,
		JobReadyForCutover, JobTestCutover, JobCuttingOver, JobCutoverComplete,
		JobFailed, JobCancelled, JobRolledBack,
	}
}

// Valid reports whether s is one of the defined states.
func (s JobState) Valid() bool {
	for _, v := range JobStates() {
		if s == v {
			return true
		}
	}
	return false
}

// Replicating reports whether the source is being copied or followed in s.
func (s JobState) Replicating() bool {
	switch s {
	case JobMirroring, JobSyncing, JobReadyForCutover, JobTestCutover, JobCuttingOver:
		return true
	}
	return false
}
