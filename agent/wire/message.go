package wire

import "fmt"

// Kind identifies a message type on the wire. Values are part of the
// protocol: never renumber.
type Kind uint8

// Message kinds.
const (
	KindHello         Kind = 1
	KindError         Kind = 2
	KindReceiveJob    Kind = 3
	KindJobAccepted   Kind = 4
	KindSendJob       Kind = 5
	KindAttach        Kind = 6
	KindEntryBatch    Kind = 7
	KindScanEnd       Kind = 8
	KindNeedBatch     Kind = 9
	KindData          Kind = 10
	KindFileEnd       Kind = 11
	KindSendEnd       Kind = 12
	KindProgress      Kind = 13
	KindJobDone       Kind = 14
	KindVerifyScan    Kind = 15
	KindManifestBatch Kind = 16
	KindManifestEnd   Kind = 17
	KindCancel        Kind = 18
	KindSetLimits     Kind = 19
	KindLimitsSet     Kind = 20
)

var kindNames = map[Kind]string{
	KindHello: "Hello", KindError: "Error", KindReceiveJob: "ReceiveJob",
	KindJobAccepted: "JobAccepted", KindSendJob: "SendJob", KindAttach: "Attach",
	KindEntryBatch: "EntryBatch", KindScanEnd: "ScanEnd", KindNeedBatch: "NeedBatch",
	KindData: "Data", KindFileEnd: "FileEnd", KindSendEnd: "SendEnd",
	KindProgress: "Progress", KindJobDone: "JobDone", KindVerifyScan: "VerifyScan",
	KindManifestBatch: "ManifestBatch", KindManifestEnd: "ManifestEnd", KindCancel: "Cancel",
	KindSetLimits: "SetLimits", KindLimitsSet: "LimitsSet",
}

func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Message is one protocol message.
type Message interface {
	Kind() Kind
	// Encode appends the body to e.
	Encode(e *Encoder)
	// Decode reads the body from d; byte slices may alias the frame buffer,
	// which is valid until the next ReadMsg.
	Decode(d *Decoder) error
}

// newMessage returns an empty message of kind k.
func newMessage(k Kind) (Message, error) {
	switch k {
	case KindHello:
		return new(Hello), nil
	case KindError:
		return new(Error), nil
	case KindReceiveJob:
		return new(ReceiveJob), nil
	case KindJobAccepted:
		return new(JobAccepted), nil
	case KindSendJob:
		return new(SendJob), nil
	case KindAttach:
		return new(Attach), nil
	case KindEntryBatch:
		return new(EntryBatch), nil
	case KindScanEnd:
		return new(ScanEnd), nil
	case KindNeedBatch:
		return new(NeedBatch), nil
	case KindData:
		return new(Data), nil
	case KindFileEnd:
		return new(FileEnd), nil
	case KindSendEnd:
		return new(SendEnd), nil
	case KindProgress:
		return new(Progress), nil
	case KindJobDone:
		return new(JobDone), nil
	case KindVerifyScan:
		return new(VerifyScan), nil
	case KindManifestBatch:
		return new(ManifestBatch), nil
	case KindManifestEnd:
		return new(ManifestEnd), nil
	case KindCancel:
		return new(Cancel), nil
	case KindSetLimits:
		return new(SetLimits), nil
	case KindLimitsSet:
		return new(LimitsSet), nil
	}
	if m := newSyncMessage(k); m != nil {
		return m, nil
	}
	return nil, fmt.Errorf("%w: unknown message kind %d", ErrProtocol, k)
}
