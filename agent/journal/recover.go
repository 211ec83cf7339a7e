package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
)

// The meta file holds what segments alone cannot tell after segments were
// dropped: the acknowledged point and the floor for the next sequence number.
//
//	u64 acked | u64 floor | u32 CRC32C of the 16 bytes before
//
// It is replaced atomically (write temp, fsync, rename, fsync dir).
const (
	metaName = "meta"
	metaSize = 20
)

type meta struct{ acked, floor uint64 }

func readMeta(dir string) (meta, error) {
	b, err := os.ReadFile(filepath.Join(dir, metaName))
	if errors.Is(err, fs.ErrNotExist) {
		return meta{}, nil
	}
	if err != nil {
		return meta{}, fmt.Errorf("journal: read meta: %w", err)
	}
	if len(b) != metaSize || crc32.Checksum(b[:16], castagnoli) != binary.LittleEndian.Uint32(b[16:]) {
		return meta{}, fmt.Errorf("journal: meta file %s is corrupt", filepath.Join(dir, metaName))
	}
	return meta{acked: binary.LittleEndian.Uint64(b), floor: binary.LittleEndian.Uint64(b[8:])}, nil
}

func writeMeta(dir string, m meta) error {
	b := binary.LittleEndian.AppendUint64(nil, m.acked)
	b = binary.LittleEndian.AppendUint64(b, m.floor)
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	tmp := filepath.Join(dir, metaName+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("journal: write meta: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, metaName))
	}
	if err != nil {
		return fmt.Errorf("journal: write meta: %w", err)
	}
	return syncDir(dir)
}

// recover loads the segments: it keeps the longest run of valid, contiguous
// records, truncates the segment where the run breaks and removes every
// later segment, removes segments wholly acknowledged or below the floor,
// flushes what it kept (records found after a kill -9 may still be only in
// the page cache) and creates the active segment when none is left.
func (j *Journal) recover() error {
	m, err := readMeta(j.dir)
	if err != nil {
		return err
	}
	segs, err := listSegments(j.dir)
	if err != nil {
		return err
	}
	var kept []*segment
	broken := false
	expect := uint64(0) // first seq the next segment must start with; 0: any
	lastCum, lastWeight := int64(0), int64(0)
	for _, s := range segs {
		if broken || (expect != 0 && s.first != expect) || s.first == 0 {
			if !broken {
				j.log.Warn("journal: segment does not continue the previous one; removing it and later ones",
					"segment", s.path, "want_first", expect)
			}
			broken = true
			if err := os.Remove(s.path); err != nil {
				return fmt.Errorf("journal: remove %s: %w", s.path, err)
			}
			continue
		}
		f, err := os.OpenFile(s.path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("journal: open segment: %w", err)
		}
		s.f = f
		kept = append(kept, s)
		fi, err := f.Stat()
		if err != nil {
			return fmt.Errorf("journal: stat segment: %w", err)
		}
		want := s.first
		end, serr := s.scan(0, fi.Size(), func(r Record, cum, off int64) bool {
			if r.Seq != want {
				return false
			}
			s.note(r.Seq, off)
			lastCum, lastWeight = cum, weight(&r)
			want++
			return true
		})
		s.last = want - 1
		s.size = end
		if serr != nil || end < fi.Size() {
			j.log.Warn("journal: truncating torn or corrupt tail", "segment", s.path,
				"at", end, "dropped_bytes", fi.Size()-end, "last_seq", s.last)
			if err := f.Truncate(end); err != nil {
				return fmt.Errorf("journal: truncate %s: %w", s.path, err)
			}
			broken = true
		}
		expect = s.last + 1
	}
	j.segs = kept
	// Sequence numbers: after the last record, never below the floor or the
	// acknowledged point.
	j.next = max(m.floor, m.acked+1, 1)
	if len(kept) > 0 {
		j.next = max(j.next, kept[len(kept)-1].last+1)
	}
	j.acked = min(m.acked, j.next-1)
	j.floor = m.floor
	j.cum = lastCum + lastWeight
	// Drop segments wholly acknowledged (a crash between ack and removal)
	// or from before a Reset, keeping at least the active one.
	for len(j.segs) > 1 && (j.segs[0].last <= j.acked || j.segs[0].last < m.floor) {
		s := j.segs[0]
		s.f.Close()
		if err := os.Remove(s.path); err != nil {
			return fmt.Errorf("journal: remove %s: %w", s.path, err)
		}
		j.segs = j.segs[1:]
	}
	if len(j.segs) == 0 || j.segs[len(j.segs)-1].last+1 != j.next {
		// No segment, or the only ones left end before the floor: start a
		// fresh active segment at next.
		for _, s := range j.segs {
			s.f.Close()
			os.Remove(s.path)
		}
		s, err := createSegment(j.dir, j.next)
		if err != nil {
			return err
		}
		j.segs = []*segment{s}
	}
	for _, s := range j.segs {
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("journal: fsync %s: %w", s.path, err)
		}
		j.disk += s.size
	}
	if err := syncDir(j.dir); err != nil {
		return err
	}
	j.written = j.next - 1
	j.durable = j.next - 1
	return nil
}
