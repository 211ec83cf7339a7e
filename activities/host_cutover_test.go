package activities

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"go.temporal.io/sdk/testsuite"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func ino(t *testing.T, path string) uint64 {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}

func actEnv(h *Host) *testsuite.TestActivityEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(h)
	return env
}

// staged returns a target path holding "old" and a replica holding "new".
func staged(t *testing.T, withTarget bool) (Layout, uint64) {
	dir := t.TempDir()
	l := Layout{JobID: "j1", Target: filepath.Join(dir, "app")}
	if withTarget {
		write(t, filepath.Join(l.Target, "version"), "old")
	}
	write(t, filepath.Join(l.Replica(), "version"), "new")
	write(t, filepath.Join(l.Replica(), "sub", "data"), "payload")
	return l, ino(t, l.Replica())
}

func TestCutoverExchangesAndRollbackRestores(t *testing.T) {
	h := &Host{ID: "dst"}
	env := actEnv(h)
	l, replicaIno := staged(t, true)
	oldIno := ino(t, l.Target)

	v, err := env.ExecuteActivity(h.Cutover, CutoverInput{JobID: l.JobID, TargetPath: l.Target})
	if err != nil {
		t.Fatal(err)
	}
	var res CutoverResult
	v.Get(&res)
	if !res.Exchanged || res.Previous != l.Previous() {
		t.Fatalf("result %+v", res)
	}
	// The same directory inodes moved: nothing was copied.
	if ino(t, l.Target) != replicaIno || ino(t, l.Previous()) != oldIno {
		t.Fatal("cutover did not swap the directories themselves")
	}
	if read(t, filepath.Join(l.Target, "version")) != "new" || read(t, filepath.Join(l.Previous(), "version")) != "old" {
		t.Fatal("contents not swapped")
	}
	if _, err := os.Lstat(l.Replica()); !os.IsNotExist(err) {
		t.Fatalf("replica still there: %v", err)
	}
	// A retried attempt changes nothing.
	if _, err := env.ExecuteActivity(h.Cutover, CutoverInput{JobID: l.JobID, TargetPath: l.Target}); err != nil {
		t.Fatal(err)
	}
	if read(t, filepath.Join(l.Target, "version")) != "new" {
		t.Fatal("retried cutover swapped back")
	}

	if _, err := env.ExecuteActivity(h.Rollback, RollbackInput{JobID: l.JobID, TargetPath: l.Target}); err != nil {
		t.Fatal(err)
	}
	if ino(t, l.Target) != oldIno || ino(t, l.Replica()) != replicaIno {
		t.Fatal("rollback did not restore the directories")
	}
	if read(t, filepath.Join(l.Target, "version")) != "old" || read(t, filepath.Join(l.Replica(), "sub", "data")) != "payload" {
		t.Fatal("rollback contents wrong")
	}
	// Retried rollback: still rolled back, and rollback without a cutover
	// record is refused.
	_, err = env.ExecuteActivity(h.Rollback, RollbackInput{JobID: l.JobID, TargetPath: l.Target})
	if err == nil || !strings.Contains(err.Error(), "no cutover recorded") {
		t.Fatalf("second rollback: %v", err)
	}
	if read(t, filepath.Join(l.Target, "version")) != "old" {
		t.Fatal("second rollback changed the target")
	}
	// Cutover again after the rollback works.
	if _, err := env.ExecuteActivity(h.Cutover, CutoverInput{JobID: l.JobID, TargetPath: l.Target}); err != nil {
		t.Fatal(err)
	}
	if read(t, filepath.Join(l.Target, "version")) != "new" {
		t.Fatal("second cutover")
	}
}

func TestCutoverCompletesAfterCrashMidSwap(t *testing.T) {
	h := &Host{ID: "dst"}
	env := actEnv(h)
	l, replicaIno := staged(t, true)
	oldIno := ino(t, l.Target)
	// A first attempt recorded its intent, exchanged, and died before it
	// moved the former contents aside.
	if err := writeCutoverState(l, cutoverState{ReplicaIno: replicaIno, PreviousIno: oldIno}); err != nil {
		t.Fatal(err)
	}
	if err := exchange(l.Replica(), l.Target); err != nil {
		t.Fatal(err)
	}
	if _, err := env.ExecuteActivity(h.Cutover, CutoverInput{JobID: l.JobID, TargetPath: l.Target}); err != nil {
		t.Fatal(err)
	}
	if ino(t, l.Target) != replicaIno || ino(t, l.Previous()) != oldIno {
		t.Fatal("retry after the crash did not finish the same swap")
	}
}

