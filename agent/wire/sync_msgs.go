package wire

import "github.com/ferry-migrate/ferry/agent/fsys"

// Continuous-sync message kinds (package agent/replicate). They use the
// range 64–79, which the mirror protocol does not use.
//
// Controller → source agent:
//
//	SyncStart → the source agent starts (or resumes) the sync of a job and
//	answers SyncStatus about once a second until the controller closes the
//	connection or sends Cancel (a clean stop). SyncControl pauses or resumes
//	shipping.
//
// Controller → target agent:
//
//	SyncPrepare → the target agent keeps the job's payload options (key
//	included) and answers JobAccepted.
//
// Source agent → target agent (the sync data connection):
//
//	SyncAttach (with the source's salt and key check) → the target checks
//	the key and answers SyncAccepted with the last sequence number it
//	applied durably and its salt; both install the payload codec; then the
//	source sends SyncOp (each followed by SyncChunk* and SyncOpEnd when it
//	carries content), the target sends SyncAck whenever it has made more
//	records durable. SyncChunks are payload frames (see SyncChunk).
const (
	KindSyncStart    Kind = 64
	KindSyncStatus   Kind = 65
	KindSyncControl  Kind = 66
	KindSyncAttach   Kind = 67
	KindSyncAccepted Kind = 68
	KindSyncOp       Kind = 69
	KindSyncChunk    Kind = 70
	KindSyncOpEnd    Kind = 71
	KindSyncAck      Kind = 72
	KindSyncPrepare  Kind = 73
)

// newSyncMessage returns an empty sync message of kind k, or nil.
func newSyncMessage(k Kind) Message {
	switch k {
	case KindSyncStart:
		return new(SyncStart)
	case KindSyncStatus:
		return new(SyncStatus)
	case KindSyncControl:
		return new(SyncControl)
	case KindSyncAttach:
		return new(SyncAttach)
	case KindSyncAccepted:
		return new(SyncAccepted)
	case KindSyncOp:
		return new(SyncOp)
	case KindSyncChunk:
		return new(SyncChunk)
	case KindSyncOpEnd:
		return new(SyncOpEnd)
	case KindSyncAck:
		return new(SyncAck)
	case KindSyncPrepare:
		return new(SyncPrepare)
	}
	return nil
}

// SyncStart asks the source agent to replicate Root to TargetRoot on the
// target agent at Target.
type SyncStart struct {
	JobID      string
	Root       string // absolute path on the source host
	Target     string // host:port of the target agent
	TargetRoot string // absolute path on the target host
	Self       string // host:port under which the source agent is reachable (for its mirrors)
	Opts       JobOptions
	// JournalMaxBytes bounds the source's journal on disk (0: the default,
	// 1 GiB); beyond it the sync resyncs with a mirror.
	JournalMaxBytes int64
}

func (*SyncStart) Kind() Kind { return KindSyncStart }

func (m *SyncStart) Encode(e *Encoder) {
	e.String(m.JobID)
	e.String(m.Root)
	e.String(m.Target)
	e.String(m.TargetRoot)
	e.String(m.Self)
	m.Opts.encode(e)
	e.Varint(m.JournalMaxBytes)
}

func (m *SyncStart) Decode(d *Decoder) error {
	m.JobID = d.String()
	m.Root = d.String()
	m.Target = d.String()
	m.TargetRoot = d.String()
	m.Self = d.String()
	m.Opts.decode(d)
	m.JournalMaxBytes = d.Varint()
	return d.Err()
}

// SyncStatus reports a sync's state and counters to the controller.
type SyncStatus struct {
	State          string
	LagMs          int64
	BacklogRecords int64
	BacklogBytes   int64
	AppliedTotal   int64 // records applied and acknowledged since start
	AppliedRate    int64 // records a second, ×1000
	Error          string
	// BytesSent counts the bytes the sync sent to the target since it
	// started: file content it shipped plus what its mirrors (resyncs,
	// rescans) wrote to their data connections.
	BytesSent int64
	// Drained answers a SyncDrain: every change made on the source before
	// the request is applied and acknowledged by the target.
	Drained bool
	// ContentBytes counts file content the sync shipped, before the
	// payload codec; ContentWireBytes the same after it (compressed,
	// sealed): their ratio is the sync's compression.
	ContentBytes, ContentWireBytes int64
}

func (*SyncStatus) Kind() Kind { return KindSyncStatus }

func (m *SyncStatus) Encode(e *Encoder) {
	e.String(m.State)
	e.Varint(m.LagMs)
	e.Varint(m.BacklogRecords)
	e.Varint(m.BacklogBytes)
	e.Varint(m.AppliedTotal)
	e.Varint(m.AppliedRate)
	e.String(m.Error)
	e.Varint(m.BytesSent)
	e.Bool(m.Drained)
	e.Varint(m.ContentBytes)
	e.Varint(m.ContentWireBytes)
}

