package capture

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestFanotifyExt4(t *testing.T)  { suite(t, testFS(t, "ext4"), false) }
func TestFanotifyTmpfs(t *testing.T) { suite(t, testFS(t, "tmpfs"), false) }
func TestInotifyExt4(t *testing.T)   { suite(t, testFS(t, "ext4"), true) }

// suite runs every kind of change under a watched root inside mnt and checks
// the reported events. Each step waits for its own events, in order.
func suite(t *testing.T, mnt string, force bool) {
	root := filepath.Join(mnt, "root")
	outside := filepath.Join(mnt, "outside")
	must(t, os.Mkdir(root, 0o755))
	must(t, os.Mkdir(outside, 0o755))
	must(t, os.Mkdir(filepath.Join(root, "pre"), 0o755)) // exists before the watch
	must(t, os.Mkdir(filepath.Join(outside, "in"), 0o755))
	writeFile(t, filepath.Join(outside, "in", "x"), "x")
	_, c := startWatch(t, root, force, excludeTemp)
	p := func(rel string) string { return filepath.Join(root, rel) }

	step := func(name string, do func(), want ...Event) {
		t.Helper()
		c.reset()
		do()
		c.waitFor(t, want...)
		t.Logf("%s ok", name)
	}
	step("create", func() { writeFile(t, p("a.txt"), "hello") },
		Event{Op: OpCreate, Path: "a.txt"}, Event{Op: OpModify, Path: "a.txt"})
	step("create in pre-existing dir", func() { writeFile(t, p("pre/f"), "x") },
		Event{Op: OpCreate, Path: "pre/f"})
	step("write", func() {
		f, err := os.OpenFile(p("a.txt"), os.O_WRONLY|os.O_APPEND, 0)
		must(t, err)
		_, err = f.WriteString(" world")
		must(t, err)
		must(t, f.Close())
	}, Event{Op: OpModify, Path: "a.txt"})
	step("truncate", func() { must(t, os.Truncate(p("a.txt"), 2)) }, Event{Op: OpModify, Path: "a.txt"})
	step("chmod", func() { must(t, os.Chmod(p("a.txt"), 0o600)) }, Event{Op: OpAttrib, Path: "a.txt"})
	step("chown", func() { must(t, os.Lchown(p("a.txt"), 1234, 5678)) }, Event{Op: OpAttrib, Path: "a.txt"})
	step("setxattr", func() { must(t, unix.Lsetxattr(p("a.txt"), "user.k", []byte("v"), 0)) },
		Event{Op: OpAttrib, Path: "a.txt"})
	step("chmod dir", func() { must(t, os.Chmod(p("pre"), 0o700)) }, Event{Op: OpAttrib, Path: "pre", Dir: true})
	step("rename file", func() { must(t, os.Rename(p("a.txt"), p("b.txt"))) },
		Event{Op: OpRename, From: "a.txt", Path: "b.txt"})
	step("mkdir", func() {
		must(t, os.Mkdir(p("d1"), 0o755))
		writeFile(t, p("d1/f"), "f")
	}, Event{Op: OpCreate, Path: "d1", Dir: true}, Event{Op: OpCreate, Path: "d1/f"})
	step("rename dir", func() { must(t, os.Rename(p("d1"), p("d2"))) },
		Event{Op: OpRename, From: "d1", Path: "d2", Dir: true})
	step("write under renamed dir", func() {
		writeFile(t, p("d2/f"), "changed")
		writeFile(t, p("d2/g"), "g")
	}, Event{Op: OpModify, Path: "d2/f"}, Event{Op: OpCreate, Path: "d2/g"})
	step("rename pre-existing dir", func() {
		must(t, os.Rename(p("pre"), p("pre2")))
		writeFile(t, p("pre2/h"), "h")
	}, Event{Op: OpRename, From: "pre", Path: "pre2", Dir: true}, Event{Op: OpCreate, Path: "pre2/h"})
	step("rename dir over an empty dir", func() {
		must(t, os.Mkdir(p("e1"), 0o755))
		must(t, os.Mkdir(p("e2"), 0o755))
		writeFile(t, p("e1/x"), "x")
		must(t, unix.Rename(p("e1"), p("e2"))) // os.Rename refuses an existing directory
	}, Event{Op: OpRename, From: "e1", Path: "e2", Dir: true})
	step("write under dir renamed over another", func() { writeFile(t, p("e2/y"), "y") },
		Event{Op: OpCreate, Path: "e2/y"})
	step("rename file over a file", func() {
		writeFile(t, p("r1"), "1")
		writeFile(t, p("r2"), "2")
		must(t, os.Rename(p("r1"), p("r2")))
	}, Event{Op: OpRename, From: "r1", Path: "r2"})
	step("hardlink", func() { must(t, os.Link(p("d2/f"), p("hl"))) }, Event{Op: OpCreate, Path: "hl"})
	step("symlink", func() { must(t, os.Symlink("d2/f", p("sl"))) }, Event{Op: OpCreate, Path: "sl"})
	step("delete", func() { must(t, os.Remove(p("b.txt"))) }, Event{Op: OpDelete, Path: "b.txt"})
	step("rmdir", func() { must(t, os.RemoveAll(p("pre2"))) },
		Event{Op: OpDelete, Path: "pre2/f"}, Event{Op: OpDelete, Path: "pre2", Dir: true})
	step("mkdir -p deep", func() {
		must(t, os.MkdirAll(p("x/y/z/w"), 0o755))
		writeFile(t, p("x/y/z/w/file"), "deep")
	},
		Event{Op: OpCreate, Path: "x", Dir: true}, Event{Op: OpCreate, Path: "x/y", Dir: true},
		Event{Op: OpCreate, Path: "x/y/z", Dir: true}, Event{Op: OpCreate, Path: "x/y/z/w", Dir: true},
		Event{Op: OpCreate, Path: "x/y/z/w/file"})
	step("move dir out", func() { must(t, os.Rename(p("x"), filepath.Join(outside, "x"))) },
		Event{Op: OpDelete, Path: "x", Dir: true})
	// A directory moved in is reported as a rescan (its content was never
	// reported); what happens in it afterwards is reported as usual.
	step("move dir in", func() { must(t, os.Rename(filepath.Join(outside, "in"), p("in"))) },
		Event{Op: OpRescan, Path: "in", Dir: true})
	step("write in moved-in dir", func() { writeFile(t, p("in/y"), "y") },
		Event{Op: OpCreate, Path: "in/y"}, Event{Op: OpModify, Path: "in/y"})

	// Outside the root and excluded paths: nothing is reported. A mkdir
	// (exactly one event) before them drains what earlier steps left in
	// flight; one after them proves the watcher has read past them.
	step("barrier", func() { must(t, os.Mkdir(p("barrier"), 0o755)) }, Event{Op: OpCreate, Path: "barrier", Dir: true})
	c.reset()
	writeFile(t, filepath.Join(outside, "o1"), "o")
	must(t, os.Mkdir(filepath.Join(outside, "od"), 0o755))
	writeFile(t, filepath.Join(outside, "x/y/z/w/file"), "moved out, still changing")
	writeFile(t, p(".ferry-tmp-123"), "temp")
	must(t, os.Rename(p(".ferry-tmp-123"), p(".ferry-tmp-456")))
	must(t, os.Mkdir(p("skip"), 0o755))
	writeFile(t, p("skip/inner"), "excluded subtree")
	must(t, os.Mkdir(p("sentinel"), 0o755))
	got := c.waitFor(t, Event{Op: OpCreate, Path: "sentinel", Dir: true})
	for _, e := range got {
		if e.Path != "sentinel" {
			t.Errorf("unexpected event %+v (outside the root or excluded)", e)
		}
	}
	// An excluded temp name renamed into place is a create of the final name.
	step("temp rename into place", func() {
		writeFile(t, p(".ferry-tmp-789"), "t")
		must(t, os.Rename(p(".ferry-tmp-789"), p("final")))
	}, Event{Op: OpCreate, Path: "final"})
}

