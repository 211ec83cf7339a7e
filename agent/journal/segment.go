package journal

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// A segment is one file of consecutive records, named after the sequence
// number of its first record: seg-<20 digits>.log.
type segment struct {
	first uint64 // seq of the first record (from the name)
	last  uint64 // seq of the last record; first-1 when empty
	size  int64  // bytes of whole records
	path  string
	f     *os.File // open for the journal's lifetime (reads use pread)
	// index samples (seq, offset) every indexEvery records so a read
	// starts near its target instead of at the segment's start.
	index []indexEntry
}

type indexEntry struct {
	seq uint64
	off int64
}

const (
	segPrefix  = "seg-"
	segSuffix  = ".log"
	indexEvery = 64
)

func segName(first uint64) string { return fmt.Sprintf("%s%020d%s", segPrefix, first, segSuffix) }

// listSegments returns the segment files of dir by first seq.
func listSegments(dir string) ([]*segment, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("journal: list %s: %w", dir, err)
	}
	var segs []*segment
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, segPrefix) || !strings.HasSuffix(name, segSuffix) {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, segPrefix), segSuffix), 10, 64)
		if err != nil {
			continue
		}
		segs = append(segs, &segment{first: first, last: first - 1, path: filepath.Join(dir, name)})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].first < segs[j].first })
	return segs, nil
}

// createSegment creates an empty segment file starting at first.
func createSegment(dir string, first uint64) (*segment, error) {
	p := filepath.Join(dir, segName(first))
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal: create segment: %w", err)
	}
	return &segment{first: first, last: first - 1, path: p, f: f}, nil
}

// note records that a record with seq starts at off (for the index).
func (s *segment) note(seq uint64, off int64) {
	if (seq-s.first)%indexEvery == 0 {
		s.index = append(s.index, indexEntry{seq, off})
	}
}

// offsetFor returns an offset at or before the record with seq.
func (s *segment) offsetFor(seq uint64) int64 {
	i := sort.Search(len(s.index), func(i int) bool { return s.index[i].seq > seq })
	if i == 0 {
		return 0
	}
	return s.index[i-1].off
}

// scan reads records from off to end (a size snapshot), calling fn for each
// with its offset and cum; fn returns false to stop. A bad frame ends the
// scan with errBadRecord and the offset where it starts.
func (s *segment) scan(off, end int64, fn func(r Record, cum int64, off int64) bool) (int64, error) {
	br := bufio.NewReaderSize(io.NewSectionReader(s.f, off, end-off), int(min(max(end-off, 4096), 256<<10)))
	buf := make([]byte, 0, 4096)
	for off < end {
		hdr, err := br.Peek(frameHeader)
		if err != nil {
			return off, errBadRecord
		}
		n := frameHeader + int(uint32(hdr[0])|uint32(hdr[1])<<8|uint32(hdr[2])<<16|uint32(hdr[3])<<24)
		if n > frameHeader+maxPayload {
			return off, errBadRecord
		}
		buf = buf[:0]
		if cap(buf) < n {
			buf = make([]byte, 0, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(br, buf); err != nil {
			return off, errBadRecord
		}
		r, cum, _, err := decodeRecord(buf)
		if err != nil {
			return off, err
		}
		if !fn(r, cum, off) {
			return off, nil
		}
		off += int64(n)
	}
	return off, nil
}
