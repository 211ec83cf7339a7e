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
// fsys): a vanished path becomes a delete, a rename a rename (directories
// too, never delete and copy), a new hardlink a link, a changed large file
// (≥ DeltaMin) only its changed blocks (the shipper keeps the block hashes
// of what it shipped last on the connection), OpRescan of a directory a
// mirror of that subtree (Config.Mirror, the mirror engine's compare). A
// record whose path vanished and is renamed away later in the same batch
// is skipped; the rename then carries the content.
//
// Every (re)start of a Source resyncs with a mirror first: changes made
// while no capture ran are otherwise unknown. A journal that would exceed
// its bound (target unreachable for long) puts the sync in state
// remirror_required: the journal is reset and the tree mirrored again
// (checksum mode of the job), so nothing is lost and the disk does not fill.
//
// # Target side (ServeTarget, hosted by the agent daemon)
//
// Ops are applied in order through an fsys.Root (nothing outside the root,
// no symlink followed). Regular files are written to a temporary file in
// the destination directory and renamed over the final name (a reader never
// sees a torn file); a delta copies the current file into the temporary
// file (copy_file_range), patches the changed blocks, verifies every block
// hash and renames it over. Files with several names are written in place
// (the names must keep sharing the inode). Parent directories get their
// metadata after each op. Every AckInterval the target calls syncfs on the
// target file system, writes the last applied sequence number to its state
// file (fsync, rename), and acknowledges it; the source journal then drops
// acknowledged segments. After kill -9 of either agent or a cut connection
// the source reconnects and ships again from the target's applied number;
// re-applying a record is harmless since ops carry current state. An op
// the target cannot apply against its tree (a rename whose source is
// missing, a delta or link whose base is missing) is refused with
// ErrNeedFull; the source reconnects and ships that record in full.
//
// # Not covered
//
// Sync payloads do not use the job's compression/encryption stages (TLS
// 1.3 still protects them); the bandwidth schedule applies.
package replicate