func (m *SyncStatus) Decode(d *Decoder) error {
	m.State = d.String()
	m.LagMs = d.Varint()
	m.BacklogRecords = d.Varint()
	m.BacklogBytes = d.Varint()
	m.AppliedTotal = d.Varint()
	m.AppliedRate = d.Varint()
	m.Error = d.String()
	if d.Remaining() > 0 { // absent from older agents
		m.BytesSent = d.Varint()
		m.Drained = d.Bool()
	}
	if d.Remaining() > 0 {
		m.ContentBytes = d.Varint()
		m.ContentWireBytes = d.Varint()
	}
	return d.Err()
}

// SyncControl actions.
const (
	SyncPause  = "pause"
	SyncResume = "resume"
	// SyncDrain asks for one status with Drained set once every change
	// made before the request is applied on the target (the final sync).
	SyncDrain = "drain"
)

// SyncControl pauses or resumes shipping.
type SyncControl struct{ Action string }

func (*SyncControl) Kind() Kind                { return KindSyncControl }
func (m *SyncControl) Encode(e *Encoder)       { e.String(m.Action) }
func (m *SyncControl) Decode(d *Decoder) error { m.Action = d.String(); return d.Err() }

// SyncAttach opens a sync data connection to the target agent. Opts
// carries no key: the target holds the job's payload key from the
// controller (SyncPrepare). With payload encryption, Salt is the source's
// fresh salt for this connection and KeyCheck proves the source holds the
// same key (package seal); the target refuses a wrong key with
// ErrPermission before any content moves. Epoch is the source journal's
// epoch (journal.Opened): the target records it with the sequence numbers
// it applies.
type SyncAttach struct {
	JobID    string
	Root     string // absolute path on the target host
	Opts     JobOptions
	Salt     []byte
	KeyCheck []byte
	Epoch    uint64
}

func (*SyncAttach) Kind() Kind { return KindSyncAttach }

func (m *SyncAttach) Encode(e *Encoder) {
	e.String(m.JobID)
	e.String(m.Root)
	m.Opts.encode(e)
	e.Blob(m.Salt)
	e.Blob(m.KeyCheck)
	e.Uvarint(m.Epoch)
}

func (m *SyncAttach) Decode(d *Decoder) error {
	m.JobID = d.String()
	m.Root = d.String()
	m.Opts.decode(d)
	m.Salt = append([]byte(nil), d.Blob()...)
	m.KeyCheck = append([]byte(nil), d.Blob()...)
	m.Epoch = d.Uvarint()
	return d.Err()
}

// SyncAccepted answers SyncAttach with the last sequence number the target
// applied durably (0: none) and, with payload encryption, the target's salt
// for this connection: the payload keys derive from both salts.
type SyncAccepted struct {
	Applied uint64
	Salt    []byte
	// Epoch is the source journal epoch Applied was recorded under (0:
	// unknown).
	Epoch uint64
}

func (*SyncAccepted) Kind() Kind { return KindSyncAccepted }

func (m *SyncAccepted) Encode(e *Encoder) {
	e.Uvarint(m.Applied)
	e.Blob(m.Salt)
	e.Uvarint(m.Epoch)
}

func (m *SyncAccepted) Decode(d *Decoder) error {
	m.Applied = d.Uvarint()
	m.Salt = append([]byte(nil), d.Blob()...)
	m.Epoch = d.Uvarint()
	return d.Err()
}

// SyncPrepare (controller → target agent) registers a sync job's payload
// options, key included, on the target agent before the source attaches;
// the agent keeps them (in its data directory, readable by root only) so
// that the source's later SyncAttach, also after a restart of either
// agent, is checked against the key the controller gave. The agent answers
// JobAccepted (empty) or Error.
type SyncPrepare struct {
	JobID string
	Root  string // absolute path on the target host
	Opts  JobOptions
}

func (*SyncPrepare) Kind() Kind { return KindSyncPrepare }

func (m *SyncPrepare) Encode(e *Encoder) {
	e.String(m.JobID)
	e.String(m.Root)
	m.Opts.encode(e)
}

func (m *SyncPrepare) Decode(d *Decoder) error {
	m.JobID = d.String()
	m.Root = d.String()
	m.Opts.decode(d)
	return d.Err()
}

// SyncAck acknowledges every record up to Seq as applied durably.
type SyncAck struct{ Seq uint64 }

func (*SyncAck) Kind() Kind                { return KindSyncAck }
func (m *SyncAck) Encode(e *Encoder)       { e.Uvarint(m.Seq) }
func (m *SyncAck) Decode(d *Decoder) error { m.Seq = d.Uvarint(); return d.Err() }

// Sync operation codes (SyncOp.Op).
const (
	SyncOpNone   byte = 0 // nothing to change; only advances the sequence
	SyncOpPut    byte = 1 // make Path look like Entry (content follows for files)
	SyncOpDelete byte = 2 // remove Path (and everything beneath it)
	SyncOpRename byte = 3 // move From to Path, then apply Entry's metadata
	SyncOpLink   byte = 4 // make Path a hardlink of LinkTo, then apply Entry's metadata
	SyncOpDelta  byte = 5 // Path is a regular file: patch the changed blocks (SyncChunk) into a copy of the current one
	SyncOpPrune  byte = 6 // Path is a directory: remove children not named in Names
)

