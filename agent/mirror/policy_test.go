package mirror

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/agent/wire"
)

// TestTimeVersusStrict: a change that keeps size and mtime is invisible to
// time mode and found by strict mode, which sends only the changed block.
func TestTimeVersusStrict(t *testing.T) {
	src, dst, data := t.TempDir(), t.TempDir(), t.TempDir()
	p := filepath.Join(src, "f")
	orig := randBytes(1, 1<<20)
	writeFile(t, p, orig)
	mustMirror(t, src, dst, data, Options{})
	st, _ := os.Stat(p)
	changed := append([]byte(nil), orig...)
	changed[500000] ^= 0xff
	writeFile(t, p, changed)
	os.Chtimes(p, st.ModTime(), st.ModTime()) // same size, same mtime

	sum := mustMirror(t, src, dst, data, Options{Checksum: wire.ChecksumTime})
	if sum.BytesSent != 0 {
		t.Errorf("time mode sent %d bytes for a file with equal size and mtime", sum.BytesSent)
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "f")); got[500000] != orig[500000] {
		t.Fatal("time mode changed the file")
	}
	sum = mustMirror(t, src, dst, data, Options{Checksum: wire.ChecksumStrict})
	if sum.BytesSent != BlockSize || sum.DeltaFiles != 1 {
		t.Errorf("strict mode sent %d bytes in %d delta files, want one block of %d", sum.BytesSent, sum.DeltaFiles, BlockSize)
	}
	mustIdentical(t, src, dst, Options{})
}

func TestOrphanPolicies(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "keep/me"), []byte("k"))
	for _, policy := range []string{wire.OrphansKeep, wire.OrphansDelete, wire.OrphansMove} {
		t.Run(policy, func(t *testing.T) {
			dst, data := t.TempDir(), t.TempDir()
			writeFile(t, filepath.Join(dst, "gone.txt"), []byte("orphan"))
			writeFile(t, filepath.Join(dst, "olddir/deep/x"), []byte("orphan"))
			writeFile(t, filepath.Join(dst, "keep/extra"), []byte("orphan"))
			writeFile(t, filepath.Join(dst, "excluded.log"), []byte("not an orphan: excluded"))
			writeFile(t, filepath.Join(dst, ".ferry.me.0123456789abcdef"), []byte("stale temp"))
			opts := Options{Orphans: policy, Excludes: []string{"*.log"}}
			if policy == wire.OrphansMove {
				opts.OrphanDir = "attic"
			}
			sum := mustMirror(t, src, dst, data, opts)
			exists := func(rel string) bool { _, err := os.Lstat(filepath.Join(dst, rel)); return err == nil }
			if !exists("keep/me") || !exists("excluded.log") {
				t.Error("mirrored or excluded file missing")
			}
			if exists(".ferry.me.0123456789abcdef") {
				t.Error("stale temporary not cleaned")
			}
			orphans := []string{"gone.txt", "olddir/deep/x", "keep/extra"}
			if sum.Target.OrphansFound != 3 {
				t.Errorf("found %d orphans, want 3", sum.Target.OrphansFound)
			}
			for _, o := range orphans {
				switch policy {
				case wire.OrphansKeep:
					if !exists(o) {
						t.Errorf("%s removed under keep", o)
					}
				case wire.OrphansDelete:
					if exists(o) {
						t.Errorf("%s kept under delete", o)
					}
				case wire.OrphansMove:
					if exists(o) || !exists("attic/"+o) {
						t.Errorf("%s not moved to attic", o)
					}
				}
			}
			if policy == wire.OrphansDelete {
				mustIdentical(t, src, dst, Options{Excludes: []string{"*.log"}})
			}
		})
	}
}

// TestErrorPolicy injects a read error (root can read every file, so the
// seam stands in for EIO or a vanished mount).
func TestErrorPolicy(t *testing.T) {
	src := t.TempDir()
	for _, n := range []string{"a", "bad", "c"} {
		writeFile(t, filepath.Join(src, n), []byte(strings.Repeat(n, 100)))
	}
	failBad := func(s *Sender, _ *Receiver) {
		s.openHook = func(rel string) error {
			if rel == "bad" {
				return &os.PathError{Op: "read", Path: rel, Err: syscall.EIO}
			}
			return nil
		}
	}
	t.Run("stop", func(t *testing.T) {
		dst := t.TempDir()
		res := mirrorOnce(t, src, dst, t.TempDir(), Options{OnError: wire.OnErrorStop}, failBad)
		if !errors.Is(res.serr, wire.ErrUnreadable) || !errors.Is(res.serr, syscall.EIO) {
			t.Fatalf("sender err = %v, want ErrUnreadable wrapping EIO", res.serr)
		}
	})
	t.Run("skip", func(t *testing.T) {
		dst := t.TempDir()
		writeFile(t, filepath.Join(dst, "bad"), []byte("old version"))
		res := mirrorOnce(t, src, dst, t.TempDir(), Options{OnError: wire.OnErrorSkip, Orphans: wire.OrphansDelete}, failBad)
		if res.serr != nil || res.rerr != nil {
			t.Fatal(res.serr, res.rerr)
		}
		if len(res.sum.Skipped) != 1 || res.sum.Skipped[0].Path != "bad" || !strings.Contains(res.sum.Skipped[0].Reason, "input/output error") {
			t.Errorf("skipped = %+v", res.sum.Skipped)
		}
		for _, n := range []string{"a", "c"} {
			if b, _ := os.ReadFile(filepath.Join(dst, n)); string(b) != strings.Repeat(n, 100) {
				t.Errorf("%s not mirrored", n)
			}
		}
		if b, _ := os.ReadFile(filepath.Join(dst, "bad")); string(b) != "old version" {
			t.Errorf("the target's copy of a skipped file was touched: %q", b)
		}
	})
}

