package wire

// Data frame flags.
const (
	FlagZstd   = 1 << 0 // payload is zstd-compressed
	FlagSealed = 1 << 1 // payload is sealed (AEAD) by the job's cipher
)

// Data carries file content: Payload belongs at Offset of file ID. Frames
// of one file arrive in increasing offset order; frames of different files
// may interleave. Seq increases by one per Data frame on a connection and is
// what a sealing codec binds into its authenticated data.
type Data struct {
	ID      uint64
	Offset  int64
	Seq     uint64
	Flags   uint8
	RawLen  uint32 // payload length before compression/sealing
	Payload []byte
}

func (*Data) Kind() Kind { return KindData }

func (m *Data) Encode(e *Encoder) {
	e.Uvarint(m.ID)
	e.Varint(m.Offset)
	e.Uvarint(m.Seq)
	e.Byte(m.Flags)
	e.Uvarint(uint64(m.RawLen))
	e.Blob(m.Payload)
}

// Decode leaves Payload aliasing the frame buffer.
func (m *Data) Decode(d *Decoder) error {
	m.ID = d.Uvarint()
	m.Offset = d.Varint()
	m.Seq = d.Uvarint()
	m.Flags = d.Byte()
	m.RawLen = d.Uint32()
	m.Payload = d.Blob()
	return d.Err()
}

// FileEnd status values.
const (
	FileOK      = 0 // all content sent; Size is the final size
	FileSkipped = 1 // the source could not read the file (Reason says why)
	FileChanged = 2 // the file changed on the source while it was read
)

// FileEnd ends the content of file ID.
type FileEnd struct {
	ID     uint64
	Status uint8
	Size   int64
	Reason string
}

func (*FileEnd) Kind() Kind { return KindFileEnd }

func (m *FileEnd) Encode(e *Encoder) {
	e.Uvarint(m.ID)
	e.Byte(m.Status)
	e.Varint(m.Size)
	e.String(m.Reason)
}

func (m *FileEnd) Decode(d *Decoder) error {
	m.ID = d.Uvarint()
	m.Status = d.Byte()
	m.Size = d.Varint()
	m.Reason = d.String()
	return d.Err()
}

// SendEnd follows the last FileEnd: the source has sent everything. Skipped
// lists the source paths it could not read, with reasons, so the target
// keeps them out of its orphan handling.
type SendEnd struct {
	Skipped []string // relative paths
}

func (*SendEnd) Kind() Kind { return KindSendEnd }

func (m *SendEnd) Encode(e *Encoder) { e.Strings(m.Skipped) }

func (m *SendEnd) Decode(d *Decoder) error {
	m.Skipped = d.Strings()
	return d.Err()
}
