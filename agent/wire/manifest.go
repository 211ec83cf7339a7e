package wire

import "github.com/ferry-migrate/ferry/agent/fsys"

// VerifyScan asks an agent for the manifest of a tree: every object's
// metadata and, for regular files, a content hash computed locally. The
// agent answers ManifestBatch* then ManifestEnd.
type VerifyScan struct {
	Root string
	Opts JobOptions // Excludes and Profile apply
}

func (*VerifyScan) Kind() Kind { return KindVerifyScan }

func (m *VerifyScan) Encode(e *Encoder) {
	e.String(m.Root)
	m.Opts.encode(e)
}

func (m *VerifyScan) Decode(d *Decoder) error {
	m.Root = d.String()
	m.Opts.decode(d)
	return d.Err()
}

// ManifestEntry is one object of a manifest.
type ManifestEntry struct {
	fsys.Entry
	Hash [HashSize]byte // content hash of a regular file (XXH3-128)
	// LinkKey is the smallest path of the object's hardlink group when it
	// has more than one name in the tree, else "".
	LinkKey string
	// Err reports why the object could not be read ("" when fine).
	Err string
}

// ManifestBatch carries manifest entries in path order.
type ManifestBatch struct {
	Entries []ManifestEntry
}

func (*ManifestBatch) Kind() Kind { return KindManifestBatch }

func (m *ManifestBatch) Encode(e *Encoder) {
	e.Uvarint(uint64(len(m.Entries)))
	for i := range m.Entries {
		x := &m.Entries[i]
		EncodeEntry(e, &x.Entry)
		e.Blob(x.Hash[:])
		e.String(x.LinkKey)
		e.String(x.Err)
	}
}

func (m *ManifestBatch) Decode(d *Decoder) error {
	n := d.Len(MaxBatchEntries)
	m.Entries = make([]ManifestEntry, n)
	for i := range m.Entries {
		x := &m.Entries[i]
		DecodeEntry(d, &x.Entry)
		copy(x.Hash[:], d.Blob())
		x.LinkKey = d.String()
		x.Err = d.String()
	}
	return d.Err()
}

// ManifestEnd follows the last ManifestBatch.
type ManifestEnd struct{}

func (*ManifestEnd) Kind() Kind              { return KindManifestEnd }
func (*ManifestEnd) Encode(*Encoder)         {}
func (*ManifestEnd) Decode(d *Decoder) error { return d.Err() }
