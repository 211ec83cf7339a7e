package wire

// Need actions.
const (
	// NeedSkip: the target is up to date (content and metadata); nothing
	// will be sent.
	NeedSkip = 0
	// NeedFull: send the whole content.
	NeedFull = 1
	// NeedDelta: the target holds a base (its current file, or a partial
	// file from an interrupted run); Hashes cover its first ValidLen bytes in
	// blocks of BlockSize. Send the blocks whose hash differs and everything
	// from ValidLen on.
	NeedDelta = 2
)

// Need is the target's answer for one regular file.
type Need struct {
	ID        uint64
	Action    uint8
	BlockSize uint32
	ValidLen  int64
	// Hashes holds ceil(ValidLen/BlockSize) hashes of HashSize bytes.
	Hashes []byte
	// Resumed marks a base that is a partial file of an interrupted run.
	Resumed bool
}

// NeedBatch carries the target's answers, in any order. End marks the last
// batch: every regular file of the scan has been answered.
type NeedBatch struct {
	Items []Need
	End   bool
}

func (*NeedBatch) Kind() Kind { return KindNeedBatch }

func (m *NeedBatch) Encode(e *Encoder) {
	e.Uvarint(uint64(len(m.Items)))
	for i := range m.Items {
		x := &m.Items[i]
		e.Uvarint(x.ID)
		e.Byte(x.Action)
		if x.Action == NeedDelta {
			e.Uvarint(uint64(x.BlockSize))
			e.Varint(x.ValidLen)
			e.Blob(x.Hashes)
			e.Bool(x.Resumed)
		}
	}
	e.Bool(m.End)
}

func (m *NeedBatch) Decode(d *Decoder) error {
	n := d.Len(MaxBatchEntries)
	m.Items = make([]Need, n)
	for i := range m.Items {
		x := &m.Items[i]
		x.ID = d.Uvarint()
		x.Action = d.Byte()
		if x.Action == NeedDelta {
			x.BlockSize = d.Uint32()
			x.ValidLen = d.Varint()
			x.Hashes = append([]byte(nil), d.Blob()...)
			x.Resumed = d.Bool()
		}
	}
	m.End = d.Bool()
	return d.Err()
}
