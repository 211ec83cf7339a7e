package replicate

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"

	"golang.org/x/sys/unix"

	"github.com/ferry-migrate/ferry/agent/fsys"
	"github.com/ferry-migrate/ferry/agent/wire"
)

// applier applies SyncOps to the target tree. Every file system access goes
// through the fsys.Root, so nothing outside the root is ever touched and no
// symlink in the tree is followed.
//
// Regular files are replaced atomically: the content goes to a temporary
// file in the same directory (CreateTemp), which gets its metadata and is
// renamed over the final name, so a reader never sees a torn file. A delta
// op copies the current file into the temporary file (copy_file_range),
// patches the changed blocks and renames it over the same way. A new file
// (nothing at its path) is written unnamed (O_TMPFILE) and linked in when
// complete. Files with several links are written in place instead (their
// other names must keep sharing the inode).
type applier struct {
	root  *fsys.Root
	log   *slog.Logger
	buf   []byte
	temps *intents
	// noUnnamed is set once the target's file system refused an unnamed
	// file (no O_TMPFILE).
	noUnnamed bool
}

// apply applies op, reading its content from c when op.Content is set.
func (a *applier) apply(c *wire.Conn, op *wire.SyncOp) error {
	for _, p := range []string{op.Path, op.From, op.LinkTo} {
		if p == "" {
			continue
		}
		if _, err := fsys.CleanRel(p); err != nil {
			return err
		}
	}
	var err error
	switch op.Op {
	case wire.SyncOpNone:
	case wire.SyncOpDelete:
		err = a.remove(op.Path)
	case wire.SyncOpPut:
		err = a.put(c, op)
	case wire.SyncOpDelta:
		err = a.delta(c, op)
	case wire.SyncOpRename:
		err = a.rename(c, op)
	case wire.SyncOpLink:
		err = a.link(c, op)
	case wire.SyncOpPrune:
		err = a.prune(op)
	default:
		err = fmt.Errorf("%w: unknown sync op %d", wire.ErrProtocol, op.Op)
	}
	if err != nil {
		return err
	}
	for _, p := range op.Parents {
		if p.Type != fsys.TypeDir {
			continue
		}
		if err := a.root.ApplyMeta(p.Path, p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("parent metadata: %w", err)
		}
	}
	return nil
}

func (a *applier) remove(rel string) error {
	if rel == "" {
		return fmt.Errorf("%w: refusing to delete the root", wire.ErrBadPath)
	}
	return a.root.RemoveAll(rel)
}

// clearFor removes what is at rel unless it can be replaced by a rename of
// an object of type t (a non-directory over a non-directory); exists
// reports whether something is still there.
func (a *applier) clearFor(rel string, t fsys.Type) (exists bool, err error) {
	cur, err := a.root.Lstat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if cur.Type == fsys.TypeDir || t == fsys.TypeDir {
		return false, a.root.RemoveAll(rel)
	}
	return true, nil
}

// ensureParent creates the parent directory of rel if it is missing (its
// own record, later or earlier, sets its metadata).
func (a *applier) ensureParent(rel string) error {
	dir := path.Dir(rel)
	if dir == "." {
		return nil
	}
	return a.root.MkdirAll(dir)
}

