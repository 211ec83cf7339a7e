package fsys_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ferry-migrate/ferry/agent/fsys"
)

// BenchmarkScan50k measures what the mirror engine's scan costs per file:
// OpenDir + ReadDir of 50 directories of 1,000 files of 1 KiB, then a full
// Lstat (fstatat + listxattrat, + getxattrat per attribute) of each file.
// Sub-benchmarks compare against a bare fstatat and show the cost of
// files that carry an xattr. It reports wall ns/file and CPU ns/file
// (user+system, from getrusage). The data set takes ~15-30 s to create.
//
//	go test ./agent/fsys -run '^$' -bench Scan50k -benchtime 3x
func BenchmarkScan50k(b *testing.B) {
	const dirs, per = 50, 1000
	base := b.TempDir()
	data := make([]byte, 1024)
	for d := range dirs {
		dir := filepath.Join(base, fmt.Sprintf("d%02d", d))
		if err := os.Mkdir(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for i := range per {
			p := filepath.Join(dir, fmt.Sprintf("file-%05d.dat", i))
			if err := os.WriteFile(p, data, 0o644); err != nil {
				b.Fatal(err)
			}
			if d%2 == 1 { // half the files carry one user xattr
				if err := unix.Setxattr(p, "user.tag", []byte("v"), 0); err != nil {
					b.Skipf("needs user xattrs on the temp dir: %v", err)
				}
			}
		}
	}
	r, err := fsys.OpenRoot(base)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()

	scan := func(b *testing.B, stat func(dirfd int, name string) error) {
		var files int
		cpu0 := cpuTime()
		start := time.Now()
		for b.Loop() {
			for d := range dirs {
				f, err := r.OpenDir(fmt.Sprintf("d%02d", d))
				if err != nil {
					b.Fatal(err)
				}
				kids, err := fsys.ReadDir(int(f.Fd()))
				if err != nil {
					b.Fatal(err)
				}
				for _, k := range kids {
					if err := stat(int(f.Fd()), k.Path); err != nil {
						b.Fatal(err)
					}
				}
				files += len(kids)
				f.Close()
			}
		}
		wall, cpu := time.Since(start), cpuTime()-cpu0
		b.ReportMetric(float64(wall.Nanoseconds())/float64(files), "ns/file")
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(files), "cpu-ns/file")
		b.ReportMetric(0, "ns/op")
	}
	b.Run("readdir-only", func(b *testing.B) {
		scan(b, func(int, string) error { return nil })
	})
	b.Run("fstatat", func(b *testing.B) {
		scan(b, func(dirfd int, name string) error {
			var st unix.Stat_t
			return unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
		})
	})
	b.Run("Lstat-with-xattrs", func(b *testing.B) {
		scan(b, func(dirfd int, name string) error {
			_, err := fsys.Lstat(dirfd, name)
			return err
		})
	})
}

func cpuTime() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWriteSmallFile measures the receiver side per small file: a
// CreateTemp in a subdirectory, a 1 KiB write, ApplyMetaFD (owner, mode,
// one xattr, times) and the Rename into place.
func BenchmarkWriteSmallFile(b *testing.B) {
	r, err := fsys.OpenRoot(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	if err := r.MkdirAll("a/b"); err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 1024)
	e := fsys.Entry{Type: fsys.TypeFile, Mode: 0o644, Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid()),
		Size: 1024, MtimeNs: 1_700_000_000_000_000_001, AtimeNs: 1_700_000_000_000_000_002,
		Xattrs: []fsys.Xattr{{Name: "user.tag", Value: []byte("v")}}}
	cpu0 := cpuTime()
	i := 0
	for b.Loop() {
		f, tmp, err := r.CreateTemp("a/b", "file")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Write(data); err != nil {
			b.Fatal(err)
		}
		if err := fsys.ApplyMetaFD(f, e); err != nil {
			b.Fatal(err)
		}
		f.Close()
		if err := r.Rename(tmp, fmt.Sprintf("a/b/f%06d", i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(i), "cpu-ns/file")
}
