package wire

import (
	"fmt"

	"github.com/ferry-migrate/ferry/agent/fsys"
)

// FileEntry is one object of the source tree as sent to the target.
type FileEntry struct {
	// ID names the entry in later NeedBatch, Data and FileEnd messages;
	// unique within a job conversation.
	ID uint64
	// Entry is the object's metadata (Dev, Ino and Nlink are not sent).
	fsys.Entry
	// LinkTo, when set, makes this entry a hardlink to the regular file at
	// that relative path (sent earlier in the same conversation).
	LinkTo string
	// Hash, when set (strict mode, small files), is the XXH3-128 hash of
	// the whole content, computed by the source during its scan, so the
	// target can confirm an identical file without another round trip.
	Hash []byte
}

// EncodeEntry appends the metadata of x (without Dev/Ino/Nlink).
func EncodeEntry(e *Encoder, x *fsys.Entry) {
	e.String(x.Path)
	e.Byte(byte(x.Type))
	e.Uvarint(uint64(x.Mode))
	e.Uvarint(uint64(x.Uid))
	e.Uvarint(uint64(x.Gid))
	e.Varint(x.Size)
	e.Varint(x.MtimeNs)
	e.Varint(x.AtimeNs)
	e.Uvarint(x.Rdev)
	e.String(x.Target)
	e.Uvarint(uint64(len(x.Xattrs)))
	for _, a := range x.Xattrs {
		e.String(a.Name)
		e.Blob(a.Value)
	}
}

// DecodeEntry reads what EncodeEntry wrote. Paths longer than MaxPathLen are
// refused with ErrProtocol; path safety is the receiver's job
// (fsys.CleanRel).
func DecodeEntry(d *Decoder, x *fsys.Entry) {
	x.Path = d.String()
	x.Type = fsys.Type(d.Byte())
	x.Mode = d.Uint32()
	x.Uid = d.Uint32()
	x.Gid = d.Uint32()
	x.Size = d.Varint()
	x.MtimeNs = d.Varint()
	x.AtimeNs = d.Varint()
	x.Rdev = d.Uvarint()
	x.Target = d.String()
	n := d.Len(MaxListLen)
	x.Xattrs = nil
	if n > 0 {
		x.Xattrs = make([]fsys.Xattr, n)
		for i := range x.Xattrs {
			x.Xattrs[i].Name = d.String()
			x.Xattrs[i].Value = append([]byte(nil), d.Blob()...)
		}
	}
	if len(x.Path) > MaxPathLen && d.err == nil {
		d.err = fmt.Errorf("%w: path of %d bytes exceeds %d", ErrProtocol, len(x.Path), MaxPathLen)
	}
}

// EntryBatch carries a batch of the source's file list, in scan order: a
// directory always comes before anything inside it.
type EntryBatch struct {
	Entries []FileEntry
}

func (*EntryBatch) Kind() Kind { return KindEntryBatch }

func (m *EntryBatch) Encode(e *Encoder) {
	e.Uvarint(uint64(len(m.Entries)))
	for i := range m.Entries {
		x := &m.Entries[i]
		e.Uvarint(x.ID)
		EncodeEntry(e, &x.Entry)
		e.String(x.LinkTo)
		e.Blob(x.Hash)
	}
}

func (m *EntryBatch) Decode(d *Decoder) error {
	n := d.Len(MaxBatchEntries)
	m.Entries = make([]FileEntry, n)
	for i := range m.Entries {
		x := &m.Entries[i]
		x.ID = d.Uvarint()
		DecodeEntry(d, &x.Entry)
		x.LinkTo = d.String()
		if h := d.Blob(); len(h) > 0 {
			x.Hash = append([]byte(nil), h...)
		}
	}
	return d.Err()
}

// ScanEnd follows the last EntryBatch.
type ScanEnd struct{}

func (*ScanEnd) Kind() Kind              { return KindScanEnd }
func (*ScanEnd) Encode(*Encoder)         {}
func (*ScanEnd) Decode(d *Decoder) error { return d.Err() }