func (a *applier) put(c *wire.Conn, op *wire.SyncOp) error {
	e := op.Entry
	e.Path = op.Path
	if op.Path == "" && e.Type != fsys.TypeDir {
		return fmt.Errorf("%w: the root must be a directory", wire.ErrBadPath)
	}
	if op.Path != "" {
		if err := a.ensureParent(op.Path); err != nil {
			return err
		}
	}
	switch e.Type {
	case fsys.TypeDir:
		cur, err := a.root.Lstat(op.Path)
		if err == nil && cur.Type != fsys.TypeDir {
			if err := a.root.RemoveAll(op.Path); err != nil {
				return err
			}
			err = fs.ErrNotExist
		}
		if errors.Is(err, fs.ErrNotExist) {
			if err := a.root.Mkdir(op.Path, 0o700); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		return a.root.ApplyMeta(op.Path, e)
	case fsys.TypeFile:
		if !op.Content {
			return fmt.Errorf("%w: file put without content", wire.ErrProtocol)
		}
		return a.writeFile(c, op, e, nil)
	case fsys.TypeSymlink, fsys.TypeFIFO, fsys.TypeChar, fsys.TypeBlock, fsys.TypeSocket:
		return a.special(op.Path, e)
	}
	return fmt.Errorf("%w: put of type %d", wire.ErrProtocol, e.Type)
}

// special creates a symlink or special file under a temporary name and
// renames it over rel.
func (a *applier) special(rel string, e fsys.Entry) error {
	if _, err := a.clearFor(rel, e.Type); err != nil {
		return err
	}
	// CreateTemp reserves a unique name; replace the file by the object.
	f, tmp, err := a.root.CreateTemp(parentDir(rel), path.Base(rel))
	if err != nil {
		return err
	}
	a.temps.note(tmp)
	f.Close()
	if err := a.root.Remove(tmp); err != nil {
		return err
	}
	if e.Type == fsys.TypeSymlink {
		err = a.root.Symlink(e.Target, tmp)
	} else {
		err = a.root.Mknod(tmp, e)
	}
	if err != nil {
		return err
	}
	e.Path = tmp
	if err := a.root.ApplyMeta(tmp, e); err != nil {
		a.root.Remove(tmp)
		return err
	}
	if err := a.root.Rename(tmp, rel); err != nil {
		a.root.Remove(tmp)
		return err
	}
	return nil
}

// writeFile receives op's content into a temporary file (seeded with base
// when patching) and renames it over op.Path, or writes in place for
// op.InPlace. An abandoned content leaves the target unchanged.
func (a *applier) writeFile(c *wire.Conn, op *wire.SyncOp, e fsys.Entry, base *os.File) error {
	if op.InPlace {
		if f, err := a.root.OpenFile(op.Path, os.O_RDWR, 0); err == nil {
			defer f.Close()
			_, err := a.fill(c, f, e)
			return err
		}
	}
	exists, err := a.clearFor(op.Path, fsys.TypeFile)
	if err != nil {
		return err
	}
	if base == nil && !exists && !a.noUnnamed {
		return a.writeUnnamed(c, op, e)
	}
	f, tmp, err := a.root.CreateTemp(parentDir(op.Path), path.Base(op.Path))
	if err != nil {
		return err
	}
	a.temps.note(tmp)
	ok := false
	defer func() {
		f.Close()
		if !ok {
			a.root.Remove(tmp)
		}
	}()
	if base != nil {
		if _, err := io.Copy(f, base); err != nil {
			return fmt.Errorf("copy base: %w", err)
		}
	}
	end, err := a.receive(c, f)
	if err != nil || end.Abandoned {
		return err
	}
	if err := f.Truncate(e.Size); err != nil {
		return err
	}
	if base != nil {
		want, digest := op.Hashes, op.Digest
		if len(end.Digest) > 0 {
			want, digest = end.Digest, true
		}
		if len(want) > 0 {
			if err := verifyBlocks(f, e.Size, op.BlockSize, want, digest, a.buffer()); err != nil {
				return fmt.Errorf("%w: %s: %v", ErrNeedFull, op.Path, err)
			}
		}
	}
	if err := fsys.ApplyMetaFD(f, e); err != nil {
		return err
	}
	if err := a.root.Rename(tmp, op.Path); err != nil {
		return err
	}
	ok = true
	return nil
}

// writeUnnamed writes a new file as an unnamed inode (O_TMPFILE) and links
// it at op.Path when complete: one directory update instead of a temporary
// name and a rename, nothing left behind by a crash, so no intent record.
// A name that appeared meanwhile gets a temporary name and the rename.
func (a *applier) writeUnnamed(c *wire.Conn, op *wire.SyncOp, e fsys.Entry) error {
	f, err := a.root.CreateUnnamed(parentDir(op.Path), e.Mode)
	if errors.Is(err, fsys.ErrUnnamedUnsupported) {
		a.noUnnamed = true
		return a.writeFile(c, op, e, nil)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if done, err := a.fill(c, f, e); !done {
		return err
	}
	err = a.root.LinkUnnamed(f, op.Path)
	if !errors.Is(err, unix.EEXIST) {
		return err
	}
	tmp, err := a.root.LinkUnnamedTemp(f, parentDir(op.Path), path.Base(op.Path))
	if err != nil {
		return err
	}
	if err := a.root.Rename(tmp, op.Path); err != nil {
		a.root.Remove(tmp)
		return err
	}
	return nil
}

// fill receives op's content into f and gives it e's size and metadata;
// done is false on an error or when the source abandoned the content (f
// then holds what was received).
func (a *applier) fill(c *wire.Conn, f *os.File, e fsys.Entry) (done bool, err error) {
	end, err := a.receive(c, f)
	if err != nil || end.Abandoned {
		return false, err
	}
	if err := f.Truncate(e.Size); err != nil {
		return false, err
	}
	if err := fsys.ApplyMetaFD(f, e); err != nil {
		return false, err
	}
	return true, nil
}

func (a *applier) buffer() []byte {
	if a.buf == nil {
		a.buf = make([]byte, BlockSize)
	}
	return a.buf
}

// receive writes SyncChunks at their offsets until SyncOpEnd and returns
// it (whether the source abandoned the content, the digest to verify).
func (a *applier) receive(c *wire.Conn, f *os.File) (wire.SyncOpEnd, error) {
	for {
		m, err := c.ReadMsg()
		if err != nil {
			return wire.SyncOpEnd{}, err
		}
		switch m := m.(type) {
		case *wire.SyncChunk:
			if _, err := f.WriteAt(m.Data, m.Off); err != nil {
				return wire.SyncOpEnd{}, err
			}
		case *wire.SyncOpEnd:
			return *m, nil
		default:
			return wire.SyncOpEnd{}, fmt.Errorf("%w: unexpected %s in content", wire.ErrProtocol, m.Kind())
		}
	}
}

func (a *applier) delta(c *wire.Conn, op *wire.SyncOp) error {
	e := op.Entry
	e.Path = op.Path
	if op.InPlace {
		return a.appendInPlace(c, op, e)
	}
	base, err := a.root.Open(op.Path)
	if err != nil {
		drain(c)
		return fmt.Errorf("%w: delta base %s: %v", ErrNeedFull, op.Path, err)
	}
	defer base.Close()
	return a.writeFile(c, op, e, base)
}

// drain skips the content of an op that fails before reading it.
func drain(c *wire.Conn) {
	for {
		m, err := c.ReadMsg()
		if err != nil {
			return
		}
		if _, ok := m.(*wire.SyncOpEnd); ok {
			return
		}
	}
}

func (a *applier) rename(c *wire.Conn, op *wire.SyncOp) error {
	_, err := a.root.Lstat(op.From)
	fromExists := err == nil
	e := op.Entry
	e.Path = op.Path
	if fromExists && op.From != op.Path {
		if err := a.ensureParent(op.Path); err != nil {
			return err
		}
		if e.Type != 0 {
			cur, err := a.root.Lstat(op.Path)
			if err == nil && (cur.Type == fsys.TypeDir) != (e.Type == fsys.TypeDir) || err == nil && cur.Type == fsys.TypeDir {
				if err := a.root.RemoveAll(op.Path); err != nil {
					return err
				}
			}
		} else if _, err := a.clearFor(op.Path, fsys.TypeDir); err != nil {
			return err
		}
		if err := a.root.Rename(op.From, op.Path); err != nil {
			return err
		}
		// Renaming over another name of the same inode does nothing
		// (POSIX); on the source the old name is gone.
		if fe, err := a.root.Lstat(op.From); err == nil {
			if pe, err := a.root.Lstat(op.Path); err == nil && pe.Ino == fe.Ino && pe.Dev == fe.Dev {
				if err := a.root.Remove(op.From); err != nil {
					return err
				}
			}
		}
	}
	switch {
	case op.Content:
		return a.writeFile(c, op, e, nil)
	case e.Type == 0:
		return nil // the path is gone on the source; a later record says where
	case !fromExists && op.From != op.Path:
		if _, err := a.root.Lstat(op.Path); err != nil {
			return fmt.Errorf("%w: rename source %s missing", ErrNeedFull, op.From)
		}
	}
	switch e.Type {
	case fsys.TypeSymlink, fsys.TypeFIFO, fsys.TypeChar, fsys.TypeBlock, fsys.TypeSocket:
		cur, err := a.root.Lstat(op.Path)
		if err != nil || cur.Type != e.Type || cur.Target != e.Target || cur.Rdev != e.Rdev {
			return a.special(op.Path, e)
		}
	}
	cur, err := a.root.Lstat(op.Path)
	if err != nil {
		return err
	}
	if cur.Type != e.Type {
		return fmt.Errorf("%w: %s is a %s, the source has a %s", ErrNeedFull, op.Path, cur.Type, e.Type)
	}
	return a.root.ApplyMeta(op.Path, e)
}

// link makes op.Path a hardlink of op.LinkTo, then writes the content in
// place when the op carries it.
func (a *applier) link(c *wire.Conn, op *wire.SyncOp) error {
	fail := func(err error) error {
		if op.Content {
			drain(c)
		}
		return err
	}
	if _, err := a.root.Lstat(op.LinkTo); err != nil {
		return fail(fmt.Errorf("%w: link target %s: %v", ErrNeedFull, op.LinkTo, err))
	}
	if err := a.ensureParent(op.Path); err != nil {
		return fail(err)
	}
	if err := a.root.RemoveAll(op.Path); err != nil {
		return fail(err)
	}
	if err := a.root.Link(op.LinkTo, op.Path); err != nil {
		return fail(fmt.Errorf("%w: link %s: %v", ErrNeedFull, op.Path, err))
	}
	e := op.Entry
	e.Path = op.Path
	if op.Content {
		return a.writeFile(c, op, e, nil)
	}
	return a.root.ApplyMeta(op.Path, e)
}

// prune removes the children of directory op.Path not named in op.Names.
func (a *applier) prune(op *wire.SyncOp) error {
	kids, err := a.root.ReadDir(op.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	keep := make(map[string]bool, len(op.Names))
	for _, n := range op.Names {
		keep[n] = true
	}
	for _, k := range kids {
		if keep[k.Path] {
			continue
		}
		if err := a.root.RemoveAll(joinRel(op.Path, k.Path)); err != nil {
			return err
		}
	}
	return nil
}

func parentDir(rel string) string {
	d := path.Dir(rel)
	if d == "." {
		return ""
	}
	return d
}

func joinRel(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// appendInPlace appends to a large file in place: the op only adds bytes
// past BaseSize, which the current file must have. A reader sees the file
// grow, never a changed prefix; a crash leaves a valid shorter prefix of
// the new content, and the record is shipped again (in full) after it.
func (a *applier) appendInPlace(c *wire.Conn, op *wire.SyncOp, e fsys.Entry) error {
	f, err := a.root.OpenFile(op.Path, os.O_RDWR, 0)
	if err != nil {
		drain(c)
		return fmt.Errorf("%w: append base %s: %v", ErrNeedFull, op.Path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() != op.BaseSize {
		drain(c)
		return fmt.Errorf("%w: append base %s has another size", ErrNeedFull, op.Path)
	}
	end, err := a.receive(c, f)
	if err != nil || end.Abandoned {
		if end.Abandoned {
			return f.Truncate(op.BaseSize)
		}
		return err
	}
	if err := f.Truncate(e.Size); err != nil {
		return err
	}
	return fsys.ApplyMetaFD(f, e)
}
