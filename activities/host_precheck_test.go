package activities

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func precheck(t *testing.T, in PrecheckInput) PrecheckResult {
	t.Helper()
	h := &Host{ID: "h1", AgentVersion: "v1.0.0"}
	v, err := actEnv(h).ExecuteActivity(h.Precheck, in)
	if err != nil {
		t.Fatal(err)
	}
	var r PrecheckResult
	if err := v.Get(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPrecheckSource(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a"), string(make([]byte, 100_000)))
	r := precheck(t, PrecheckInput{JobID: "j", Role: RoleSource, Path: dir})
	if r.OS != runtime.GOOS || r.AgentVersion != "v1.0.0" || r.HostID != "h1" {
		t.Fatalf("%+v", r)
	}
	if len(r.Checks) != 1 || !r.Checks[0].OK || r.Checks[0].Name != CheckSourcePath {
		t.Fatalf("%+v", r.Checks)
	}
	if r.UsedBytes < 100_000 {
		t.Fatalf("used %d", r.UsedBytes)
	}
	if r.ClockSkew > time.Minute || r.ClockSkew < -time.Minute {
		t.Fatalf("skew %s", r.ClockSkew)
	}
	r = precheck(t, PrecheckInput{JobID: "j", Role: RoleSource, Path: filepath.Join(dir, "missing")})
	if r.Checks[0].OK {
		t.Fatal("missing source path passed")
	}
}

func TestPrecheckTarget(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{filepath.Join(dir, "new"), true},
		{dir, true},
		{filepath.Join(dir, "no", "parent"), false},
		{"relative/path", false},
		{"/", false},
	} {
		r := precheck(t, PrecheckInput{JobID: "j", Role: RoleTarget, Path: tc.path})
		if r.Checks[0].OK != tc.ok {
			t.Errorf("%s: %+v", tc.path, r.Checks[0])
		}
	}
	write(t, filepath.Join(dir, "file"), "x")
	if r := precheck(t, PrecheckInput{JobID: "j", Role: RoleTarget, Path: filepath.Join(dir, "file")}); r.Checks[0].OK {
		t.Error("a file as target passed")
	}
	if r := precheck(t, PrecheckInput{JobID: "j", Role: RoleTarget, Path: filepath.Join(dir, "new")}); r.FreeBytes <= 0 {
		t.Errorf("free %d", r.FreeBytes)
	}
	if err := os.Symlink(dir, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if r := precheck(t, PrecheckInput{JobID: "j", Role: RoleTarget, Path: filepath.Join(dir, "link")}); r.Checks[0].OK {
		t.Error("a symlink as target passed")
	}
}

func TestStage(t *testing.T) {
	dir := t.TempDir()
	h := &Host{ID: "h1"}
	v, err := actEnv(h).ExecuteActivity(h.Stage, StageInput{JobID: "j", TargetPath: filepath.Join(dir, "app")})
	if err != nil {
		t.Fatal(err)
	}
	var r StageResult
	v.Get(&r)
	if r.Replica != filepath.Join(dir, ".ferry-j", "replica") || len(r.Checks) != 1 || !r.Checks[0].OK {
		t.Fatalf("%+v", r)
	}
	if st, err := os.Stat(r.Replica); err != nil || !st.IsDir() {
		t.Fatal(err)
	}
	if _, err := actEnv(h).ExecuteActivity(h.Stage, StageInput{JobID: "j", TargetPath: filepath.Join(dir, "x", "y")}); err == nil {
		t.Fatal("stage without a parent succeeded")
	}
}