func TestCutoverWithoutPreviousTarget(t *testing.T) {
	h := &Host{ID: "dst"}
	env := actEnv(h)
	l, replicaIno := staged(t, false)
	v, err := env.ExecuteActivity(h.Cutover, CutoverInput{JobID: l.JobID, TargetPath: l.Target})
	if err != nil {
		t.Fatal(err)
	}
	var res CutoverResult
	v.Get(&res)
	if res.Exchanged || res.Previous != "" || ino(t, l.Target) != replicaIno {
		t.Fatalf("result %+v", res)
	}
	if _, err := env.ExecuteActivity(h.Rollback, RollbackInput{JobID: l.JobID, TargetPath: l.Target}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(l.Target); !os.IsNotExist(err) || ino(t, l.Replica()) != replicaIno {
		t.Fatalf("rollback left the target: %v", err)
	}
}

func TestCutoverRefusesWithoutReplica(t *testing.T) {
	h := &Host{ID: "dst"}
	env := actEnv(h)
	dir := t.TempDir()
	_, err := env.ExecuteActivity(h.Cutover, CutoverInput{JobID: "j1", TargetPath: filepath.Join(dir, "app")})
	if err == nil || !strings.Contains(err.Error(), "no replica") {
		t.Fatalf("got %v", err)
	}
}

func TestTestCutoverCopiesAndEndTestDiscards(t *testing.T) {
	h := &Host{ID: "dst"}
	env := actEnv(h)
	l, _ := staged(t, true)
	if err := os.Symlink("version", filepath.Join(l.Replica(), "link")); err != nil {
		t.Fatal(err)
	}
	v, err := env.ExecuteActivity(h.TestCutover, TestCutoverInput{JobID: l.JobID, TargetPath: l.Target})
	if err != nil {
		t.Fatal(err)
	}
	var res TestCutoverResult
	v.Get(&res)
	if res.Path != l.Test() || read(t, filepath.Join(l.Test(), "sub", "data")) != "payload" {
		t.Fatalf("test copy %+v", res)
	}
	if target, err := os.Readlink(filepath.Join(l.Test(), "link")); err != nil || target != "version" {
		t.Fatalf("symlink in copy: %q %v", target, err)
	}
	// The copy is independent of the replica that sync keeps writing.
	write(t, filepath.Join(l.Test(), "version"), "test write")
	if read(t, filepath.Join(l.Replica(), "version")) != "new" {
		t.Fatal("test copy shares data with the replica")
	}
	if _, err := env.ExecuteActivity(h.EndTest, EndTestInput{JobID: l.JobID, TargetPath: l.Target}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(l.Test()); !os.IsNotExist(err) {
		t.Fatalf("test copy not discarded: %v", err)
	}
	if read(t, filepath.Join(l.Target, "version")) != "old" {
		t.Fatal("test touched the live target")
	}
}

func TestDiscardJobKeepsTheLiveTarget(t *testing.T) {
	h := &Host{ID: "dst"}
	env := actEnv(h)
	l, _ := staged(t, true)
	write(t, filepath.Join(l.Test(), "x"), "test copy")
	v, err := env.ExecuteActivity(h.DiscardJob, DiscardJobInput{JobID: l.JobID, TargetPath: l.Target})
	if err != nil {
		t.Fatal(err)
	}
	var res DiscardJobResult
	v.Get(&res)
	if res.Removed != l.Staging() {
		t.Fatalf("%+v", res)
	}
	if _, err := os.Lstat(l.Staging()); !os.IsNotExist(err) {
		t.Fatalf("staging left: %v", err)
	}
	if read(t, filepath.Join(l.Target, "version")) != "old" {
		t.Fatal("live target touched")
	}
	if _, err := env.ExecuteActivity(h.DiscardJob, DiscardJobInput{JobID: l.JobID, TargetPath: l.Target}); err != nil {
		t.Fatalf("second discard: %v", err)
	}
}
