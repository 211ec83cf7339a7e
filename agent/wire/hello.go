package wire

import "fmt"

// Capabilities a peer may list in its Hello.
const (
	CapZstd   = "zstd"        // Data payloads may be zstd-compressed (FlagZstd)
	CapAESGCM = "aes-256-gcm" // payloads may be sealed with AES-256-GCM
	CapSM4GCM = "sm4-gcm"     // payloads may be sealed with SM4-GCM
	CapDelta  = "delta"       // block-hash delta transfer (always on in v1)
	CapResume = "resume"      // partial files resume from a durable offset
)

// Roles a peer announces in its Hello.
const (
	RoleController = "controller"
	RoleAgent      = "agent"
)

// Hello is the first message in each direction.
type Hello struct {
	Version int    // protocol version, must equal the peer's
	Role    string // RoleController or RoleAgent
	Agent   string // software version, for logs
	Caps    []string
	// KeyCheck proves possession of the payload key when payload
	// encryption is requested (filled by package seal; empty otherwise).
	KeyCheck []byte
}

func (*Hello) Kind() Kind { return KindHello }

func (m *Hello) Encode(e *Encoder) {
	e.Uvarint(uint64(m.Version))
	e.String(m.Role)
	e.String(m.Agent)
	e.Strings(m.Caps)
	e.Blob(m.KeyCheck)
}

func (m *Hello) Decode(d *Decoder) error {
	m.Version = int(d.Uvarint())
	m.Role = d.String()
	m.Agent = d.String()
	m.Caps = d.Strings()
	m.KeyCheck = append([]byte(nil), d.Blob()...)
	return d.Err()
}

// Has reports whether the hello lists capability c.
func (m *Hello) Has(c string) bool {
	for _, x := range m.Caps {
		if x == c {
			return true
		}
	}
	return false
}

// checkVersion returns ErrVersionMismatch naming both versions when the peer
// speaks another version.
func checkVersion(local, peer *Hello) error {
	if local.Version != peer.Version {
		return fmt.Errorf("%w: this side speaks protocol v%d (%s), the peer speaks v%d (%s); run the same ferry version on both hosts",
			ErrVersionMismatch, local.Version, local.Agent, peer.Version, peer.Agent)
	}
	return nil
}
