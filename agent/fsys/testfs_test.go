package fsys_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// requireRoot skips t unless the test runs as root (needed for mknod of
// devices, chown to arbitrary ids, trusted.* xattrs and file capabilities).
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mknod of devices, chown to other ids, trusted.* xattrs and security.capability")
	}
}

// fsFeatureGap returns "" if dir's file system supports everything the
// fidelity suite exercises, else what is missing.
func fsFeatureGap(dir string) string {
	f := filepath.Join(dir, ".probe")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		return "writable directory: " + err.Error()
	}
	defer os.Remove(f)
	if err := unix.Setxattr(f, "user.probe", []byte("1"), 0); err != nil {
		return "user.* xattrs: " + err.Error()
	}
	if err := unix.Setxattr(f, "trusted.probe", []byte("1"), 0); err != nil {
		return "trusted.* xattrs: " + err.Error()
	}
	if out, err := exec.Command("setfacl", "-m", "u:1234:rw", f).CombinedOutput(); err != nil {
		return "POSIX ACLs (setfacl): " + strings.TrimSpace(string(out))
	}
	if err := unix.Mknod(filepath.Join(dir, ".probe-c"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))); err != nil {
		return "mknod of a char device: " + err.Error()
	}
	os.Remove(filepath.Join(dir, ".probe-c"))
	g := filepath.Join(dir, ".probe-s")
	if err := os.WriteFile(g, []byte("x"), 0o600); err == nil {
		defer os.Remove(g)
		if err := os.Truncate(g, 1<<20); err == nil {
			var st unix.Stat_t
			if unix.Stat(g, &st) == nil && st.Blocks*512 >= 1<<20 {
				return "sparse files"
			}
		}
	}
	return ""
}

// fidelityDir returns a fresh directory on a file system with user and
// trusted xattrs, POSIX ACLs, device nodes and sparse files. It uses the
// test's temp dir when that qualifies (ext4 here), else it makes and
// loop-mounts a small ext4 image. FERRY_FSYS_LOOP=1 forces the image, to
// test that path.
func fidelityDir(t *testing.T) string {
	t.Helper()
	requireRoot(t)
	for _, tool := range []string{"setfacl", "getfacl", "setcap", "getcap"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (Debian packages acl and libcap2-bin; .ci/install-packages installs them)", tool)
		}
	}
	d := t.TempDir()
	gap := fsFeatureGap(d)
	if gap == "" && os.Getenv("FERRY_FSYS_LOOP") != "1" {
		return d
	}
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skipf("temp dir lacks %s and mkfs.ext4 is missing to make an ext4 image", gap)
	}
	img := filepath.Join(d, "fs.img")
	mnt := filepath.Join(d, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 256<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-b", "4096", "-I", "256", img).CombinedOutput(); err != nil {
		t.Skipf("temp dir lacks %s and mkfs.ext4 failed: %s", gap, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("temp dir lacks %s and loop-mounting an ext4 image failed: %s", gap, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	if g := fsFeatureGap(mnt); g != "" {
		t.Skipf("even the loop-mounted ext4 image lacks %s", g)
	}
	t.Logf("using a loop-mounted ext4 image at %s (temp dir gap: %q)", mnt, gap)
	return mnt
}
