package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
)

// concXorCodec is a stand-in concurrent payload codec: it XORs every byte with the
// frame's sequence number (so a frame decoded under another number comes
// out wrong) and sets flag 1.
type concXorCodec struct{}

func (concXorCodec) Encode(_, p []byte, seq uint64) ([]byte, uint8, error) {
	out := make([]byte, len(p))
	for i, b := range p {
		out[i] = b ^ byte(seq+1)
	}
	return out, 1, nil
}

func (concXorCodec) Decode(_, p []byte, flags uint8, seq uint64, rawLen int) ([]byte, error) {
	if flags != 1 {
		return nil, fmt.Errorf("flags %#x", flags)
	}
	out, _, _ := concXorCodec{}.Encode(nil, p, seq)
	if len(out) != rawLen {
		return nil, errors.New("length")
	}
	return out, nil
}

func (concXorCodec) NewPayloadDecoder() (PayloadDecoder, error) { return concXorCodec{}, nil }
func (concXorCodec) NewPayloadEncoder() (PayloadEncoder, error) { return concXorEncoder{}, nil }

type concXorEncoder struct{}

func (concXorEncoder) Encode(p []byte, seq uint64) ([]byte, uint8, error) {
	return concXorCodec{}.Encode(nil, p, seq)
}
func (concXorCodec) Close() {}

// TestPayloadFrames: Data and SyncChunk frames share one sequence and the
// codec; ReadMsg decodes SyncChunks and, with DeferDataDecode, hands Data
// payloads over still encoded for a PayloadDecoder.
func TestPayloadFrames(t *testing.T) {
	a, b := tcpPair(t)
	a.SetCodec(concXorCodec{})
	b.SetCodec(concXorCodec{})
	if !b.DeferDataDecode() {
		t.Fatal("DeferDataDecode refused a concurrent codec")
	}
	contents := [][]byte{[]byte("first"), bytes.Repeat([]byte("second"), 20000), []byte("third")}
	go func() {
		a.WriteData(context.Background(), 1, 0, contents[0])
		a.WriteMsg(&SyncChunk{Off: 7, Data: contents[1]})
		a.WriteData(context.Background(), 1, 5, contents[2])
		a.Flush()
	}()
	dec, _ := b.NewPayloadDecoder()
	for seq, want := range contents {
		m, err := b.ReadMsg()
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		switch m := m.(type) {
		case *Data:
			if m.Seq != uint64(seq) || m.Flags != 1 || bytes.Equal(m.Payload, want) {
				t.Fatalf("data frame %d: seq %d flags %d, payload decoded already: %v", seq, m.Seq, m.Flags, bytes.Equal(m.Payload, want))
			}
			if got, err = dec.Decode(nil, m.Payload, m.Flags, m.Seq, int(m.RawLen)); err != nil {
				t.Fatal(err)
			}
		case *SyncChunk:
			if m.Seq != uint64(seq) || m.Off != 7 {
				t.Fatalf("chunk: seq %d off %d", m.Seq, m.Off)
			}
			got = m.Data
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("frame %d differs", seq)
		}
	}
	n := int64(len(contents[0]) + len(contents[1]) + len(contents[2]))
	if raw, enc := a.PayloadBytes(); raw != n || enc != n {
		t.Errorf("PayloadBytes = %d, %d, want %d, %d", raw, enc, n, n)
	}
}

// TestPayloadFrameOutOfSequence: a payload frame whose number is not the
// next one (replayed, reordered) is refused by ReadMsg, deferred or not.
func TestPayloadFrameOutOfSequence(t *testing.T) {
	for _, deferred := range []bool{false, true} {
		a, b := tcpPair(t)
		b.SetCodec(concXorCodec{})
		if deferred {
			b.DeferDataDecode()
		}
		go func() {
			p, _, _ := concXorCodec{}.Encode(nil, []byte("x"), 0)
			a.WriteMsg(&Data{ID: 1, Seq: 0, Flags: 1, RawLen: 1, Payload: p})
			a.WriteMsg(&Data{ID: 1, Seq: 0, Flags: 1, RawLen: 1, Payload: p}) // replayed
			a.Flush()
		}()
		if _, err := b.ReadMsg(); err != nil {
			t.Fatal(err)
		}
		if _, err := b.ReadMsg(); !errors.Is(err, ErrProtocol) {
			t.Errorf("deferred %v: replayed frame: %v, want ErrProtocol", deferred, err)
		}
	}
}

// TestConcurrentWriters: frames written by several goroutines at once with
// a concurrent codec (encoded outside the lock) arrive in sequence order,
// each decodable under its number.
func TestConcurrentWriters(t *testing.T) {
	a, b := tcpPair(t)
	a.SetCodec(concXorCodec{})
	b.SetCodec(concXorCodec{})
	const writers, frames = 4, 200
	go func() {
		done := make(chan struct{})
		for w := range writers {
			go func() {
				defer func() { done <- struct{}{} }()
				for i := range frames {
					p := bytes.Repeat([]byte{byte(w), byte(i)}, 1000+i)
					if err := a.WriteData(context.Background(), uint64(w), int64(i), p); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		for range writers {
			<-done
		}
		a.Flush()
	}()
	next := make([]int, writers)
	for range writers * frames {
		m, err := b.ReadMsg()
		if err != nil {
			t.Fatal(err)
		}
		d := m.(*Data)
		w, i := int(d.ID), int(d.Offset)
		if i != next[w] {
			t.Fatalf("writer %d: frame %d after %d", w, i, next[w]-1)
		}
		next[w]++
		if want := bytes.Repeat([]byte{byte(w), byte(i)}, 1000+i); !bytes.Equal(d.Payload, want) {
			t.Fatalf("writer %d frame %d differs", w, i)
		}
	}
}
