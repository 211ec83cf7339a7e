package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/agent/fsys"
)

// pipe returns two Conns over net.Pipe.
func pipe(t *testing.T) (*Conn, *Conn) {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return NewConn(a), NewConn(b)
}

// tcpPair returns two Conns over loopback TCP.
func tcpPair(t *testing.T) (*Conn, *Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); ch <- c }()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-ch
	t.Cleanup(func() { a.Close(); b.Close() })
	return NewConn(a), NewConn(b)
}

func sampleEntry() fsys.Entry {
	return fsys.Entry{Path: "dir/na\xffme with\nnewline", Type: fsys.TypeFile, Mode: 0o4755, Uid: 1000, Gid: 2000,
		Size: 1 << 40, MtimeNs: 1700000000123456789, AtimeNs: -5, Rdev: 0x0801, Target: "../x",
		Xattrs: []fsys.Xattr{{Name: "user.a", Value: []byte{0, 1, 2}}, {Name: "system.posix_acl_access", Value: []byte("acl")}}}
}

// messages returns one populated message of every kind.
func messages() []Message {
	opts := JobOptions{Checksum: ChecksumStrict, Excludes: []string{"*.tmp", "/var/cache"}, OnError: OnErrorSkip,
		Orphans: OrphansMove, OrphanDir: ".orphans", Profile: "system", Mounts: []string{"/home"}, CheckpointBytes: 1 << 20,
		Compress: "fast", Encrypt: "sm4", Key: []byte("0123456789abcdef"), BWLimit: "4M"}
	return []Message{
		&Hello{Version: Version, Role: RoleAgent, Agent: "t", Caps: []string{CapDelta, CapZstd}, KeyCheck: []byte("k")},
		&Error{Code: CodeBadPath, Message: "nope"},
		&ReceiveJob{JobID: "j", Root: "/dst", Opts: opts},
		&JobAccepted{Token: "tok", Salt: []byte("salt")},
		&SendJob{JobID: "j", Root: "/src", Target: "127.0.0.1:1", Token: "tok", TargetSalt: []byte("ts"), Opts: opts},
		&Attach{JobID: "j", Token: "tok", Salt: []byte("s"), KeyCheck: []byte("kc")},
		&EntryBatch{Entries: []FileEntry{{ID: 7, Entry: sampleEntry(), LinkTo: "a/b", Hash: bytes.Repeat([]byte{3}, HashSize)}}},
		&ScanEnd{},
		&NeedBatch{Items: []Need{{ID: 1, Action: NeedFull}, {ID: 2, Action: NeedDelta, BlockSize: 65536, ValidLen: 100, Hashes: bytes.Repeat([]byte{9}, HashSize), Resumed: true}}, End: true},
		&Data{ID: 3, Offset: 4096, Seq: 0, RawLen: 5, Payload: []byte("hello")},
		&FileEnd{ID: 3, Status: FileSkipped, Size: 5, Reason: "EIO"},
		&SendEnd{Skipped: []string{"x"}},
		&Progress{FilesTotal: 1, BytesTotal: 2, ScanDone: true, FilesDone: 3, BytesDone: 4, WireBytes: 5},
		&JobDone{Summary: []byte(`{"a":1}`)},
		&VerifyScan{Root: "/r", Opts: opts},
		&ManifestBatch{Entries: []ManifestEntry{{Entry: sampleEntry(), Hash: [HashSize]byte{1, 2}, LinkKey: "k", Err: "e"}}},
		&ManifestEnd{},
		&Cancel{},
		&SetLimits{JobID: "j", Schedule: "Mon-Fri 08:00-18:00 10M; * 00:00-24:00 off"},
		&LimitsSet{Schedule: "4M"},
	}
}

func TestRoundTripEveryKind(t *testing.T) {
	for name, mk := range map[string]func(*testing.T) (*Conn, *Conn){"pipe": pipe, "tcp": tcpPair} {
		t.Run(name, func(t *testing.T) {
			a, b := mk(t)
			msgs := messages()
			go func() {
				for _, m := range msgs {
					if err := a.WriteMsg(m); err != nil {
						t.Error(err)
						return
					}
				}
				a.Flush()
			}()
			for _, want := range msgs {
				got, err := b.ReadMsg()
				if err != nil {
					t.Fatalf("read %s: %v", want.Kind(), err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s:\n got %#v\nwant %#v", want.Kind(), got, want)
				}
			}
		})
	}
}

func TestHandshakeVersionMismatch(t *testing.T) {
	for name, mk := range map[string]func(*testing.T) (*Conn, *Conn){"pipe": pipe, "tcp": tcpPair} {
		t.Run(name, func(t *testing.T) {
			a, b := mk(t)
			errc := make(chan error, 1)
			go func() {
				_, err := b.Handshake(&Hello{Version: Version + 1, Role: RoleAgent, Agent: "future"})
				errc <- err
			}()
			_, err := a.Handshake(&Hello{Version: Version, Role: RoleController, Agent: "now"})
			if !errors.Is(err, ErrVersionMismatch) {
				t.Fatalf("err = %v, want ErrVersionMismatch", err)
			}
			for _, s := range []string{fmt.Sprintf("v%d", Version), fmt.Sprintf("v%d", Version+1), "future"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not name %q", err, s)
				}
			}
			if err := <-errc; !errors.Is(err, ErrVersionMismatch) {
				t.Errorf("peer err = %v, want ErrVersionMismatch", err)
			}
		})
	}
}

