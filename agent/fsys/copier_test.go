package fsys_test

import (
	"fmt"
	"io"

	"github.com/ferry-migrate/ferry/agent/fsys"
)

// refCopier is a minimal reference mirror written only against the Root
// API: the read side uses Lstat/OpenDir/ReadDir/Open/DataExtents, the
// write side CreateTemp/Rename/Mkdir/Symlink/Link/Mknod/ApplyMeta(FD).
// It is what the mirror engine does, minus the network.
type refCopier struct {
	src, dst *fsys.Root
	links    map[[2]uint64]string // (dev, ino) -> first relative path written
	bytes    int64                // data bytes written (holes excluded)
}

func copyTree(src, dst *fsys.Root) (*refCopier, error) {
	c := &refCopier{src: src, dst: dst, links: map[[2]uint64]string{}}
	return c, c.copy("")
}

func (c *refCopier) copy(rel string) error {
	e, err := c.src.Lstat(rel)
	if err != nil {
		return err
	}
	if e.Type != fsys.TypeDir && e.Nlink > 1 {
		key := [2]uint64{e.Dev, e.Ino}
		if first, ok := c.links[key]; ok {
			return c.dst.Link(first, rel)
		}
		c.links[key] = rel
	}
	switch e.Type {
	case fsys.TypeDir:
		return c.copyDir(rel, e)
	case fsys.TypeFile:
		return c.copyFile(rel, e)
	case fsys.TypeSymlink:
		if err := c.dst.Symlink(e.Target, rel); err != nil {
			return err
		}
	default:
		if err := c.dst.Mknod(rel, e); err != nil {
			return err
		}
	}
	return c.dst.ApplyMeta(rel, e)
}

// copyDir creates the directory, fills it, and only then applies its
// metadata (mode may be read-only; mtime must not be disturbed later).
func (c *refCopier) copyDir(rel string, e fsys.Entry) error {
	if err := c.dst.Mkdir(rel, 0o700); err != nil {
		return err
	}
	d, err := c.src.OpenDir(rel)
	if err != nil {
		return err
	}
	kids, err := fsys.ReadDir(int(d.Fd()))
	d.Close()
	if err != nil {
		return fmt.Errorf("readdir %q: %w", rel, err)
	}
	for _, k := range kids {
		if err := c.copy(join(rel, k.Path)); err != nil {
			return err
		}
	}
	return c.dst.ApplyMeta(rel, e)
}

// copyFile writes the data extents into a temp file, truncates it to the
// size (holes stay holes), applies metadata by fd and renames into place.
func (c *refCopier) copyFile(rel string, e fsys.Entry) error {
	in, err := c.src.Open(rel)
	if err != nil {
		return err
	}
	defer in.Close()
	dir, base := splitRel(rel)
	out, tmp, err := c.dst.CreateTemp(dir, base)
	if err != nil {
		return err
	}
	defer out.Close()
	exts, err := fsys.DataExtents(in, e.Size)
	if err != nil {
		return err
	}
	for _, x := range exts {
		n, err := io.Copy(io.NewOffsetWriter(out, x.Off), io.NewSectionReader(in, x.Off, x.Len))
		if err != nil {
			return fmt.Errorf("copy %q at %d: %w", rel, x.Off, err)
		}
		c.bytes += n
	}
	if err := out.Truncate(e.Size); err != nil {
		return err
	}
	if err := fsys.ApplyMetaFD(out, e); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return c.dst.Rename(tmp, rel)
}

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

func splitRel(rel string) (string, string) {
	for i := len(rel) - 1; i >= 0; i-- {
		if rel[i] == '/' {
			return rel[:i], rel[i+1:]
		}
	}
	return "", rel
}
