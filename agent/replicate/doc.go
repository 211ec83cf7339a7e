// Package replicate is Ferry's continuous sync engine: after the initial
// mirror it keeps the target tree current while the source keeps serving.
//
// # Source side (StartSource)
//
//	capture (fanotify/inotify) → journal (durable, ordered) → shipper
//
// Capture starts before the initial mirror, so a change made while the
// mirror runs is journaled and shipped after it. The shipper reads durable
// records from the last acknowledged sequence number, coalesces repeated
// writes (journal.Coalesce) and turns each record into ops built from the
// source's CURRENT state of the path (content and full metadata through
// fsys), so re-shipping a record is always harmless:
//
//   - a vanished path becomes a delete, unless the record explaining its
//     disappearance (looked for in the batch and the next journal records,
//     waiting up to ExplainWait for capture) is a rename of it or of an
//     ancestor: then the record is skipped and that rename carries the
//     content (skipped paths are kept until the rename is acknowledged);
//   - a rename is a rename on the target, directories too (never delete
//     and copy); a directory that appears is shipped with its subtree;
//   - a file with several links is written in place and every other known
//     name of its inode is (re)linked to it, so hardlink groups match;
//   - a changed file of DeltaMin (16 KiB) or more ships only its changed
//     blocks (4 KiB for files up to 8 MiB, growing to 256 KiB so a file
//     has at most 2048 when first shipped; a growing file keeps its block
//     size up to 32 times that count, and a larger one compares its new
//     blocks through the old hashes, so it never ships whole again; the
//     shipper keeps the block hashes of what it shipped on the
//     connection), and a pure append only the new bytes — a SQLite
//     database and its WAL ship their changed pages and appended frames,
//     not whole files. Each block is hashed from the bytes as read and
//     sent, and the target verifies the patched file against the digest of
//     those hashes, so a file written while it ships still verifies.
//     Content writes younger than CoalesceDelay (20 ms) are held that long
//     so a burst of commits ships once;
//   - a file that grew is taken for an append after a sampled check of
//     its old prefix (the first, the last and the partial last block, and
//     a SweepWindow of the rest), not a read of the whole file: a log or a
//     database of several GB appends at disk speed with a lag of
//     milliseconds. A rolling sweep then reads the rest of the old prefix
//     a window at a time, at each ship of the file and whenever the
//     shipper is idle; a mismatch ships the file as a block delta at once.
//     Until a sweep cycle that began after the last sampled append has
//     completed, the path is listed durably (sweep.go, unverified.go):
//     WaitDrained waits for the proof, and after a crash or a resync the
//     listed files are compared strictly (Config.MirrorStrict). A file
//     whose old prefix fits in one window is checked whole at once;
//   - OpRescan of a directory runs the mirror engine on that subtree
//     (Config.Mirror: its compare, orphans deleted) once everything before
//     it is acknowledged.
//
// Every (re)start of a Source resyncs with a mirror first: changes made
// while no capture ran are otherwise unknown. A journal that would exceed
// its bound (target unreachable for long) puts the sync in state
// remirror_required: the journal is reset and the tree mirrored again, so
// nothing is lost and the disk does not fill. After a recovery (cut
// connection, killed target, a restart of the source agent) the sync
// mirrors once more (time mode) when it has drained and capture has been
// quiet for SettleTime, as a safety net.
//
// # Drain
//
// WaitDrained (the final sync of a cutover, SyncSession.Drain over the
// wire) places a barrier file in the source root and waits for capture to
// deliver it: every event queued before it in the kernel is then
// journaled. It then waits for the journal's last record at that point to
// be applied and acknowledged (barrier.go), and for every sampled append
// to be proven by its sweep (or shipped again and acknowledged).
//
// # Target side (ServeTarget, hosted by the agent daemon)
//
// Ops are applied in order through an fsys.Root (nothing outside the root,
// no symlink followed). Regular files are written to a temporary file in
// the destination directory and renamed over the final name, so a reader
// never sees a torn file; a block delta copies the current file into the
// temporary file (copy_file_range), patches the changed blocks, verifies
// every block hash and renames it over. Two cases write in place: files
// with several names (the names must keep sharing the inode) and pure
// appends to large files (the target checks the old size; readers see the
// file grow, never a changed prefix). The target logs its temporary names
// and removes those a killed run left. Parent directories get their
// metadata after each op. Every AckInterval the target calls syncfs on the
// target file system, writes the last applied sequence number to its state
// file (fsync, rename), and acknowledges it; the source journal then drops
// acknowledged segments. After kill -9 of either agent or a cut connection
// the source reconnects and ships again from the target's applied number.
// An op the target cannot apply against its tree (a rename whose source is
// missing, a delta or link whose base is missing) is refused with
// ErrNeedFull after acknowledging what came before; the source reconnects
// and ships that record in full (three refusals of the same record: a
// resync).
//
// # Not covered
//
// File content goes through the job's payload codec like the mirror's
// (zstd per chunk, AES-256-GCM or SM4-GCM sealing bound to the chunk's
// sequence number; keys from per-connection salts, a wrong key refused at
// attach); the other ops travel under TLS 1.3 only. The bandwidth schedule
// applies, and changes live (Source.Limiter, registered by the agent for
// SetLimits). Writes
// through a shared mapping (SQLite's -shm) raise no fanotify/inotify
// event: such a file ships when something else touches it.
package replicate
