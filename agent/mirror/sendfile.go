package mirror

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/ferry-migrate/ferry/agent/fsys"
	"github.com/ferry-migrate/ferry/agent/wire"
	"golang.org/x/sys/unix"
)

// sendFile sends the content the target asked for, then FileEnd. A file that
// cannot be read is handled by the error policy; one that changed while it
// was read is reported as FileChanged and listed as skipped.
func (s *Sender) sendFile(ctx context.Context, it sendItem, buf []byte, subs *subRoots) error {
	e := it.e
	var f *os.File
	var err error
	if s.openHook != nil {
		err = s.openHook(e.Path)
	}
	if err != nil {
		return s.readFailed(it, err)
	}
	if it.need.Action == wire.NeedFull && e.Size < int64(len(buf)) {
		if done, err := s.sendWhole(ctx, it, subs, buf); done || err != nil {
			return err
		}
	}
	if f, err = openVia(subs, e.Path); err != nil {
		return s.readFailed(it, err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return s.readFailed(it, err)
	}
	if st.Size != e.Size || st.Mtim.Nano() != e.MtimeNs {
		return s.changed(it)
	}
	sent, prefixSent, err := s.streamContent(ctx, it, f, st.Blocks*512 < st.Size, buf)
	if err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if _, ok := err.(sendErr); ok {
			return err.(sendErr).err
		}
		return s.readFailed(it, err)
	}
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return s.readFailed(it, err)
	}
	if st.Size != e.Size || st.Mtim.Nano() != e.MtimeNs {
		return s.changed(it)
	}
	if err := s.Conn.WriteMsg(&wire.FileEnd{ID: it.id, Status: wire.FileOK, Size: e.Size}); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	s.c.filesDone.Add(1)
	s.c.bytesDone.Add(e.Size)
	switch {
	case it.need.Action == wire.NeedFull:
		s.c.filesSent.Add(1)
	case it.need.Resumed:
		s.c.filesSent.Add(1)
		s.c.resumedFiles.Add(1)
		s.c.resumedBytes.Add(max(0, min(it.need.ValidLen, e.Size)-prefixSent))
	case sent > 0 || e.Size != it.need.ValidLen:
		s.c.filesSent.Add(1)
		s.c.delta.Add(1)
	default:
		s.c.upToDate.Add(1)
	}
	s.c.bytesSent.Add(sent)
	return nil
}

// sendWhole sends a file that fits one frame with one read (the common
// small file), through raw file descriptors (Root.ReadRegular: openat,
// fstat, pread, fstat, close). It reads exactly the size the scan saw and
// checks size and mtime after the read; a file that grew, shrank or was
// touched is reported as changed. It returns done=false, having sent
// nothing, for a sparse file (the general path keeps its holes).
func (s *Sender) sendWhole(ctx context.Context, it sendItem, subs *subRoots, buf []byte) (done bool, err error) {
	e := it.e
	n, st, rerr := readVia(subs, e.Path, buf[:e.Size])
	if rerr != nil {
		return true, s.readFailed(it, rerr)
	}
	if int64(n) != e.Size || st.Size != e.Size || st.MtimeNs != e.MtimeNs {
		return true, s.changed(it)
	}
	if st.Allocated < st.Size {
		return false, nil
	}
	if n > 0 {
		if err := s.write(ctx, it.id, 0, buf[:n]); err != nil {
			if ctx.Err() != nil {
				return true, context.Cause(ctx)
			}
			return true, err.(sendErr).err
		}
	}
	if err := s.Conn.WriteMsg(&wire.FileEnd{ID: it.id, Status: wire.FileOK, Size: e.Size}); err != nil {
		return true, fmt.Errorf("send: %w", err)
	}
	s.c.filesDone.Add(1)
	s.c.bytesDone.Add(e.Size)
	s.c.filesSent.Add(1)
	s.c.bytesSent.Add(int64(n))
	return true, nil
}

// sendErr marks a transport error (as opposed to a read error).
type sendErr struct{ err error }

func (e sendErr) Error() string { return e.err.Error() }

func (s *Sender) write(ctx context.Context, id uint64, off int64, p []byte) error {
	if err := s.Conn.WriteData(ctx, id, off, p); err != nil {
		return sendErr{fmt.Errorf("send: %w", err)}
	}
	return nil
}

