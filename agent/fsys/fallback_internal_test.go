package fsys

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// The fallbacks for kernels without openat2, fchmodat2 or the *xattrat
// calls cannot be reached on this kernel through the public API; these
// tests call them directly.

func TestFallbackComponentWalk(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "a/b"), 0o755)
	os.Symlink("/", filepath.Join(dir, "a/up"))
	os.Symlink("b", filepath.Join(dir, "a/in"))
	os.WriteFile(filepath.Join(dir, "a/file"), nil, 0o644)
	root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(root)
	fd, err := openComponents(root, "a/b", unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		t.Fatalf("plain walk: %v", err)
	}
	unix.Close(fd)
	for _, p := range []string{"a/up/etc", "a/up", "a/in", "a/in/x"} {
		if fd, err := openComponents(root, p, unix.O_PATH|unix.O_DIRECTORY); !errors.Is(err, ErrSymlinkInPath) {
			if err == nil {
				unix.Close(fd)
			}
			t.Errorf("openComponents(%q) = %v, want ErrSymlinkInPath", p, err)
		}
	}
	if _, err := openComponents(root, "a/file/x", unix.O_PATH|unix.O_DIRECTORY); !errors.Is(err, unix.ENOTDIR) {
		t.Errorf("walk through a file = %v, want ENOTDIR", err)
	}
}

func TestFallbackProcXattrAndChmod(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), nil, 0o644)
	os.Symlink("f", filepath.Join(dir, "l"))
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	if err := unix.Lsetxattr(procPath(dfd, "f"), "user.k", []byte("v"), 0); err != nil {
		t.Skipf("needs user xattrs on the temp dir: %v", err)
	}
	buf := make([]byte, 64)
	n, err := unix.Lgetxattr(procPath(dfd, "f"), "user.k", buf)
	if err != nil || string(buf[:n]) != "v" {
		t.Errorf("Lgetxattr through the proc path: %q, %v", buf[:n], err)
	}
	// The l* variant on a symlink name acts on the symlink, not on f.
	if n, err := unix.Llistxattr(procPath(dfd, "l"), buf); err != nil || n != 0 {
		t.Errorf("Llistxattr on the symlink: %d, %v (followed it?)", n, err)
	}
	m := metaTarget{dirfd: dfd, name: "f", fd: -1}
	if err := m.chmod(0o4711); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	unix.Lstat(filepath.Join(dir, "f"), &st)
	if st.Mode&0o7777 != 0o4711 {
		t.Errorf("chmod set %o", st.Mode&0o7777)
	}
	if err := (metaTarget{dirfd: dfd, name: "l", fd: -1}).chmod(0o600); err == nil {
		t.Error("chmod of a symlink name succeeded")
	}
	if err := chmodViaProc(dfd, "l", 0o600); err == nil {
		t.Error("chmodViaProc of a symlink name succeeded")
	}
	unix.Lstat(filepath.Join(dir, "f"), &st)
	if st.Mode&0o7777 != 0o4711 {
		t.Errorf("chmod through the symlink changed its target to %o", st.Mode&0o7777)
	}
	if err := chmodViaProc(dfd, "f", 0o4751); err != nil {
		t.Errorf("chmodViaProc: %v", err)
	}
	unix.Lstat(filepath.Join(dir, "f"), &st)
	if st.Mode&0o7777 != 0o4751 {
		t.Errorf("chmodViaProc set %o", st.Mode&0o7777)
	}
}
