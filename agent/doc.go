// Package agent is Ferry's per-host daemon: it serves the data channel
// (package wire over mutually authenticated TLS 1.3, package pki) and runs
// the mirror engine (package mirror) for the jobs a controller gives it.
//
// # Topology
//
// The controller (the ferry CLI, later the control plane's activities)
// connects to both agents. It sends ReceiveJob to the target agent, which
// answers JobAccepted with a one-time token and waits (AttachTimeout) for
// the source agent; it sends SendJob (target address + token) to the source
// agent, which dials the target agent directly, attaches with the token and
// streams. The source reports Progress and finally JobDone (the merged
// summary) on its controller connection; the target reports JobDone (its
// half) on its own. Closing a controller connection cancels the job on that
// agent, which cuts the data connection, which ends the job on the other.
//
// # API for the control plane
//
// The same two halves are exported for activities running inside the
// agent: (*Agent).AcceptReceive registers a receive job and returns a
// ReceiveHandle (token and salt to hand to the source agent; Wait for the
// target summary); (*Agent).Send runs the source half with a progress
// callback. Controller drives two agents over the wire the way the CLI
// does; Dial opens a controller connection to an agent.
//
// # Payload options
//
// --compress, --encrypt with a key file, and --bwlimit travel in the job
// options to both agents over the controller's TLS connections (the key
// never appears in logs: it is a seal.Secret). The target draws a salt when
// it accepts the job; the source draws its own and proves it holds the same
// key in Attach (seal.KeyCheck), so a wrong key fails before any data
// moves. Both install codec.Transform on the data connection; the source
// installs a bwlimit.Limiter.
//
// # Data directory
//
//	DATADIR/
//	  identity/            this agent's certificate and key (pki.LoadOrIssue)
//	  jobs/<hash of job>/  per-job state of a receiving agent
//	    job.json           the job id, for humans
//	    partial/*.json     checkpoints of large files in progress (mirror)
//	    clean              the last run completed (no temporaries left in the
//	                       tree: a re-run keeping orphans skips the walk for them)
//
// partial/ is removed when a run completes with no partial file left. The data directory is always excluded from scans of a tree that
// contains it.
//
// # Resume
//
// A job id is stable across runs of the same mirror (the CLI derives it from
// --from and --to unless --job is given). A rerun after a cut connection or
// a killed agent finds completed files up to date, and each partial file's
// checkpoint: its prefix is verified by block hashes and the transfer
// continues from the durable offset.
package agent