// streamContent sends the wanted ranges of f and returns the content bytes
// sent (and how many of them were below the target's ValidLen). Full: every data extent (holes are skipped when the file is sparse).
// Delta: blocks below ValidLen whose hash differs from the target's, and
// everything from ValidLen on.
func (s *Sender) streamContent(ctx context.Context, it sendItem, f *os.File, sparse bool, buf []byte) (sent, prefixSent int64, err error) {
	size := it.e.Size
	var streamed int64 // counted in progress until the file is done
	defer func() { s.c.streaming.Add(-streamed) }()
	from := int64(0)
	if it.need.Action == wire.NeedDelta {
		valid := min(it.need.ValidLen, size)
		hashes := it.need.Hashes
		if it.need.BlockSize != BlockSize {
			return 0, 0, sendErr{fmt.Errorf("%w: block size %d, want %d", wire.ErrProtocol, it.need.BlockSize, BlockSize)}
		}
		// Coalesce runs of differing blocks into frames of up to frameSize.
		runOff, runLen := int64(0), 0
		flushRun := func() error {
			if runLen == 0 {
				return nil
			}
			if err := s.write(ctx, it.id, runOff, buf[:runLen]); err != nil {
				return err
			}
			sent += int64(runLen)
			runLen = 0
			return nil
		}
		for i, off := 0, int64(0); off < valid; i, off = i+1, off+BlockSize {
			l := int(min(int64(BlockSize), valid-off))
			if runLen+l > len(buf) {
				if err := flushRun(); err != nil {
					return sent, prefixSent, err
				}
			}
			blk := buf[runLen : runLen+l]
			if _, err := f.ReadAt(blk, off); err != nil {
				return sent, prefixSent, err
			}
			h := blockHash(blk)
			// Equal hashes over equal ranges: the target already has the block.
			// (When the target's base is longer, its last block covers more
			// bytes and the hashes differ, so the block is sent.)
			if (i+1)*wire.HashSize <= len(hashes) && bytes.Equal(h[:], hashes[i*wire.HashSize:(i+1)*wire.HashSize]) {
				if err := flushRun(); err != nil {
					return sent, prefixSent, err
				}
				continue
			}
			if runLen == 0 {
				runOff = off
			}
			runLen += l
		}
		if err := flushRun(); err != nil {
			return sent, prefixSent, err
		}
		prefixSent = sent
		from = valid
	}
	if from >= size {
		return sent, prefixSent, nil
	}
	extents := []fsys.Extent{{Off: from, Len: size - from}}
	if sparse {
		all, err := fsys.DataExtents(f, size)
		if err != nil {
			return sent, prefixSent, err
		}
		extents = extents[:0]
		for _, x := range all {
			end := x.Off + x.Len
			if end <= from {
				continue
			}
			if x.Off < from {
				x = fsys.Extent{Off: from, Len: end - from}
			}
			extents = append(extents, x)
		}
	}
	for _, x := range extents {
		for off, end := x.Off, x.Off+x.Len; off < end; {
			l := int(min(int64(len(buf)), end-off))
			n, err := f.ReadAt(buf[:l], off)
			if n < l {
				if err == nil || err == io.EOF {
					err = fmt.Errorf("file shrank while read (at %d)", off+int64(n))
				}
				return sent, prefixSent, err
			}
			if err := s.write(ctx, it.id, off, buf[:l]); err != nil {
				return sent, prefixSent, err
			}
			sent += int64(l)
			off += int64(l)
			streamed += int64(l)
			s.c.streaming.Add(int64(l))
		}
	}
	return sent, prefixSent, nil
}

// readFailed applies the error policy to a file that could not be read.
func (s *Sender) readFailed(it sendItem, err error) error {
	if s.Job.Opts.OnError != wire.OnErrorSkip {
		return fmt.Errorf("%w: %s: %w", wire.ErrUnreadable, it.e.Path, err)
	}
	s.Log.Warn("skipping unreadable file", "path", it.e.Path, "err", err)
	s.c.skip(it.e.Path, err.Error())
	s.c.filesDone.Add(1)
	if werr := s.Conn.WriteMsg(&wire.FileEnd{ID: it.id, Status: wire.FileSkipped, Reason: err.Error()}); werr != nil {
		return fmt.Errorf("send: %w", werr)
	}
	return nil
}

// changed reports a file that changed on the source while it was read.
func (s *Sender) changed(it sendItem) error {
	s.c.skip(it.e.Path, "changed on the source while it was read")
	s.c.filesDone.Add(1)
	if err := s.Conn.WriteMsg(&wire.FileEnd{ID: it.id, Status: wire.FileChanged, Reason: "changed while read"}); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// readVia is Root.ReadRegular through the cached Root of rel's directory.
func readVia(subs *subRoots, rel string, buf []byte) (int, fsys.FileStat, error) {
	dir, name := splitRel(rel)
	sub, err := subs.get(dir)
	if err != nil {
		return subs.root.ReadRegular(rel, buf) // the precise error
	}
	defer subs.put(dir)
	n, st, err := sub.ReadRegular(name, buf)
	if err != nil {
		return n, st, &os.PathError{Op: "read", Path: rel, Err: unwrapPath(err)}
	}
	return n, st, nil
}

// openVia opens rel for reading through the cached Root of its directory
// (files of one directory are read one after another).
func openVia(subs *subRoots, rel string) (*os.File, error) {
	dir, name := splitRel(rel)
	sub, err := subs.get(dir)
	if err != nil {
		return subs.root.Open(rel) // the precise error
	}
	defer subs.put(dir)
	f, err := sub.Open(name)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: rel, Err: unwrapPath(err)}
	}
	return f, nil
}
