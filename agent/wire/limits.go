package wire

// Protocol version and size limits.
const (
	// Version is the protocol version this build speaks. Peers must speak
	// the same version. v2: SyncChunk is a payload frame (sequence number,
	// codec flags), SyncAttach/SyncAccepted exchange salts and a key check,
	// SyncPrepare. v3: SyncAttach and SyncAccepted carry the source
	// journal's epoch (the source ships records before they are durable).
	// v4: a compressed payload may be a split frame (package codec), which
	// a v3 peer cannot decode.
	Version = 4

	// MaxFrameSize bounds one frame (kind byte + body).
	MaxFrameSize = MaxDataPayload + 64<<10
	// MaxDataPayload bounds the payload of one Data frame.
	MaxDataPayload = 4 << 20
	// MaxBatchEntries bounds the entries of one EntryBatch, NeedBatch or
	// ManifestBatch.
	MaxBatchEntries = 4096
	// MaxListLen bounds any other list inside a message (xattrs, caps,
	// excludes, block hashes).
	MaxListLen = 1 << 20
	// MaxPathLen bounds a relative path. Trees may nest deeper than
	// PATH_MAX (4096); fsys resolves such paths in hops.
	MaxPathLen = 32 << 10
	// HashSize is the size of a block hash (XXH3-128).
	HashSize = 16
)