// TestChangedWhileRead: a file modified between the scan and its read is
// not installed (it would be torn) and is reported.
func TestChangedWhileRead(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(src, "live"), []byte("v1"))
	res := mirrorOnce(t, src, dst, t.TempDir(), Options{}, func(s *Sender, _ *Receiver) {
		s.openHook = func(rel string) error {
			os.WriteFile(filepath.Join(src, rel), []byte("version 2"), 0o644)
			os.Chtimes(filepath.Join(src, rel), time.Now(), time.Now().Add(time.Hour))
			return nil
		}
	})
	if res.serr != nil || res.rerr != nil {
		t.Fatal(res.serr, res.rerr)
	}
	if len(res.sum.Skipped) != 1 || !strings.Contains(res.sum.Skipped[0].Reason, "changed") {
		t.Errorf("skipped = %+v", res.sum.Skipped)
	}
	if _, err := os.Stat(filepath.Join(dst, "live")); err == nil {
		t.Error("a file that changed while read was installed")
	}
}

func TestExcludesAndSystemProfile(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	for _, p := range []string{"keep", "x.tmp", "sub/y.tmp", "cache/z", "sub/cache/kept", "proc/1/status", "tmp/t", "data/agent/ckpt"} {
		writeFile(t, filepath.Join(src, p), []byte(p))
	}
	// The system profile applies to a root of "/": emulate with a filter
	// built as if src were "/".
	f := NewFilter(&Options{Profile: ProfileSystem, Excludes: []string{"*.tmp", "/cache"}}, "/", "/data/agent", 0)
	for rel, want := range map[string]bool{"keep": false, "x.tmp": true, "sub/y.tmp": true, "cache": true,
		"sub/cache": false, "proc": true, "tmp": true, "sys": true, "dev": true, "run": true, "data/agent": true, "data": false} {
		if got := f.ExcludedName(rel); got != want {
			t.Errorf("excluded(%q) = %v, want %v", rel, got, want)
		}
	}
	mustMirror(t, src, dst, t.TempDir(), Options{Excludes: []string{"*.tmp", "/cache"}})
	for rel, want := range map[string]bool{"keep": true, "x.tmp": false, "sub/y.tmp": false, "cache": false, "sub/cache/kept": true} {
		if _, err := os.Stat(filepath.Join(dst, rel)); (err == nil) != want {
			t.Errorf("%s present = %v, want %v", rel, err == nil, want)
		}
	}
}

// TestSystemProfileSkipsOtherMounts mounts a tmpfs inside the source: the
// system profile leaves it out unless it is named with Mounts.
func TestSystemProfileSkipsOtherMounts(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "etc/hostname"), []byte("h"))
	mnt := filepath.Join(src, "mnt/data")
	os.MkdirAll(mnt, 0o755)
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("needs root and mount(2) for a tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	writeFile(t, filepath.Join(mnt, "on-other-fs"), []byte("x"))
	for _, named := range []bool{false, true} {
		dst := t.TempDir()
		opts := Options{Profile: ProfileSystem}
		if named {
			opts.Mounts = []string{mnt}
		}
		mustMirror(t, src, dst, "", opts)
		if _, err := os.Stat(filepath.Join(dst, "etc/hostname")); err != nil {
			t.Fatal("root file system content missing")
		}
		_, err := os.Stat(filepath.Join(dst, "mnt/data/on-other-fs"))
		if named != (err == nil) {
			t.Errorf("mount named=%v: copied=%v", named, err == nil)
		}
		if st, err := os.Stat(filepath.Join(dst, "mnt/data")); err != nil || !st.IsDir() {
			t.Errorf("the mount point itself is not kept as a directory: %v", err)
		}
	}
}

// TestSmallFileFastPath: a small file read in one go keeps its holes, and
// one that grew after the scan (its mtime put back) is still reported as
// changed, not installed short.
func TestSmallFileFastPath(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	sp := filepath.Join(src, "sparse")
	f, err := os.Create(sp)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("tail"), 512<<10)
	f.Close()
	writeFile(t, filepath.Join(src, "grows"), []byte("short"))
	res := mirrorOnce(t, src, dst, t.TempDir(), Options{}, func(s *Sender, _ *Receiver) {
		s.openHook = func(rel string) error {
			if rel == "grows" {
				p := filepath.Join(src, rel)
				st, _ := os.Stat(p)
				os.WriteFile(p, []byte("much longer now"), 0o644)
				os.Chtimes(p, st.ModTime(), st.ModTime())
			}
			return nil
		}
	})
	if res.serr != nil || res.rerr != nil {
		t.Fatal(res.serr, res.rerr)
	}
	if len(res.sum.Skipped) != 1 || res.sum.Skipped[0].Path != "grows" {
		t.Errorf("skipped = %+v, want grows", res.sum.Skipped)
	}
	if _, err := os.Stat(filepath.Join(dst, "grows")); err == nil {
		t.Error("a file that grew while read was installed")
	}
	b, err := os.ReadFile(filepath.Join(dst, "sparse"))
	if err != nil || len(b) != 512<<10+4 || string(b[512<<10:]) != "tail" {
		t.Fatalf("sparse file content wrong (err %v, %d bytes)", err, len(b))
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dst, "sparse"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 >= 512<<10 {
		t.Errorf("sparse file lost its hole: %d blocks", st.Blocks)
	}
}
