package wire

// Checksum modes.
const (
	ChecksumStrict = "strict" // compare block hashes of every regular file
	ChecksumTime   = "time"   // skip files whose size and mtime match
)

// Error policies.
const (
	OnErrorStop = "stop" // abort the job at the first unreadable file
	OnErrorSkip = "skip" // record the file in the summary and go on
)

// Orphan policies (files present only on the target).
const (
	OrphansKeep   = "keep"
	OrphansDelete = "delete"
	OrphansMove   = "move" // move into JobOptions.OrphanDir (relative to the target root)
)

// JobOptions are the options of a mirror job, shared by both agents.
type JobOptions struct {
	Checksum  string   // ChecksumStrict or ChecksumTime
	Excludes  []string // glob patterns (path.Match on the relative path and on each base name)
	OnError   string   // OnErrorStop or OnErrorSkip
	Orphans   string   // OrphansKeep, OrphansDelete or OrphansMove
	OrphanDir string   // for OrphansMove: a directory relative to the target root
	Profile   string   // "" or "system"
	// Mounts names extra mount points the system profile should include.
	Mounts []string
	// CheckpointBytes is how often (in bytes written) the receiver makes a
	// large file durable and records its offset; 0 means the default.
	CheckpointBytes int64
	// Compress (off|fast|balanced|normal|extreme) and Encrypt
	// (none|aes|sm4) select the payload stages of Data frames; "" means
	// off/none.
	Compress string
	Encrypt  string
	// Key is the job's payload secret when Encrypt is set. It travels only
	// inside the controller's mutually authenticated TLS connections and
	// must never be logged (wrap it in seal.Secret).
	Key []byte
	// BWLimit is the sending agent's bandwidth schedule (bwlimit syntax);
	// "" or "off" for none.
	BWLimit string
}

func (o *JobOptions) encode(e *Encoder) {
	e.String(o.Checksum)
	e.Strings(o.Excludes)
	e.String(o.OnError)
	e.String(o.Orphans)
	e.String(o.OrphanDir)
	e.String(o.Profile)
	e.Strings(o.Mounts)
	e.Varint(o.CheckpointBytes)
	e.String(o.Compress)
	e.String(o.Encrypt)
	e.Blob(o.Key)
	e.String(o.BWLimit)
}

func (o *JobOptions) decode(d *Decoder) {
	o.Checksum = d.String()
	o.Excludes = d.Strings()
	o.OnError = d.String()
	o.Orphans = d.String()
	o.OrphanDir = d.String()
	o.Profile = d.String()
	o.Mounts = d.Strings()
	o.CheckpointBytes = d.Varint()
	o.Compress = d.String()
	o.Encrypt = d.String()
	if k := d.Blob(); len(k) > 0 {
		o.Key = append([]byte(nil), k...)
	}
	o.BWLimit = d.String()
}

// ReceiveJob tells the target agent to expect a job's data connection.
// The agent answers JobAccepted with a one-time token, then JobDone (or
// Error) when the job ends.
type ReceiveJob struct {
	JobID string
	Root  string // absolute path on the target host
	Opts  JobOptions
}

func (*ReceiveJob) Kind() Kind { return KindReceiveJob }

func (m *ReceiveJob) Encode(e *Encoder) {
	e.String(m.JobID)
	e.String(m.Root)
	m.Opts.encode(e)
}

func (m *ReceiveJob) Decode(d *Decoder) error {
	m.JobID = d.String()
	m.Root = d.String()
	m.Opts.decode(d)
	return d.Err()
}

// JobAccepted acknowledges ReceiveJob (with a token and the target's salt
// for payload keys) or Attach (empty).
type JobAccepted struct {
	Token string
	Salt  []byte
}

func (*JobAccepted) Kind() Kind { return KindJobAccepted }

func (m *JobAccepted) Encode(e *Encoder) {
	e.String(m.Token)
	e.Blob(m.Salt)
}

func (m *JobAccepted) Decode(d *Decoder) error {
	m.Token = d.String()
	if s := d.Blob(); len(s) > 0 {
		m.Salt = append([]byte(nil), s...)
	}
	return d.Err()
}

// SendJob tells the source agent to scan Root and stream it to the target
// agent at Target, attaching with Token. The agent answers Progress messages
// and finally JobDone or Error.
type SendJob struct {
	JobID      string
	Root       string // absolute path on the source host
	Target     string // host:port of the target agent
	Token      string
	TargetSalt []byte // from the target's JobAccepted
	Opts       JobOptions
}

func (*SendJob) Kind() Kind { return KindSendJob }

func (m *SendJob) Encode(e *Encoder) {
	e.String(m.JobID)
	e.String(m.Root)
	e.String(m.Target)
	e.String(m.Token)
	e.Blob(m.TargetSalt)
	m.Opts.encode(e)
}

func (m *SendJob) Decode(d *Decoder) error {
	m.JobID = d.String()
	m.Root = d.String()
	m.Target = d.String()
	m.Token = d.String()
	if s := d.Blob(); len(s) > 0 {
		m.TargetSalt = append([]byte(nil), s...)
	}
	m.Opts.decode(d)
	return d.Err()
}

// Attach is the source agent's first message after Hello on a data
// connection: it names the job the target accepted and the token it gave.
// With payload encryption it carries the source's salt and a key check
// (package seal), so a wrong key fails here, before any data moves.
type Attach struct {
	JobID    string
	Token    string
	Salt     []byte
	KeyCheck []byte
}

func (*Attach) Kind() Kind { return KindAttach }

func (m *Attach) Encode(e *Encoder) {
	e.String(m.JobID)
	e.String(m.Token)
	e.Blob(m.Salt)
	e.Blob(m.KeyCheck)
}

func (m *Attach) Decode(d *Decoder) error {
	m.JobID = d.String()
	m.Token = d.String()
	if s := d.Blob(); len(s) > 0 {
		m.Salt = append([]byte(nil), s...)
	}
	if k := d.Blob(); len(k) > 0 {
		m.KeyCheck = append([]byte(nil), k...)
	}
	return d.Err()
}

// JobDone ends a job conversation successfully. Summary is the JSON
// encoding of the sending side's summary (mirror.Summary).
type JobDone struct {
	Summary []byte
}

func (*JobDone) Kind() Kind { return KindJobDone }

func (m *JobDone) Encode(e *Encoder) { e.Blob(m.Summary) }

func (m *JobDone) Decode(d *Decoder) error {
	m.Summary = append([]byte(nil), d.Blob()...)
	return d.Err()
}

// Progress reports a running job's counters to the controller.
type Progress struct {
	FilesTotal int64 // regular files found by the scan so far
	BytesTotal int64
	ScanDone   bool
	FilesDone  int64 // regular files finished (sent or found up to date)
	BytesDone  int64
	WireBytes  int64 // bytes written to the data connection
}

func (*Progress) Kind() Kind { return KindProgress }

func (m *Progress) Encode(e *Encoder) {
	e.Varint(m.FilesTotal)
	e.Varint(m.BytesTotal)
	e.Bool(m.ScanDone)
	e.Varint(m.FilesDone)
	e.Varint(m.BytesDone)
	e.Varint(m.WireBytes)
}

func (m *Progress) Decode(d *Decoder) error {
	m.FilesTotal = d.Varint()
	m.BytesTotal = d.Varint()
	m.ScanDone = d.Bool()
	m.FilesDone = d.Varint()
	m.BytesDone = d.Varint()
	m.WireBytes = d.Varint()
	return d.Err()
}
