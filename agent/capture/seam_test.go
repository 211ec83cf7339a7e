package capture

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// fanMeta builds one fanotify_event_metadata followed by info records.
func fanMeta(mask uint64, info ...[]byte) []byte {
	n := metaSize
	for _, r := range info {
		n += len(r)
	}
	b := make([]byte, metaSize, n)
	binary.NativeEndian.PutUint32(b[0:], uint32(n))
	b[4] = unix.FANOTIFY_METADATA_VERSION
	binary.NativeEndian.PutUint16(b[6:], metaSize)
	binary.NativeEndian.PutUint64(b[8:], mask)
	binary.NativeEndian.PutUint32(b[16:], uint32(0xffffffff)) // FAN_NOFD
	binary.NativeEndian.PutUint32(b[20:], 42)
	for _, r := range info {
		b = append(b, r...)
	}
	return b
}

// fanFid builds a fanotify_event_info_fid record, padded to 4 bytes.
func fanFid(typ uint8, fsid [2]int32, htype int32, handle []byte, name string) []byte {
	n := infoHeaderSize + fsidSize + fileHandleHdr + len(handle)
	if name != "" {
		n += len(name) + 1
	}
	n = (n + 3) &^ 3
	b := make([]byte, n)
	b[0] = typ
	binary.NativeEndian.PutUint16(b[2:], uint16(n))
	binary.NativeEndian.PutUint32(b[4:], uint32(fsid[0]))
	binary.NativeEndian.PutUint32(b[8:], uint32(fsid[1]))
	binary.NativeEndian.PutUint32(b[12:], uint32(len(handle)))
	binary.NativeEndian.PutUint32(b[16:], uint32(htype))
	copy(b[20:], handle)
	copy(b[20+len(handle):], name)
	return b
}

