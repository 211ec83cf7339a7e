package journal

import "context"

// Shipping ahead of the flush. A record is written (write(2) to its
// segment) at Append and durable after the next group commit; a reader
// that waits for durability pays the fdatasync, which on a disk busy with
// other writeback can take a hundred milliseconds and more. ReadWritten
// and WaitWritten let a reader hand records on as soon as they are
// written. Those survive kill -9 of the process (the page cache keeps
// them) but not a crash of the machine, after which their sequence numbers
// are assigned again to new records. A reader whose peer may have seen
// such a lost number tells the two apart through Opened: a number above
// the recovered last that the peer took under another epoch belongs to a
// record lost in the crash, not to the new record that now carries it.

// ReadWritten is Read including records written but not yet durable.
func (j *Journal) ReadWritten(from uint64, max int) ([]Record, error) {
	return j.readTo(from, max, true)
}

// WaitWritten blocks until a record with a sequence number above afterSeq
// is written (durable or not). Returns ctx's error, ErrClosed, or the
// journal's sticky write error.
func (j *Journal) WaitWritten(ctx context.Context, afterSeq uint64) error {
	return j.waitFor(ctx, afterSeq+1, func() (uint64, chan struct{}) { return j.written, j.writtenCh })
}

// Opened returns this opening's epoch (a random nonzero number, new at
// every Open) and the last sequence number recovered at Open. Every record
// at or below last survived whatever ended the previous opening; numbers
// above it handed out by an earlier epoch may have been lost with a crash
// of the machine and reassigned since.
func (j *Journal) Opened() (epoch, last uint64) {
	return j.epoch, j.openLast
}
