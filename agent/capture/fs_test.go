package capture

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testFS mounts a fresh filesystem for one test and returns its mount point.
// kind is "ext4" (loop-mounted image) or "tmpfs". A private filesystem keeps a
// filesystem-wide fanotify mark from seeing the rest of the machine.
func testFS(t *testing.T, kind string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a test filesystem and to use fanotify")
	}
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	switch kind {
	case "tmpfs":
		run(t, "mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", mnt)
	case "ext4":
		img := filepath.Join(dir, "fs.img")
		run(t, "truncate", "-s", "128M", img)
		run(t, "mkfs.ext4", "-q", "-N", "40000", img)
		run(t, "mount", "-o", "loop", img, mnt)
	default:
		t.Fatalf("unknown fs kind %q", kind)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	return mnt
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		if _, lerr := exec.LookPath(name); lerr != nil {
			t.Skipf("needs %s: %v", name, lerr)
		}
		t.Fatalf("%s %v: %v: %s", name, args, err, out)
	}
}

// collector gathers every event a watcher reports.
type collector struct {
	mu     sync.Mutex
	events []Event
	notify chan struct{}
	done   chan struct{}
}

func collect(t *testing.T, w *Watcher) *collector {
	c := &collector{notify: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for b := range w.Events() {
			c.mu.Lock()
			c.events = append(c.events, b...)
			c.mu.Unlock()
			select {
			case c.notify <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		<-c.done
	})
	return c
}

func (c *collector) reset() {
	c.mu.Lock()
	c.events = nil
	c.mu.Unlock()
}

func (c *collector) snapshot() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.events)
}

// waitFor waits until every wanted event has been seen, in the given order
// (other events may come between them). It fails the test after 10 s.
func (c *collector) waitFor(t *testing.T, want ...Event) []Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	matched, scanned := 0, 0
	for {
		c.mu.Lock()
		for ; scanned < len(c.events) && matched < len(want); scanned++ {
			if same(c.events[scanned], want[matched]) {
				matched++
			}
		}
		c.mu.Unlock()
		if matched == len(want) {
			return c.snapshot()
		}
		select {
		case <-c.notify:
		case <-deadline:
			t.Fatalf("timed out waiting for %v\ngot %v", want, c.snapshot())
		}
	}
}

func same(a, b Event) bool {
	return a.Op == b.Op && a.Path == b.Path && a.From == b.From && a.Dir == b.Dir
}

func containsInOrder(got, want []Event) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && same(g, want[i]) {
			i++
		}
	}
	return i == len(want)
}

func startWatch(t *testing.T, root string, force bool, ex func(string, bool) bool) (*Watcher, *collector) {
	t.Helper()
	w, err := Watch(context.Background(), Options{Root: root, ForceInotify: force, Exclude: ex})
	if err != nil {
		t.Fatal(err)
	}
	want := "fanotify"
	if force {
		want = "inotify"
	}
	if w.Backend() != want {
		w.Close()
		t.Fatalf("backend %q, want %q", w.Backend(), want)
	}
	return w, collect(t, w)
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func excludeTemp(rel string, isDir bool) bool {
	base := rel[strings.LastIndexByte(rel, '/')+1:]
	return strings.HasPrefix(base, ".ferry-tmp") || (isDir && rel == "skip")
}