func TestParseEvents(t *testing.T) {
	fsid := [2]int32{7, -9}
	buf := fanMeta(unix.FAN_CREATE|unix.FAN_ONDIR,
		fanFid(unix.FAN_EVENT_INFO_TYPE_DFID_NAME, fsid, 1, []byte{1, 2, 3, 4, 5, 6, 7, 8}, "new dir"),
		fanFid(unix.FAN_EVENT_INFO_TYPE_FID, fsid, 1, []byte{9, 9, 9, 9, 9, 9, 9, 9}, ""))
	buf = append(buf, fanMeta(unix.FAN_RENAME,
		fanFid(unix.FAN_EVENT_INFO_TYPE_OLD_DFID_NAME, fsid, 2, []byte{1}, "a"),
		fanFid(unix.FAN_EVENT_INFO_TYPE_NEW_DFID_NAME, fsid, 2, []byte{2}, "b"))...)
	buf = append(buf, fanMeta(unix.FAN_Q_OVERFLOW)...)
	evs, err := parseEvents(buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 {
		t.Fatalf("got %d events, want 3", len(evs))
	}
	e := evs[0]
	if e.mask != unix.FAN_CREATE|unix.FAN_ONDIR || e.entry.name != "new dir" || e.entry.dir.fsid != fsid ||
		e.entry.dir.htype != 1 || !slices.Equal(e.entry.dir.handle, []byte{1, 2, 3, 4, 5, 6, 7, 8}) ||
		!slices.Equal(e.target.handle, []byte{9, 9, 9, 9, 9, 9, 9, 9}) {
		t.Errorf("create event parsed as %+v", e)
	}
	if r := evs[1]; r.oldEntry.name != "a" || r.newEntry.name != "b" || r.oldEntry.dir.handle[0] != 1 || r.newEntry.dir.handle[0] != 2 {
		t.Errorf("rename event parsed as %+v", r)
	}
	if evs[2].mask != unix.FAN_Q_OVERFLOW {
		t.Errorf("overflow event parsed as %+v", evs[2])
	}
	// Truncations and overruns are errors, never panics.
	for cut := 1; cut < len(buf); cut += 7 {
		parseEvents(buf[:cut], nil)
	}
	bad := fanMeta(unix.FAN_CREATE, fanFid(unix.FAN_EVENT_INFO_TYPE_DFID_NAME, fsid, 1, []byte{1}, "x"))
	binary.NativeEndian.PutUint32(bad[metaSize+12:], 1000) // handle_bytes beyond the record
	if _, err := parseEvents(bad, nil); err == nil {
		t.Error("handle overrunning its record was accepted")
	}
}

// TestFanotifyOverflow feeds a synthetic FAN_Q_OVERFLOW through the reader's
// translation: it must become a rescan of the root.
func TestFanotifyOverflow(t *testing.T) {
	b := &fanotifyBackend{root: "/r", log: quietLogger()}
	evs, err := parseEvents(fanMeta(unix.FAN_Q_OVERFLOW), nil)
	if err != nil {
		t.Fatal(err)
	}
	out := b.translate(evs[0], time.Now(), nil)
	if len(out) != 1 || out[0].Op != OpRescan || out[0].Path != "" || !out[0].Dir {
		t.Fatalf("overflow became %+v, want one rescan of the root", out)
	}
}

// TestFanotifyQueuedPaths reads events only after a directory was renamed,
// so resolving its handle now would give the new name; the cache must give
// the paths as they were when each event happened, without asking the kernel
// about directories that existed at start.
func TestFanotifyQueuedPaths(t *testing.T) {
	for _, kind := range []string{"ext4", "tmpfs"} {
		t.Run(kind, func(t *testing.T) { queuedPaths(t, testFS(t, kind)) })
	}
}

func queuedPaths(t *testing.T, mnt string) {
	must(t, os.MkdirAll(filepath.Join(mnt, "d/sub"), 0o755))
	b, err := newFanotify(Options{Root: mnt, Logger: quietLogger()}, newFilter(nil), newQueue(100))
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	defer b.closeMounts()
	writeFile(t, filepath.Join(mnt, "d/sub/f"), "1")
	must(t, os.Rename(filepath.Join(mnt, "d"), filepath.Join(mnt, "e")))
	writeFile(t, filepath.Join(mnt, "e/sub/g"), "2")
	must(t, os.Mkdir(filepath.Join(mnt, "e/sub/new"), 0o755))
	must(t, os.Rename(filepath.Join(mnt, "e/sub/new"), filepath.Join(mnt, "n2")))
	writeFile(t, filepath.Join(mnt, "n2/h"), "3")

	buf := make([]byte, 64<<10)
	n, err := b.file.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := parseEvents(buf[:n], nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []Event
	for _, r := range raw {
		got = b.translate(r, time.Now(), got)
	}
	want := []Event{
		{Op: OpCreate, Path: "d/sub/f"},
		{Op: OpRename, From: "d", Path: "e", Dir: true},
		{Op: OpCreate, Path: "e/sub/g"},
		{Op: OpCreate, Path: "e/sub/new", Dir: true},
		{Op: OpRename, From: "e/sub/new", Path: "n2", Dir: true},
		{Op: OpCreate, Path: "n2/h"},
	}
	if !containsInOrder(got, want) {
		t.Fatalf("got %v\nwant (in order) %v", got, want)
	}
	// A file created and removed before the reader saw either: the kernel
	// may merge both into one event, whose order is unknown; that must be a
	// rescan of the name, never a lone create.
	writeFile(t, filepath.Join(mnt, "blink"), "")
	must(t, os.Remove(filepath.Join(mnt, "blink")))
	n, err = b.file.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if raw, err = parseEvents(buf[:n], raw[:0]); err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for _, r := range raw {
		got = b.translate(r, time.Now(), got)
	}
	if !containsInOrder(got, []Event{{Op: OpRescan, Path: "blink"}}) &&
		!containsInOrder(got, []Event{{Op: OpCreate, Path: "blink"}, {Op: OpDelete, Path: "blink"}}) {
		t.Fatalf("create+delete reported as %v", got)
	}
	t.Logf("create+delete reported as %v", got)
	if b.resolved != 0 {
		t.Errorf("%d directory handles resolved through the kernel; the primed cache should have known them all", b.resolved)
	}
}

func inotifyBuf(wd int32, mask, cookie uint32, name string) []byte {
	nl := 0
	if name != "" {
		nl = (len(name) + 1 + 15) &^ 15
	}
	b := make([]byte, inotifyEventSize+nl)
	binary.NativeEndian.PutUint32(b[0:], uint32(wd))
	binary.NativeEndian.PutUint32(b[4:], mask)
	binary.NativeEndian.PutUint32(b[8:], cookie)
	binary.NativeEndian.PutUint32(b[12:], uint32(nl))
	copy(b[inotifyEventSize:], name)
	return b
}

func newTestInotify(t *testing.T, root string) *inotifyBackend {
	t.Helper()
	b, err := newInotify(Options{Root: root, Logger: quietLogger(), RescanInterval: time.Hour}, newFilter(nil), newQueue(100))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.close() })
	return b
}

