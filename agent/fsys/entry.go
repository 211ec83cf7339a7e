package fsys

import (
	"bytes"
	"strings"

	"golang.org/x/sys/unix"
)

// Type is the kind of a file-system object.
type Type uint8

// The kinds of object Ferry preserves. The zero value is not a valid type.
const (
	TypeFile Type = iota + 1
	TypeDir
	TypeSymlink
	TypeFIFO
	TypeChar
	TypeBlock
	TypeSocket
)

// String returns a short lower-case name ("file", "dir", ...).
func (t Type) String() string {
	switch t {
	case TypeFile:
		return "file"
	case TypeDir:
		return "dir"
	case TypeSymlink:
		return "symlink"
	case TypeFIFO:
		return "fifo"
	case TypeChar:
		return "char"
	case TypeBlock:
		return "block"
	case TypeSocket:
		return "socket"
	}
	return "unknown"
}

// ifmt returns the S_IF* bits for t, or 0 for an invalid type.
func (t Type) ifmt() uint32 {
	switch t {
	case TypeFile:
		return unix.S_IFREG
	case TypeDir:
		return unix.S_IFDIR
	case TypeSymlink:
		return unix.S_IFLNK
	case TypeFIFO:
		return unix.S_IFIFO
	case TypeChar:
		return unix.S_IFCHR
	case TypeBlock:
		return unix.S_IFBLK
	case TypeSocket:
		return unix.S_IFSOCK
	}
	return 0
}

// typeFromMode maps the S_IFMT bits of st_mode to a Type (0 if unknown).
func typeFromMode(mode uint32) Type {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return TypeFile
	case unix.S_IFDIR:
		return TypeDir
	case unix.S_IFLNK:
		return TypeSymlink
	case unix.S_IFIFO:
		return TypeFIFO
	case unix.S_IFCHR:
		return TypeChar
	case unix.S_IFBLK:
		return TypeBlock
	case unix.S_IFSOCK:
		return TypeSocket
	}
	return 0
}

// typeFromDirent maps a getdents d_type to a Type (0 for DT_UNKNOWN).
func typeFromDirent(dt uint8) Type {
	switch dt {
	case unix.DT_REG:
		return TypeFile
	case unix.DT_DIR:
		return TypeDir
	case unix.DT_LNK:
		return TypeSymlink
	case unix.DT_FIFO:
		return TypeFIFO
	case unix.DT_CHR:
		return TypeChar
	case unix.DT_BLK:
		return TypeBlock
	case unix.DT_SOCK:
		return TypeSocket
	}
	return 0
}

// Xattr is one extended attribute: its full name including the namespace
// prefix ("user.", "trusted.", "security.", "system.") and its raw value.
type Xattr struct {
	Name  string
	Value []byte
}

// Entry is everything Ferry preserves about one object.
//
// Path is relative to the root, '/'-separated, with no leading slash, and ""
// for the root itself; names are raw bytes (any byte except '/' and NUL, may
// be invalid UTF-8, up to 255 bytes).
type Entry struct {
	Path    string
	Type    Type
	Mode    uint32 // permission bits incl. setuid/setgid/sticky (07777)
	Uid     uint32
	Gid     uint32
	Size    int64
	MtimeNs int64 // nanoseconds since the Unix epoch
	AtimeNs int64
	Rdev    uint64 // device number of TypeChar/TypeBlock
	Target  string // symlink target, verbatim
	// Xattrs holds every extended attribute in every namespace, including
	// system.posix_acl_access/default, security.capability and trusted.*,
	// sorted by name.
	Xattrs []Xattr
	// Dev, Ino and Nlink identify the object on its own host, for hardlink
	// detection on the source. They are never applied or compared.
	Dev   uint64
	Ino   uint64
	Nlink uint32
}

