package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry"
)

// keyEngine records the options each call received.
type keyEngine struct {
	lagEngine
	mirror MirrorOptions
	verify MirrorOptions
}

func (e *keyEngine) Mirror(_ context.Context, req MirrorRequest, _ func(MirrorProgress)) (MirrorSummary, error) {
	e.mirror = req.Options
	return MirrorSummary{Files: 1}, nil
}

func (e *keyEngine) Verify(_ context.Context, req VerifyRequest) (VerifyReport, error) {
	e.verify = req.Options
	return VerifyReport{}, nil
}

type mapKeys map[string][]byte

func (m mapKeys) JobKey(_ context.Context, id string) ([]byte, error) {
	if k, ok := m[id]; ok {
		return k, nil
	}
	return nil, errors.New("403: not this host's job")
}

func TestEncryptedTransferFetchesKeyAtRunTime(t *testing.T) {
	secret := []byte("0123456789abcdef-secret-XYZ")
	eng := &keyEngine{}
	h := &Host{ID: "src", Engine: eng, Keys: mapKeys{"j1": secret}}
	opts := MirrorOptions{Compress: "fast", Encrypt: "aes"}
	in := MirrorInput{Request: MirrorRequest{JobID: "j1", Options: opts}}
	if _, err := actEnv(h).ExecuteActivity(h.Mirror, in); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(eng.mirror.Key, secret) || eng.mirror.Compress != "fast" || eng.mirror.Encrypt != "aes" {
		t.Fatalf("engine got compress %q encrypt %q key %d bytes", eng.mirror.Compress, eng.mirror.Encrypt, len(eng.mirror.Key))
	}
	if w := MirrorOptionsWire(eng.mirror); !bytes.Equal(w.Key, secret) || w.Compress != "fast" || w.Encrypt != "aes" {
		t.Fatalf("wire options lost the payload settings")
	}
	if _, err := actEnv(h).ExecuteActivity(h.Verify, VerifyInput{Request: VerifyRequest{JobID: "j1", Options: opts}}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(eng.verify.Key, secret) {
		t.Fatal("verify did not get the key")
	}
	// The options never serialise the key, even once filled in.
	data, _ := json.Marshal(MirrorInput{Request: MirrorRequest{JobID: "j1", Options: eng.mirror}})
	if bytes.Contains(data, secret) || bytes.Contains(data, []byte("key")) {
		t.Fatalf("activity input carries the key: %s", data)
	}
	// A plain job needs no key source.
	plain := &Host{ID: "src", Engine: &keyEngine{}}
	if _, err := actEnv(plain).ExecuteActivity(plain.Mirror, MirrorInput{Request: MirrorRequest{JobID: "j2", Options: MirrorOptions{Compress: "fast", Encrypt: "none"}}}); err != nil {
		t.Fatal(err)
	}
}

func TestEncryptedTransferRefusedWithoutKey(t *testing.T) {
	opts := MirrorOptions{Encrypt: "sm4"}
	for name, h := range map[string]*Host{
		"no key source": {ID: "src", Engine: &keyEngine{}},
		"not granted":   {ID: "src", Engine: &keyEngine{}, Keys: mapKeys{}},
		"short key":     {ID: "src", Engine: &keyEngine{}, Keys: mapKeys{"j1": []byte("tiny-k3y")}},
	} {
		_, err := actEnv(h).ExecuteActivity(h.Mirror, MirrorInput{Request: MirrorRequest{JobID: "j1", Options: opts}})
		if err == nil {
			t.Errorf("%s: mirror ran without the job key", name)
			continue
		}
		if e := h.Engine.(*keyEngine); e.mirror.Encrypt != "" {
			t.Errorf("%s: the engine was called", name)
		}
		if strings.Contains(err.Error(), "tiny-k3y") {
			t.Errorf("%s: error shows the key: %v", name, err)
		}
	}
	if got := (MirrorOptions{Key: ferry.SecretKey("0123456789abcdef")}); strings.Contains(fmtAny(got), "0123456789abcdef") {
		t.Error("options print the key")
	}
}

func fmtAny(v any) string {
	b := new(strings.Builder)
	_, _ = fmt.Fprintf(b, "%v %+v", v, v)
	return b.String()
}