// TestBurst creates 10,000 files as fast as possible; every one must be
// reported as created, or covered by a rescan of an ancestor.
func TestBurstFanotify(t *testing.T) { burst(t, testFS(t, "ext4"), false) }
func TestBurstInotify(t *testing.T)  { burst(t, testFS(t, "ext4"), true) }

func burst(t *testing.T, mnt string, force bool) {
	const dirs, perDir = 10, 1000
	_, c := startWatch(t, mnt, force, nil)
	for d := range dirs {
		dir := filepath.Join(mnt, fmt.Sprintf("d%02d", d))
		must(t, os.Mkdir(dir, 0o755))
		for i := range perDir {
			f, err := os.Create(filepath.Join(dir, fmt.Sprintf("f%04d", i)))
			must(t, err)
			must(t, f.Close())
		}
	}
	writeFile(t, filepath.Join(mnt, "done"), "")
	got := c.waitFor(t, Event{Op: OpCreate, Path: "done"})
	created := map[string]bool{}
	var rescans []string
	for _, e := range got {
		switch e.Op {
		case OpCreate:
			created[e.Path] = true
		case OpRescan:
			rescans = append(rescans, e.Path)
		}
	}
	missing := 0
	for d := range dirs {
		for i := range perDir {
			rel := fmt.Sprintf("d%02d/f%04d", d, i)
			if !created[rel] && !covered(rel, rescans) {
				missing++
				if missing < 5 {
					t.Errorf("creation of %s not reported", rel)
				}
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d creations not reported", missing, dirs*perDir)
	}
	t.Logf("%s: %d events, %d rescans", force2name(force), len(got), len(rescans))
}

func covered(rel string, rescans []string) bool {
	for _, r := range rescans {
		if r == "" || r == rel || (len(rel) > len(r) && rel[:len(r)] == r && rel[len(r)] == '/') {
			return true
		}
	}
	return false
}

func force2name(force bool) string {
	if force {
		return "inotify"
	}
	return "fanotify"
}

// TestFanotifyNestedMount: a filesystem mounted inside the root is marked
// too, and its paths resolve under the root.
func TestFanotifyNestedMount(t *testing.T) {
	mnt := testFS(t, "ext4")
	sub := filepath.Join(mnt, "sub")
	must(t, os.Mkdir(sub, 0o755))
	run(t, "mount", "-t", "tmpfs", "tmpfs", sub)
	t.Cleanup(func() { run(t, "umount", sub) })
	must(t, os.Mkdir(filepath.Join(sub, "pre"), 0o755))
	_, c := startWatch(t, mnt, false, nil)
	writeFile(t, filepath.Join(sub, "pre", "a"), "a")
	must(t, os.Mkdir(filepath.Join(sub, "new"), 0o755))
	writeFile(t, filepath.Join(sub, "new", "b"), "b")
	must(t, os.Rename(filepath.Join(sub, "new"), filepath.Join(sub, "pre", "moved")))
	writeFile(t, filepath.Join(sub, "pre", "moved", "c"), "c")
	c.waitFor(t, Event{Op: OpCreate, Path: "sub/pre/a"}, Event{Op: OpCreate, Path: "sub/new", Dir: true},
		Event{Op: OpCreate, Path: "sub/new/b"}, Event{Op: OpRename, From: "sub/new", Path: "sub/pre/moved", Dir: true},
		Event{Op: OpCreate, Path: "sub/pre/moved/c"})
}
