// Package mirror is Ferry's byte-level mirror engine: it copies a file tree
// from a source host to a target host over one wire.Conn, faithfully,
// pipelined, resumably. It is a library: the agent daemon runs it for the
// CLI, and Temporal activities can run it the same way.
//
//	source agent: Sender{Job, Conn}.Run(ctx) (Summary, error)
//	target agent: Receiver{Job, Conn, DataDir}.Run(ctx) (TargetSummary, error)
//	either host:  Manifest(ctx, root, opts, dataDir) and Compare(src, dst) for verify
//
// Nothing here exits the process or keeps global state; progress is a
// callback (Sender.OnProgress), cancellation is the context, and resume
// state lives in the target agent's data directory (JobDir).
//
// # Pipeline
//
// Source: a parallel scanner (4 workers reading directories and lstat-ing
// entries, xattrs included) feeds an announcer that assigns file ids,
// detects hardlinks by (dev, inode) and streams EntryBatch messages of up
// to 1,024 entries; in strict mode the scanner also hashes files up to
// 1 MiB. The target answers every regular file in NeedBatch messages
// (skip / full / delta with its block hashes), batched, never per file, so
// 50,000 small files cost a few dozen messages each way. Answers go to an
// unbounded queue served by 4 sender workers: small files are read whole
// (fsys.Root.ReadRegular: openat, fstat, one pread, fstat, close) and sent
// as one frame, large files in 256 KiB frames, several files
// interleaved. Buffered writes are flushed every 2 ms.
//
// Target: the reader dispatches entry batches to the planner (which stats
// each batch in parallel, creates directories, symlinks and special files
// at once and decides for regular files; a hash pool computes block
// hashes) and data frames to 4 apply workers by file id (frames of one
// file stay in order). Every file is written to a temporary name, created
// with its final permission bits (fsys.Root.CreateTempPerm, so that the
// metadata step usually needs no chmod, nor a chown when the agent runs as
// the file's owner)
// (".ferry.<name>.<random>") in its directory, gets its size, owner, mode,
// xattrs, ACLs, capabilities and times through the open fd, and is renamed
// over the final name: a partially written file is never visible under its
// final name. A new file of at most 1 MiB (nothing at its path when
// planned) is written as an unnamed inode in its directory instead
// (O_TMPFILE, fsys.Root.CreateUnnamed) and linked at its name when
// complete: one directory update instead of two, about 15% of the
// receiver's CPU on 50,000 small files, and a crash leaves nothing of it;
// a name that appeared meanwhile gets the temporary-name-and-rename path. Hardlinks, orphans, then directory metadata (deepest first,
// so directory times come after their content and read-only directories
// are filled first) end the job.
//
// # Checksum modes
//
// time: a file whose size and mtime match is skipped (its other metadata
// is still compared and fixed); otherwise strict. strict: the target hashes
// its copy in 64 KiB blocks (XXH3-128), the source compares its own blocks
// and sends only those that differ; the target rebuilds the file in a
// temporary copy (copy_file_range of the old data extents, then the
// patches). Small files in strict mode are confirmed by a whole-file hash
// computed on each side, with no round trip for identical files.
//
// # Resume
//
// Every CheckpointBytes (default 16 MiB) of a large file the target records
// {path, temporary name, offset, source size and mtime} in
// DATADIR/jobs/<job>/partial/ (and starts a background fdatasync if the
// file's last one is 30 s old: see syncInterval); when the
// connection is cut it records the exact offset reached. A rerun of the
// same job finds completed files up to date and, for a partial file whose
// source is unchanged, sends NeedDelta with the block hashes of the
// partial's prefix: the source re-sends only blocks whose hash differs (a
// prefix damaged by a crash is repaired, not trusted) and everything after
// the offset.
//
// # Safety
//
// The receiver validates every path (fsys.CleanRel: no absolute paths, no
// "..", no empty or oversized components) and fails the job with
// wire.ErrBadPath on a bad one; every operation goes through an fsys.Root,
// which never follows a symlink and never leaves the root, whatever the
// peer sends or a local process swaps in mid-transfer. Data frames for
// files that were not asked for, or outside a file's announced size, fail
// the job with wire.ErrProtocol.
//
// # Errors
//
// Sender.Run returns wire.ErrUnreadable (wrapped, with the path and the
// cause) when a source file cannot be read under the stop policy; under
// skip it lists the file in Summary.Skipped and goes on, and the target
// keeps its copy. A file that changes while it is read is not installed and
// is listed as skipped. Per-object failures on the target (e.g. a refused
// xattr) are listed in TargetSummary.Errors and do not stop the job.
package mirror
