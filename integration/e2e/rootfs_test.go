package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-migrate/ferry/integration/harness"
)

// The source system is a minimal Debian made with debootstrap from the
// archive this machine's apt is configured for, cached under
// .tools/cache/rootfs between runs.
const (
	rootfsSuite    = "bookworm"
	rootfsPackages = "sqlite3"
)

var rootfsMu sync.Mutex

// debianRootfs returns the cached root file system, building it on first use.
func debianRootfs(t *testing.T) string {
	t.Helper()
	rootfsMu.Lock()
	defer rootfsMu.Unlock()
	dir := filepath.Join(harness.RepoRoot(), ".tools", "cache", "rootfs-"+rootfsSuite)
	stamp := dir + ".complete"
	if _, err := os.Stat(stamp); err == nil {
		return dir
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		t.Skip("the e2e source system needs debootstrap (Debian package debootstrap; go tool task deps installs it)")
	}
	mirror, err := aptMirror()
	if err != nil {
		t.Fatalf("find the Debian archive apt uses: %v", err)
	}
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("building the Debian %s root file system with debootstrap (cached afterwards)", rootfsSuite)
	cmd := exec.Command("debootstrap", "--variant=minbase", "--include="+rootfsPackages, rootfsSuite, dir, mirror)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("debootstrap: %v\n%s", err, tailString(string(out), 3000))
	}
	if err := os.WriteFile(stamp, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// aptMirror reads the first Debian archive URI from apt's sources (deb822 or
// one-line format), so the test uses whatever archive this machine reaches.
func aptMirror() (string, error) {
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if uri, ok := strings.CutPrefix(line, "URIs:"); ok {
				for _, u := range strings.Fields(uri) {
					if !strings.Contains(u, "security") {
						fh.Close()
						return u, nil
					}
				}
			}
		}
		fh.Close()
	}
	lists, _ := filepath.Glob("/etc/apt/sources.list.d/*.list")
	lists = append([]string{"/etc/apt/sources.list"}, lists...)
	for _, f := range lists {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			fs := strings.Fields(line)
			if len(fs) >= 3 && fs[0] == "deb" && !strings.Contains(line, "security") {
				for _, x := range fs[1:] {
					if strings.Contains(x, "://") {
						return x, nil
					}
				}
			}
		}
	}
	return "", fmt.Errorf("no deb archive in /etc/apt/sources.list or sources.list.d")
}

// copyTree copies src to dst with cp -a (everything preserved).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", src+"/.", dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v\n%s", src, dst, err, out)
	}
}

func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
