package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Record is one captured change. Op values are those of agent/capture.Op.
type Record struct {
	// Seq is assigned by Append; strictly increasing, never reused.
	Seq uint64
	// Time is when the change was captured, in unix nanoseconds. Append
	// fills it in when zero.
	Time int64
	Op   uint8
	Path string
	From string
	Dir  bool
	// Size is a hint of the bytes shipping this record will cost (file
	// size for a modify), for the backlog in Stats.
	Size int64
}

// On disk a record is framed as
//
//	u32 payload length | u32 CRC32C(payload) | payload
//
// and the payload, little endian, is
//
//	u64 seq | i64 time | i64 cum | i64 size | u8 op | u8 dir |
//	u32 len | path | u32 len | from
//
// where cum is the running total of backlog bytes before this record (so the
// backlog between two records is a subtraction).
const (
	frameHeader  = 8
	fixedPayload = 8 + 8 + 8 + 8 + 1 + 1 + 4 + 4
	// MaxPathLen bounds Path and From; longer records are refused.
	MaxPathLen = 64 << 10
	maxPayload = fixedPayload + 2*MaxPathLen
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errBadRecord marks a frame that fails validation (torn or corrupt).
var errBadRecord = errors.New("journal: bad record")

// encodedLen is the framed size of r on disk.
func encodedLen(r *Record) int { return frameHeader + fixedPayload + len(r.Path) + len(r.From) }

// weight is what r adds to the backlog byte count.
func weight(r *Record) int64 { return max(r.Size, 0) + int64(encodedLen(r)) }

// appendRecord appends the framed encoding of r, with cum, to b.
func appendRecord(b []byte, r *Record, cum int64) []byte {
	start := len(b)
	b = binary.LittleEndian.AppendUint32(b, uint32(fixedPayload+len(r.Path)+len(r.From)))
	b = binary.LittleEndian.AppendUint32(b, 0) // crc, filled below
	b = binary.LittleEndian.AppendUint64(b, r.Seq)
	b = binary.LittleEndian.AppendUint64(b, uint64(r.Time))
	b = binary.LittleEndian.AppendUint64(b, uint64(cum))
	b = binary.LittleEndian.AppendUint64(b, uint64(r.Size))
	b = append(b, r.Op)
	if r.Dir {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(r.Path)))
	b = append(b, r.Path...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(r.From)))
	b = append(b, r.From...)
	crc := crc32.Checksum(b[start+frameHeader:], castagnoli)
	binary.LittleEndian.PutUint32(b[start+4:], crc)
	return b
}

// decodeRecord decodes one frame from the start of b. It returns the record,
// its cum value and the frame length, or errBadRecord for a short, torn or
// corrupt frame.
func decodeRecord(b []byte) (Record, int64, int, error) {
	var r Record
	if len(b) < frameHeader {
		return r, 0, 0, errBadRecord
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n < fixedPayload || n > maxPayload || len(b) < frameHeader+n {
		return r, 0, 0, errBadRecord
	}
	p := b[frameHeader : frameHeader+n]
	if crc32.Checksum(p, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return r, 0, 0, errBadRecord
	}
	r.Seq = binary.LittleEndian.Uint64(p[0:])
	r.Time = int64(binary.LittleEndian.Uint64(p[8:]))
	cum := int64(binary.LittleEndian.Uint64(p[16:]))
	r.Size = int64(binary.LittleEndian.Uint64(p[24:]))
	r.Op = p[32]
	r.Dir = p[33] != 0
	pl := int(binary.LittleEndian.Uint32(p[34:]))
	if 38+pl+4 > n {
		return r, 0, 0, errBadRecord
	}
	r.Path = string(p[38 : 38+pl])
	fl := int(binary.LittleEndian.Uint32(p[38+pl:]))
	if 42+pl+fl != n {
		return r, 0, 0, errBadRecord
	}
	r.From = string(p[42+pl : 42+pl+fl])
	return r, cum, frameHeader + n, nil
}

func validate(r *Record) error {
	if len(r.Path) > MaxPathLen || len(r.From) > MaxPathLen {
		return fmt.Errorf("journal: path of %d bytes exceeds %d", max(len(r.Path), len(r.From)), MaxPathLen)
	}
	return nil
}
