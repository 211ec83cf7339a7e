package fsys

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// DataExtents returns the data regions of the first size bytes of f, found
// with lseek SEEK_DATA/SEEK_HOLE, in ascending order; holes are the gaps.
// If the file system does not support the calls, the whole range is one
// extent. A file whose size is 0 has no extents. It moves f's file offset
// (callers read with ReadAt).
//
// A receiver recreates holes by writing only the extents (WriteAt) into a
// fresh file and then truncating it to size: the unwritten ranges stay
// holes. PunchHole turns a range of an existing file back into a hole.
func DataExtents(f *os.File, size int64) ([]Extent, error) {
	if size <= 0 {
		return nil, nil
	}
	fd := int(f.Fd())
	var out []Extent
	off := int64(0)
	for off < size {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if err == unix.ENXIO {
			break // only a hole remains
		}
		if err == unix.EINVAL || err == unix.EOPNOTSUPP {
			return []Extent{{Off: 0, Len: size}}, nil
		}
		if err != nil {
			return nil, &os.PathError{Op: "seek data", Path: f.Name(), Err: err}
		}
		if data >= size {
			break
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err == unix.ENXIO {
			hole = size // file shrank meanwhile
		} else if err != nil {
			return nil, &os.PathError{Op: "seek hole", Path: f.Name(), Err: err}
		}
		if hole > size {
			hole = size
		}
		if hole <= data {
			return nil, &os.PathError{Op: "seek hole", Path: f.Name(), Err: fmt.Errorf("hole %d before data %d", hole, data)}
		}
		out = append(out, Extent{Off: data, Len: hole - data})
		off = hole
	}
	return out, nil
}

// PunchHole deallocates [off, off+length) of f, keeping its size; the
// range reads back as zeros. Returns an error wrapping EOPNOTSUPP if the
// file system cannot punch holes (the caller may write zeros instead).
func PunchHole(f *os.File, off, length int64) error {
	if length <= 0 {
		return nil
	}
	err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, length)
	if err != nil {
		return &os.PathError{Op: "punch hole", Path: f.Name(), Err: err}
	}
	return nil
}