func TestInotifySynthetic(t *testing.T) {
	root := t.TempDir()
	must(t, os.Mkdir(filepath.Join(root, "a"), 0o755))
	b := newTestInotify(t, root)
	wdA := b.byPath["a"]
	wdRoot := b.byPath[""]

	// Overflow: a rescan of the root, and watches rebuilt, so directories
	// whose creation was lost are watched too.
	must(t, os.MkdirAll(filepath.Join(root, "late/deeper"), 0o755))
	out := b.process(inotifyBuf(-1, unix.IN_Q_OVERFLOW, 0, ""), time.Now())
	if len(out) != 1 || out[0].Op != OpRescan || out[0].Path != "" {
		t.Fatalf("overflow became %+v", out)
	}
	for _, d := range []string{"", "a", "late", "late/deeper"} {
		if _, ok := b.byPath[d]; !ok {
			t.Errorf("no watch on %q after the overflow", d)
		}
	}
	wdA = b.byPath["a"]
	wdRoot = b.byPath[""]
	// A move pair becomes one rename; the watch follows the directory.
	buf := inotifyBuf(wdRoot, unix.IN_MOVED_FROM|unix.IN_ISDIR, 7, "a")
	buf = append(buf, inotifyBuf(wdRoot, unix.IN_MOVED_TO|unix.IN_ISDIR, 7, "b")...)
	buf = append(buf, inotifyBuf(wdA, unix.IN_CREATE, 0, "f")...)
	out = b.process(buf, time.Now())
	want := []Event{{Op: OpRename, From: "a", Path: "b", Dir: true}, {Op: OpCreate, Path: "b/f"}}
	if !slices.EqualFunc(out, want, same) {
		t.Fatalf("move pair became %+v, want %+v", out, want)
	}
	// Unpaired halves: a delete and a create.
	out = b.process(inotifyBuf(wdRoot, unix.IN_MOVED_FROM, 8, "x"), time.Now())
	out = append(out, b.process(inotifyBuf(wdRoot, unix.IN_MOVED_TO, 9, "y"), time.Now())...)
	want = []Event{{Op: OpDelete, Path: "x"}, {Op: OpCreate, Path: "y"}}
	if !slices.EqualFunc(out, want, same) {
		t.Fatalf("unpaired moves became %+v, want %+v", out, want)
	}
}

// TestInotifyWatchLimit simulates ENOSPC from inotify_add_watch: the subtree
// is reported as a rescan at once and again every interval until a watch
// succeeds.
func TestInotifyWatchLimit(t *testing.T) {
	root := t.TempDir()
	b := newTestInotify(t, root)
	must(t, os.MkdirAll(filepath.Join(root, "big/deep"), 0o755))
	real := b.addWatch
	full := true
	b.addWatch = func(fd int, path string, mask uint32) (int, error) {
		if full && path == filepath.Join(root, "big/deep") {
			return 0, unix.ENOSPC
		}
		return real(fd, path, mask)
	}
	out := b.watchTree("big", true, time.Now())
	want := []Event{{Op: OpCreate, Path: "big/deep", Dir: true}, {Op: OpRescan, Path: "big/deep", Dir: true}}
	if !slices.EqualFunc(out, want, same) {
		t.Fatalf("watch limit gave %+v, want %+v", out, want)
	}
	out = b.rescanUnwatched(time.Now(), nil)
	if !slices.EqualFunc(out, want[1:], same) || !b.unwatched["big/deep"] {
		t.Fatalf("periodic rescan gave %+v (unwatched %v)", out, b.unwatched)
	}
	full = false
	out = b.rescanUnwatched(time.Now(), nil)
	if !slices.EqualFunc(out, want[1:], same) || len(b.unwatched) != 0 {
		t.Fatalf("recovery gave %+v (unwatched %v)", out, b.unwatched)
	}
	if _, ok := b.byPath["big/deep"]; !ok {
		t.Fatal("no watch on big/deep after the limit cleared")
	}
	if out = b.rescanUnwatched(time.Now(), nil); len(out) != 0 {
		t.Fatalf("rescans continue after recovery: %+v", out)
	}
}

// TestQueueBound: a consumer that does not read makes the buffer collapse
// into one rescan of the root instead of growing without bound.
func TestQueueBound(t *testing.T) {
	q := newQueue(10)
	for i := range 25 {
		q.push(Event{Op: OpCreate, Path: string(rune('a' + i))})
	}
	b := q.take()
	if len(b) != 1 || b[0].Op != OpRescan || b[0].Path != "" {
		t.Fatalf("overfull queue holds %+v", b)
	}
	q.push(Event{Op: OpCreate, Path: "z"})
	if b = q.take(); len(b) != 1 || b[0].Path != "z" {
		t.Fatalf("after delivery the queue holds %+v", b)
	}
}

func TestContextEndsWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	w, err := Watch(ctx, Options{Root: t.TempDir(), ForceInotify: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case _, ok := <-w.Events():
		if ok {
			for range w.Events() {
			}
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Events not closed after the context ended")
	}
	if err := w.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		t.Fatal(err)
	}
}

func TestWatchRejectsFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "f")
	writeFile(t, f, "")
	if _, err := Watch(context.Background(), Options{Root: f}); !errors.Is(err, ErrNotDir) {
		t.Fatalf("Watch on a file: %v, want ErrNotDir", err)
	}
}
