package mirror

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ferry-migrate/ferry/agent/wire"
)

// Options are a job's options (the wire form, shared by both agents).
type Options = wire.JobOptions

// Defaults.
const (
	// BlockSize is the unit of block hashing and delta transfer.
	BlockSize = 64 << 10
	// DefaultCheckpointBytes is how often the offset of a large file in
	// progress is recorded (and, at most every 30 s, a background
	// fdatasync started).
	DefaultCheckpointBytes = 16 << 20
	// frameSize is the payload size of Data frames of large files. 256
	// KiB keeps a frame in the CPU's L2 cache between the read and the
	// encryption on the source, and between the decryption and the write
	// on the target: mirroring 2 x 1 GiB on loopback cost both agents
	// 4.1-4.5 s of CPU with 128 or 256 KiB frames, 5.2 s with 512 KiB and
	// 5.9 s with 1 MiB (interleaved runs on the 2-core bench machine).
	// With compression, 1 MiB frames compress the half-compressible bench
	// set a little better (0.5514 of the bytes against 0.5526 with
	// balanced) but made fast compression of random data (sent raw) 36%
	// slower than off: 256 KiB for every job.
	frameSize = 256 << 10
	// smallFile is the size up to which a file is read whole and sent as
	// one frame by one worker.
	smallFile = 1 << 20
)

// ErrInvalidOptions is returned by Normalize for unusable options.
var ErrInvalidOptions = errors.New("invalid mirror options")

// Normalize fills defaults into o and checks it. Returns an error wrapping
// ErrInvalidOptions naming the bad field.
func Normalize(o *Options) error {
	if o.Checksum == "" {
		o.Checksum = wire.ChecksumTime
	}
	if o.OnError == "" {
		o.OnError = wire.OnErrorStop
	}
	if o.Orphans == "" {
		o.Orphans = wire.OrphansKeep
	}
	if o.CheckpointBytes <= 0 {
		o.CheckpointBytes = DefaultCheckpointBytes
	}
	switch o.Checksum {
	case wire.ChecksumStrict, wire.ChecksumTime:
	default:
		return fmt.Errorf("%w: checksum %q (want strict or time)", ErrInvalidOptions, o.Checksum)
	}
	switch o.OnError {
	case wire.OnErrorStop, wire.OnErrorSkip:
	default:
		return fmt.Errorf("%w: on-error %q (want stop or skip)", ErrInvalidOptions, o.OnError)
	}
	switch o.Orphans {
	case wire.OrphansKeep, wire.OrphansDelete:
	case wire.OrphansMove:
		if o.OrphanDir == "" || strings.HasPrefix(o.OrphanDir, "/") || strings.Contains("/"+o.OrphanDir+"/", "/../") {
			return fmt.Errorf("%w: orphan directory %q must be relative to the target root, without '..'", ErrInvalidOptions, o.OrphanDir)
		}
	default:
		return fmt.Errorf("%w: orphans %q (want keep, delete or move:DIR)", ErrInvalidOptions, o.Orphans)
	}
	switch o.Profile {
	case "", ProfileSystem:
	default:
		return fmt.Errorf("%w: profile %q (want system)", ErrInvalidOptions, o.Profile)
	}
	for _, p := range o.Excludes {
		if _, err := matchGlob(p, "x"); err != nil {
			return fmt.Errorf("%w: exclude %q: %v", ErrInvalidOptions, p, err)
		}
	}
	return nil
}

// ParseOrphans parses the CLI form keep|delete|move:DIR.
func ParseOrphans(s string) (policy, dir string, err error) {
	switch {
	case s == wire.OrphansKeep || s == wire.OrphansDelete:
		return s, "", nil
	case strings.HasPrefix(s, "move:"):
		return wire.OrphansMove, strings.TrimPrefix(s, "move:"), nil
	}
	return "", "", fmt.Errorf("%w: orphans %q (want keep, delete or move:DIR)", ErrInvalidOptions, s)
}