func TestHandshakeOK(t *testing.T) {
	a, b := pipe(t)
	go b.Handshake(&Hello{Version: Version, Role: RoleAgent, Caps: []string{CapZstd}})
	peer, err := a.Handshake(&Hello{Version: Version, Role: RoleController})
	if err != nil {
		t.Fatal(err)
	}
	if !peer.Has(CapZstd) || peer.Has(CapSM4GCM) || peer.Role != RoleAgent {
		t.Errorf("peer hello %+v", peer)
	}
}

func TestFrameTooLargeRefusedBeforeBody(t *testing.T) {
	a, b := pipe(t)
	go func() {
		// A header announcing 1 GiB, then nothing.
		a.nc.Write([]byte{0x40, 0, 0, 0, byte(KindData)})
	}()
	_, err := b.ReadMsg()
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("err = %v, want ErrFrameTooLarge", err)
	}
	big := &JobDone{Summary: make([]byte, MaxFrameSize)}
	if err := a.WriteMsg(big); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("write err = %v, want ErrFrameTooLarge", err)
	}
	if err := a.WriteData(context.Background(), 1, 0, make([]byte, MaxDataPayload+1)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("write data err = %v, want ErrFrameTooLarge", err)
	}
}

func TestMalformedAndUnknown(t *testing.T) {
	cases := map[string][]byte{
		"unknown kind":   {0, 0, 0, 1, 200},
		"truncated body": {0, 0, 0, 3, byte(KindAttach), 5, 'a'},
		"trailing bytes": {0, 0, 0, 4, byte(KindJobAccepted), 1, 'a', 'b'},
		"huge list":      {0, 0, 0, 4, byte(KindEntryBatch), 0xff, 0xff, 0x7f},
	}
	for name, frame := range cases {
		t.Run(name, func(t *testing.T) {
			a, b := pipe(t)
			go a.nc.Write(frame)
			if _, err := b.ReadMsg(); !errors.Is(err, ErrProtocol) {
				t.Fatalf("err = %v, want ErrProtocol", err)
			}
		})
	}
}

func TestDataSequenceChecked(t *testing.T) {
	a, b := pipe(t)
	go func() {
		a.WriteMsg(&Data{ID: 1, Seq: 0, RawLen: 1, Payload: []byte("a")})
		a.WriteMsg(&Data{ID: 1, Seq: 5, RawLen: 1, Payload: []byte("b")}) // replayed/reordered
		a.Flush()
	}()
	if _, err := b.ReadMsg(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ReadMsg(); !errors.Is(err, ErrProtocol) {
		t.Fatalf("err = %v, want ErrProtocol for a frame out of sequence", err)
	}
}

// xorCodec is a toy FrameCodec: it proves the hook transforms payloads and
// receives the sequence number.
type xorCodec struct{}

func (xorCodec) Encode(dst, p []byte, seq uint64) ([]byte, uint8, error) {
	for _, c := range p {
		dst = append(dst, c^byte(seq+1))
	}
	return dst, FlagSealed, nil
}

func (xorCodec) Decode(dst, p []byte, flags uint8, seq uint64, rawLen int) ([]byte, error) {
	if flags != FlagSealed {
		return nil, errors.New("unsealed frame")
	}
	for _, c := range p {
		dst = append(dst, c^byte(seq+1))
	}
	return dst, nil
}

type countLimiter struct{ n int }

func (l *countLimiter) WaitN(_ context.Context, n int) error { l.n += n; return nil }

func TestCodecAndLimiterHooks(t *testing.T) {
	a, b := pipe(t)
	a.SetCodec(xorCodec{})
	b.SetCodec(xorCodec{})
	lim := &countLimiter{}
	a.SetLimiter(lim)
	go func() {
		a.WriteData(context.Background(), 9, 0, []byte("first"))
		a.WriteData(context.Background(), 9, 5, []byte("second"))
		a.Flush()
	}()
	for _, want := range []string{"first", "second"} {
		m, err := b.ReadMsg()
		if err != nil {
			t.Fatal(err)
		}
		if d := m.(*Data); string(d.Payload) != want {
			t.Errorf("payload %q, want %q", d.Payload, want)
		}
	}
	if lim.n != len("firstsecond") {
		t.Errorf("limiter saw %d bytes, want %d", lim.n, len("firstsecond"))
	}
}

func TestErrorTable(t *testing.T) {
	seen := map[Code]bool{}
	for _, c := range codeTable {
		if seen[c.code] {
			t.Errorf("code %d twice", c.code)
		}
		seen[c.code] = true
		wrapped := errors.Join(errors.New("ctx"), c.err)
		if got := CodeOf(wrapped); got != c.code {
			t.Errorf("CodeOf(%v) = %d, want %d", c.err, got, c.code)
		}
		remote := ErrorMsg(wrapped).Err()
		if !errors.Is(remote, c.err) {
			t.Errorf("remote error for %v does not wrap it", c.err)
		}
	}
	if CodeOf(io.EOF) != CodeInternal || SentinelOf(999) != ErrInternal {
		t.Error("unknown errors must map to internal")
	}
}