// SyncOp is one change to apply on the target, in sequence order. Several
// ops may share a Seq (a record that expands, e.g. a rescan); the target
// acknowledges a Seq only after the op with Last set.
type SyncOp struct {
	Seq  uint64
	Last bool // the last op of this Seq
	Op   byte
	Path string
	From string
	// Entry is the current state of Path on the source (Put, Rename, Link,
	// Delta).
	Entry fsys.Entry
	// Parents are the current metadata of the directories whose content
	// the op changes (their mtime), applied after the op.
	Parents []fsys.Entry
	LinkTo  string
	// Content: SyncChunk messages and a SyncOpEnd follow this op.
	Content bool
	// InPlace (Put of a file with several links): write the content into
	// the existing file so its other names keep sharing it.
	InPlace bool
	// BlockSize and Hashes (Delta): the XXH3-128 hash of every block of the
	// new content, to verify the patched file; with Digest set, Hashes is
	// the XXH3-128 of those hashes concatenated.
	BlockSize int64
	Hashes    []byte
	Digest    bool
	// BaseSize (Delta with InPlace): the size the target's file must have;
	// the op only appends beyond it, in place.
	BaseSize int64
	Names    []string // Prune
}

func (*SyncOp) Kind() Kind { return KindSyncOp }

func (m *SyncOp) Encode(e *Encoder) {
	e.Uvarint(m.Seq)
	e.Bool(m.Last)
	e.Byte(m.Op)
	e.String(m.Path)
	e.String(m.From)
	EncodeEntry(e, &m.Entry)
	e.Uvarint(uint64(len(m.Parents)))
	for i := range m.Parents {
		EncodeEntry(e, &m.Parents[i])
	}
	e.String(m.LinkTo)
	e.Bool(m.Content)
	e.Bool(m.InPlace)
	e.Varint(m.BlockSize)
	e.Blob(m.Hashes)
	e.Varint(m.BaseSize)
	e.Strings(m.Names)
	e.Bool(m.Digest)
}

func (m *SyncOp) Decode(d *Decoder) error {
	m.Seq = d.Uvarint()
	m.Last = d.Bool()
	m.Op = d.Byte()
	m.Path = d.String()
	m.From = d.String()
	DecodeEntry(d, &m.Entry)
	n := d.Len(MaxListLen)
	m.Parents = nil
	for range n {
		var p fsys.Entry
		DecodeEntry(d, &p)
		m.Parents = append(m.Parents, p)
	}
	m.LinkTo = d.String()
	m.Content = d.Bool()
	m.InPlace = d.Bool()
	m.BlockSize = d.Varint()
	m.Hashes = append([]byte(nil), d.Blob()...)
	m.BaseSize = d.Varint()
	m.Names = d.Strings()
	m.Digest = d.Remaining() > 0 && d.Bool() // absent from older agents
	return d.Err()
}

// SyncChunk is a piece of an op's content at Off. It is a payload frame
// like Data: Conn.WriteMsg numbers it (Seq, in the same sequence as Data
// frames) and applies the connection's codec (compression, sealing; Flags
// as for Data), and Conn.ReadMsg checks the number and undoes the codec, so
// callers only set Off and Data. RawLen is Data's length before the codec.
type SyncChunk struct {
	Off    int64
	Seq    uint64
	Flags  uint8
	RawLen uint32
	Data   []byte
}

func (*SyncChunk) Kind() Kind { return KindSyncChunk }

// Encode writes the chunk as it is (Conn.WriteMsg encodes it itself).
func (m *SyncChunk) Encode(e *Encoder) {
	e.Varint(m.Off)
	e.Uvarint(m.Seq)
	e.Byte(m.Flags)
	e.Uvarint(uint64(m.RawLen))
	e.Blob(m.Data)
}

// Decode: Data aliases the frame buffer until the next ReadMsg.
func (m *SyncChunk) Decode(d *Decoder) error {
	m.Off = d.Varint()
	m.Seq = d.Uvarint()
	m.Flags = d.Byte()
	m.RawLen = d.Uint32()
	m.Data = d.Blob()
	return d.Err()
}

// SyncOpEnd ends an op's content. Abandoned is set when the source could
// not read the content to the end (the file vanished or changed size): the
// target discards what it received and treats the op as a no-op, since a
// later record describes the path.
type SyncOpEnd struct {
	Abandoned bool
	// Digest (Delta): the XXH3-128 of the block hashes (the op's
	// BlockSize) of the content exactly as the source read and sent it;
	// the target verifies the patched file against it (it takes precedence
	// over the op's Hashes, which the source computed before streaming and
	// a live writer may have made stale).
	Digest []byte
}

func (*SyncOpEnd) Kind() Kind { return KindSyncOpEnd }
func (m *SyncOpEnd) Encode(e *Encoder) {
	e.Bool(m.Abandoned)
	e.Blob(m.Digest)
}
func (m *SyncOpEnd) Decode(d *Decoder) error {
	m.Abandoned = d.Bool()
	m.Digest = nil
	if d.Remaining() > 0 { // absent from older agents
		if b := d.Blob(); len(b) > 0 {
			m.Digest = append([]byte(nil), b...)
		}
	}
	return d.Err()
}
