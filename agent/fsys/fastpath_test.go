package fsys_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ferry-migrate/ferry/agent/fsys"
)

// TestReadRegular reads whole files through raw fds, reports the stat
// taken after the read, and refuses anything but a regular file before
// reading it.
func TestReadRegular(t *testing.T) {
	r, dir := openTestRoot(t)
	data := bytes.Repeat([]byte("ferry!"), 1000)
	if err := os.WriteFile(filepath.Join(dir, "f"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	mt := int64(1_700_000_000_123_456_789)
	if err := unix.UtimesNano(filepath.Join(dir, "f"), []unix.Timespec{unix.NsecToTimespec(mt), unix.NsecToTimespec(mt)}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(data)+10)
	n, st, err := r.ReadRegular("f", buf)
	if err != nil || n != len(data) || !bytes.Equal(buf[:n], data) {
		t.Fatalf("ReadRegular = %d, %v; content equal %v", n, err, bytes.Equal(buf[:n], data))
	}
	if st.Size != int64(len(data)) || st.MtimeNs != mt || st.Allocated < st.Size {
		t.Errorf("stat = %+v, want size %d mtime %d, dense", st, len(data), mt)
	}
	// A buffer smaller than the file: filled, and the stat tells the size.
	small := make([]byte, 100)
	if n, st, err := r.ReadRegular("f", small); err != nil || n != 100 || st.Size != int64(len(data)) || !bytes.Equal(small, data[:100]) {
		t.Errorf("short buffer: %d, %+v, %v", n, st, err)
	}
	// A sparse file reports fewer allocated bytes than its size.
	sp := filepath.Join(dir, "sparse")
	if err := os.WriteFile(sp, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(sp, 1<<20); err != nil {
		t.Fatal(err)
	}
	if _, st, err := r.ReadRegular("sparse", make([]byte, 1<<20)); err != nil || st.Allocated >= st.Size {
		t.Errorf("sparse: %+v, %v", st, err)
	}
	// Not regular: refused, a FIFO without blocking.
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"fifo", "d"} {
		if _, _, err := r.ReadRegular(name, buf); !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EISDIR) {
			t.Errorf("ReadRegular(%s) = %v, want EINVAL", name, err)
		}
	}
	if err := os.Symlink("f", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.ReadRegular("link", buf); !errors.Is(err, fsys.ErrSymlinkInPath) {
		t.Errorf("ReadRegular(link) = %v, want ErrSymlinkInPath", err)
	}
}

// TestCreateTempPerm: the temporary gets the final permission bits minus
// group/other write and umask, never more, and stays writable by its fd.
func TestCreateTempPerm(t *testing.T) {
	r, dir := openTestRoot(t)
	old := unix.Umask(0o022)
	defer unix.Umask(old)
	for perm, want := range map[uint32]uint32{0o644: 0o644, 0o666: 0o644, 0o4755: 0o755, 0o000: 0o600, 0o777: 0o755} {
		f, rel, err := r.CreateTempPerm("", "x", perm)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("data")); err != nil {
			t.Errorf("write to temp of perm %o: %v", perm, err)
		}
		f.Close()
		fi, err := os.Lstat(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		if got := uint32(fi.Mode().Perm()) | uint32(fi.Mode()&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky)>>12); got != want {
			t.Errorf("CreateTempPerm(%o): mode %o, want %o", perm, got, want)
		}
	}
}

// TestApplyMetaSkipsOnlyWhatIsRight: ApplyMetaFD and ApplyMeta skip the
// calls whose outcome is already there, yet every outcome is right: an
// access ACL that changes the group bits still ends with the wanted mode,
// setuid/setgid survive a same-owner apply, times are set.
func TestApplyMetaSkipsOnlyWhatIsRight(t *testing.T) {
	r, dir := openTestRoot(t)
	me := uint32(os.Getuid())
	gid := uint32(os.Getgid())
	cases := []fsys.Entry{
		{Type: fsys.TypeFile, Mode: 0o644, Uid: me, Gid: gid, MtimeNs: 1_000_000_007, AtimeNs: 5},
		{Type: fsys.TypeFile, Mode: 0o6755, Uid: me, Gid: gid, MtimeNs: 2_000_000_009, AtimeNs: 6},
		{Type: fsys.TypeFile, Mode: 0o600, Uid: me, Gid: gid, MtimeNs: 3, AtimeNs: 7},
	}
	if _, err := exec.LookPath("setfacl"); err == nil {
		// An access ACL with a rwx mask: the mode's group bits are the
		// mask (0670), which the temporary (0650) does not have yet.
		acl := aclValue(t, dir)
		if acl != nil {
			cases = append(cases, fsys.Entry{Type: fsys.TypeFile, Mode: 0o670, Uid: me, Gid: gid, MtimeNs: 4, AtimeNs: 8,
				Xattrs: []fsys.Xattr{{Name: "system.posix_acl_access", Value: acl}}})
		}
	}
	for i, e := range cases {
		f, rel, err := r.CreateTempPerm("", "x", e.Mode)
		if err != nil {
			t.Fatal(err)
		}
		if err := fsys.ApplyMetaFD(f, e); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		f.Close()
		got, err := r.Lstat(rel)
		if err != nil {
			t.Fatal(err)
		}
		e.Path = got.Path
		if d := fsys.CompareMeta(e, got); d != nil {
			t.Errorf("case %d (fd): differs in %v: got mode %o", i, d, got.Mode)
		}
		// Path-based apply over an object that is already right except
		// for the mode (a change of mode alone must still be made).
		e2 := e
		e2.Mode = e.Mode ^ 0o004
		if err := r.ApplyMeta(rel, e2); err != nil {
			t.Fatal(err)
		}
		if got, _ := r.Lstat(rel); got.Mode != e2.Mode || got.MtimeNs != e.MtimeNs {
			t.Errorf("case %d (path): mode %o mtime %d, want %o %d", i, got.Mode, got.MtimeNs, e2.Mode, e.MtimeNs)
		}
	}
}

// aclValue returns the raw system.posix_acl_access value of an ACL with a
// rwx mask, built by setfacl on a scratch file (nil if the file system
// refuses ACLs).
func aclValue(t *testing.T, dir string) []byte {
	t.Helper()
	p := filepath.Join(dir, "acl-scratch")
	if err := os.WriteFile(p, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(p)
	if out, err := exec.Command("setfacl", "-m", "u:12345:rwx", p).CombinedOutput(); err != nil {
		t.Logf("setfacl: %v: %s", err, out)
		return nil
	}
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(p, "system.posix_acl_access", buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}