// Xattr returns the value of the named attribute and whether it is present.
func (e *Entry) Xattr(name string) ([]byte, bool) {
	for _, x := range e.Xattrs {
		if x.Name == name {
			return x.Value, true
		}
	}
	return nil, false
}

// Extent is a byte range of a file that holds data (not a hole).
type Extent struct {
	Off int64
	Len int64
}

// DiffKind names one way two entries, or two trees, differ.
type DiffKind string

// The kinds of difference. CompareMeta reports only the metadata kinds;
// DiffMissing, DiffExtra, DiffContent and DiffHardlink are for the engine,
// which sees trees and content.
const (
	DiffMissing  DiffKind = "missing"
	DiffExtra    DiffKind = "extra"
	DiffType     DiffKind = "type"
	DiffContent  DiffKind = "content"
	DiffSize     DiffKind = "size"
	DiffMode     DiffKind = "mode"
	DiffOwner    DiffKind = "owner"
	DiffMtime    DiffKind = "mtime"
	DiffXattrs   DiffKind = "xattrs"
	DiffACL      DiffKind = "acl"
	DiffTarget   DiffKind = "target"
	DiffRdev     DiffKind = "rdev"
	DiffHardlink DiffKind = "hardlink"
)

const (
	xattrACLAccess  = "system.posix_acl_access"
	xattrACLDefault = "system.posix_acl_default"
	xattrCapability = "security.capability"
)

func isACL(name string) bool { return name == xattrACLAccess || name == xattrACLDefault }

// CompareMeta compares the metadata of src and dst and returns the kinds of
// difference, in a fixed order, or nil when they match. It ignores Path,
// content, atime, Dev, Ino and Nlink. A type difference is reported alone.
// Size is compared for regular files only, mode for everything but symlinks
// (whose mode Linux fixes at 0777), mtime for every type including
// directories and symlinks. POSIX ACLs are reported as DiffACL, every other
// attribute as DiffXattrs.
func CompareMeta(src, dst Entry) []DiffKind {
	if src.Type != dst.Type {
		return []DiffKind{DiffType}
	}
	var d []DiffKind
	if src.Type == TypeFile && src.Size != dst.Size {
		d = append(d, DiffSize)
	}
	if src.Type != TypeSymlink && src.Mode&07777 != dst.Mode&07777 {
		d = append(d, DiffMode)
	}
	if src.Uid != dst.Uid || src.Gid != dst.Gid {
		d = append(d, DiffOwner)
	}
	if src.MtimeNs != dst.MtimeNs {
		d = append(d, DiffMtime)
	}
	if !xattrsEqual(src.Xattrs, dst.Xattrs, func(n string) bool { return !isACL(n) }) {
		d = append(d, DiffXattrs)
	}
	if !xattrsEqual(src.Xattrs, dst.Xattrs, isACL) {
		d = append(d, DiffACL)
	}
	if src.Type == TypeSymlink && src.Target != dst.Target {
		d = append(d, DiffTarget)
	}
	if (src.Type == TypeChar || src.Type == TypeBlock) && src.Rdev != dst.Rdev {
		d = append(d, DiffRdev)
	}
	return d
}

// xattrsEqual compares the attributes selected by keep in a and b, both
// sorted by name.
func xattrsEqual(a, b []Xattr, keep func(string) bool) bool {
	i, j := 0, 0
	for {
		for i < len(a) && !keep(a[i].Name) {
			i++
		}
		for j < len(b) && !keep(b[j].Name) {
			j++
		}
		if i == len(a) || j == len(b) {
			return i == len(a) && j == len(b)
		}
		if a[i].Name != b[j].Name || !bytes.Equal(a[i].Value, b[j].Value) {
			return false
		}
		i++
		j++
	}
}

// joinRel joins a relative directory and a name ("" is the root).
func joinRel(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// splitRel splits a clean relative path into its parent and final name.
func splitRel(rel string) (dir, name string) {
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return "", rel
	}
	return rel[:i], rel[i+1:]
}
