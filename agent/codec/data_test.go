package codec

import (
	"math/rand/v2"
)

// Test and benchmark data, deterministic per seed.

func randomData(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	r.Read(b)
	return b
}

// halfData is, in every 4 KiB block, 2 KiB of random bytes then 2 KiB of
// zeros: half of the bytes are incompressible.
func halfData(n int, seed uint64) []byte {
	b := randomData(n, seed)
	for off := 0; off < n; off += 4096 {
		clear(b[min(off+2048, n):min(off+4096, n)])
	}
	return b
}

var words = []string{
	"the", "agent", "copies", "a", "file", "tree", "from", "source", "host", "to", "target",
	"over", "network", "without", "stopping", "it", "and", "then", "keeps", "every", "change",
	"in", "sync", "until", "cutover", "when", "services", "move", "block", "level", "mirror",
	"checksum", "strict", "time", "mode", "error", "policy", "orphans", "journal", "resume",
	"bandwidth", "schedule", "window", "compression", "encryption", "key", "frame", "payload",
	"2026-11-25", "INFO", "WARN", "/var/lib/data", "user=root", "pid=4711", "42", "1024", "ok",
}

// textData is log-like text from a fixed vocabulary.
func textData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, 0, n+32)
	for len(b) < n {
		b = append(b, words[r.IntN(len(words))]...)
		if r.IntN(12) == 0 {
			b = append(b, '\n')
		} else {
			b = append(b, ' ')
		}
	}
	return b[:n]
}

// mixedData is, in every 4 KiB block, 2 KiB of random bytes then 2 KiB of
// log-like text: the mix that split frames are for.
func mixedData(n int, seed uint64) []byte {
	b := randomData(n, seed)
	text := textData(n/2+2048, seed)
	for off := 0; off < n; off += 4096 {
		copy(b[min(off+2048, n):min(off+4096, n)], text[off/2:])
	}
	return b
}
