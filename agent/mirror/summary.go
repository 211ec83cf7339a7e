package mirror

import (
	"io/fs"
	"sync"
	"sync/atomic"

	"github.com/ferry-migrate/ferry/agent/wire"
)

var errNotExist = fs.ErrNotExist

// Skip records an object left out of a job and why.
type Skip struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// Summary is the result of a mirror job. The source agent builds it and
// merges the target's half (TargetSummary).
type Summary struct {
	JobID string `json:"job_id"`
	// Scan of the source.
	Files     int64 `json:"files"` // regular files
	Bytes     int64 `json:"bytes"` // their total size
	Dirs      int64 `json:"dirs"`
	Symlinks  int64 `json:"symlinks"`
	Specials  int64 `json:"specials"` // FIFOs, devices, sockets
	Hardlinks int64 `json:"hardlinks"`
	// Transfer.
	FilesSent     int64 `json:"files_sent"`       // files whose content (or part) was sent
	BytesSent     int64 `json:"bytes_sent"`       // content bytes sent (before compression)
	FilesUpToDate int64 `json:"files_up_to_date"` // regular files already identical on the target
	DeltaFiles    int64 `json:"delta_files"`      // files sent as block deltas
	ResumedFiles  int64 `json:"resumed_files"`    // partial files continued from a checkpoint
	ResumedBytes  int64 `json:"resumed_bytes"`    // bytes not re-sent thanks to those checkpoints
	BytesOnWire   int64 `json:"bytes_on_wire"`    // bytes written by the source to the data connection
	BytesFromPeer int64 `json:"bytes_from_target"`
	// Payload bytes before and after compression (equal without it).
	PayloadBytes      int64 `json:"payload_bytes"`
	PayloadCompressed int64 `json:"payload_bytes_compressed"`
	// Target side.
	Target TargetSummary `json:"target"`
	// Skipped lists every object left out (unreadable on the source,
	// changed while read, failed on the target).
	Skipped    []Skip `json:"skipped"`
	DurationMs int64  `json:"duration_ms"`
}

// TargetSummary is what the receiving agent reports.
type TargetSummary struct {
	FilesWritten   int64  `json:"files_written"`
	MetaUpdated    int64  `json:"meta_updated"` // objects whose metadata alone was fixed
	OrphansFound   int64  `json:"orphans_found"`
	OrphansRemoved int64  `json:"orphans_removed"`
	OrphansMoved   int64  `json:"orphans_moved"`
	TempsCleaned   int64  `json:"temps_cleaned"`
	Errors         []Skip `json:"errors"` // objects that could not be applied
}

// Progress is a running job's counters.
type Progress = wire.Progress

// counters are updated concurrently by a job's goroutines.
type counters struct {
	filesTotal, bytesTotal atomic.Int64
	filesDone, bytesDone   atomic.Int64
	// streaming counts the bytes streamed so far of large files not yet
	// done, so that progress moves within a big file.
	streaming            atomic.Int64
	scanDone             atomic.Bool
	filesSent, bytesSent atomic.Int64
	upToDate, delta      atomic.Int64
	resumedFiles         atomic.Int64
	resumedBytes         atomic.Int64
	dirs, symlinks       atomic.Int64
	specials, hardlinks  atomic.Int64

	mu      sync.Mutex
	skipped []Skip // guarded by mu
}

func (c *counters) skip(path, reason string) {
	c.mu.Lock()
	c.skipped = append(c.skipped, Skip{Path: path, Reason: reason})
	c.mu.Unlock()
}

func (c *counters) progress(wireBytes int64) Progress {
	return Progress{
		FilesTotal: c.filesTotal.Load(), BytesTotal: c.bytesTotal.Load(), ScanDone: c.scanDone.Load(),
		FilesDone: c.filesDone.Load(), BytesDone: c.bytesDone.Load() + c.streaming.Load(), WireBytes: wireBytes,
	}
}
