package workflows

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
)

func TestSpecFromJob(t *testing.T) {
	j := &ferry.Job{
		ID: "j1", Mode: ferry.JobModeFile, SourceHostID: "a", TargetHostID: "b",
		SourcePaths: []string{"/srv"}, TargetPath: "/srv", Excludes: []string{"*.tmp"},
		ChecksumMode: ferry.ChecksumStrict, ErrorPolicy: ferry.ErrorSkip, OrphanPolicy: ferry.OrphanDelete,
		LagThreshold: 3 * time.Second, HostOfflineGrace: time.Hour, SystemProfile: true,
		Cutover: ferry.CutoverOptions{
			PreCutoverHook:     ferry.Hook{Command: "systemctl stop app"},
			PostCutoverActions: []ferry.CutoverAction{{Name: "start", Command: "systemctl start app", MustSucceed: true}, {Name: "notify", Command: "true"}},
			ShutdownSource:     true, ShutdownSourceHook: ferry.Hook{Command: "poweroff"},
		},
	}
	s, err := SpecFromJob(j, "b:7780")
	if err != nil {
		t.Fatal(err)
	}
	if s.JobID != "j1" || s.SourcePath != "/srv" || s.TargetAddr != "b:7780" || s.LagThreshold != 3*time.Second ||
		s.HostGracePeriod != time.Hour || s.Options.Checksum != "strict" || s.Options.OnError != "skip" ||
		s.Options.Orphans != "delete" || s.Options.Profile != "system" || s.Options.Excludes[0] != "*.tmp" {
		t.Fatalf("%+v", s)
	}
	if len(s.PreCutover) != 1 || !s.PreCutover[0].MustSucceed || s.PreCutover[0].Command[2] != "systemctl stop app" {
		t.Fatalf("pre %+v", s.PreCutover)
	}
	if s.PreCutover[0].Timeout != ferry.DefaultHookTimeout {
		t.Fatalf("pre-cutover timeout %s", s.PreCutover[0].Timeout)
	}
	if len(s.PostCutover) != 2 || !s.PostCutover[0].MustSucceed || s.PostCutover[1].MustSucceed || s.ShutdownSource == nil {
		t.Fatalf("post %+v shutdown %+v", s.PostCutover, s.ShutdownSource)
	}
	// Payload options: the cipher's name travels, the key never does.
	j.Compression, j.Encryption, j.EncryptionKey = ferry.CompressionFast, ferry.EncryptionAES, ferry.SecretKey("0123456789abcdef-do-not-leak")
	s, err = SpecFromJob(j, "b:7780")
	if err != nil {
		t.Fatal(err)
	}
	if s.Options.Compress != "fast" || s.Options.Encrypt != "aes" || s.Options.Key != nil {
		t.Fatalf("payload options %q %q key set %v", s.Options.Compress, s.Options.Encrypt, s.Options.Key != nil)
	}
	if data, _ := json.Marshal(s); strings.Contains(string(data), "do-not-leak") || !strings.Contains(string(data), `"encrypt":"aes"`) {
		t.Fatalf("spec JSON %s", data)
	}
	j.SourcePaths = []string{"/a", "/b"}
	if _, err := SpecFromJob(j, ""); ferry.ErrorCode(err) != ferry.EINVALID {
		t.Fatalf("two source paths: %v", err)
	}
}
