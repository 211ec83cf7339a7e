// Package wire is Ferry's data-channel protocol between agents and between
// the ferry CLI (the controller) and an agent. It runs over a mutually
// authenticated TLS 1.3 connection (see package pki).
//
// # Framing
//
// Every message is one frame:
//
//	uint32 big-endian length of what follows (kind byte + body)
//	uint8  kind
//	body   kind-specific binary encoding (see enc.go)
//
// A frame larger than MaxFrameSize is refused with ErrFrameTooLarge before
// its body is read. Integers are unsigned varints (zigzag for signed),
// strings and byte slices are a varint length and the raw bytes, so file
// names round-trip as arbitrary bytes (invalid UTF-8 included).
//
// # Handshake
//
// Both ends send a Hello first and read the peer's. Version must be equal on
// both sides; otherwise both ends fail with ErrVersionMismatch naming both
// versions. Capabilities (Caps) list optional features (compression,
// payload ciphers, ...); a feature is used only when both ends list it.
//
// # Conversations
//
// Controller → agent (one connection per request):
//
//	Hello ⇄ Hello
//	ReceiveJob  → target agent; it answers JobAccepted, later JobDone
//	SendJob     → source agent; it answers Progress* and then JobDone
//	VerifyScan  → either agent; it answers ManifestBatch* and ManifestEnd
//	SyncPrepare → target agent of a sync: keeps the payload key; JobAccepted
//	SyncStart   → source agent of a sync (see sync_msgs.go)
//
// Source agent → target agent (the data connection of a job):
//
//	Hello ⇄ Hello, Attach (job id + one-time token from JobAccepted, and
//	        with payload encryption the source's salt and key check)
//	target: JobAccepted, or Error (wrong token, keys differ)
//	source: EntryBatch* … ScanEnd          (the file list, batched, pipelined)
//	target: NeedBatch*                     (what it wants for each regular file)
//	source: Data* FileEnd per wanted file  (several files interleaved by ID)
//	source: SendEnd
//	target: JobDone (its half of the summary), then both close.
//
// With --checksum strict the source includes, for files up to 1 MiB, the
// hash of the whole content in its FileEntry, so the target confirms an
// identical file locally.
//
// An Error message may be sent by either end at any time and ends the
// conversation; its Code maps to a sentinel error through one table
// (errors.go).
//
// # Payload frames
//
// Data frames, and the SyncChunk frames of a continuous sync, carry a
// per-connection sequence number (one sequence for both kinds) and flags. A payload
// passes sender-side through bandwidth limiting (Limiter, package
// bwlimit), then compression and sealing (FrameCodec, package codec's
// Transform over package seal); the receiver undoes them in reverse order
// and checks that sequence numbers follow each other. The sequence number
// is what the sealing stage binds into its authenticated data. The salts
// of the payload keys travel in JobAccepted (target) and Attach (source),
// or in SyncAttach (source) and SyncAccepted (target). A receiver may take
// Data payloads still encoded from ReadMsg (Conn.DeferDataDecode) and
// decode them on its file writers; the sequence is still checked in order
// by ReadMsg, and each decoder checks that a frame was sealed as the number
// it arrived under.
//
// # Limits
//
// MaxFrameSize (4 MiB of payload plus 64 KiB), MaxBatchEntries (4,096),
// MaxListLen, MaxPathLen (32 KiB: trees may nest deeper than PATH_MAX) are
// checked when decoding, before anything is allocated for them.
package wire
