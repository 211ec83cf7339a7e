package agent

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/agent/mirror"
)

// TestProgressMovesWithinABigFile: while one large file streams, the
// mirror's progress reports bytes done before the file completes (an
// operator watching a disk image copy sees it move), and never more than
// the total.
func TestProgressMovesWithinABigFile(t *testing.T) {
	env := newEnv(t)
	src, dst := t.TempDir(), t.TempDir()
	const size = 24 << 20
	b := make([]byte, size)
	rand.NewChaCha8([32]byte{5}).Read(b)
	if err := os.WriteFile(filepath.Join(src, "image"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	from, to := env.endpoints(src, dst)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mid []mirror.Progress
	sum, err := env.ctl.Mirror(ctx, MirrorRequest{From: from, To: to, Opts: mirror.Options{BWLimit: "8M"}},
		func(p mirror.Progress) {
			if p.BytesDone > p.BytesTotal && p.ScanDone {
				t.Errorf("progress %d bytes done of %d", p.BytesDone, p.BytesTotal)
			}
			if p.FilesDone == 0 && p.BytesDone > 0 {
				mid = append(mid, p)
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	if sum.BytesSent < size {
		t.Fatalf("summary: %+v", sum)
	}
	if len(mid) == 0 {
		t.Fatal("no progress report showed bytes done before the only file completed")
	}
	t.Logf("%d reports during the file, e.g. %d of %d bytes", len(mid), mid[len(mid)/2].BytesDone, size)
}
