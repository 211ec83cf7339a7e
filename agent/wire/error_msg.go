package wire

// Error reports a failure to the peer and ends the conversation.
type Error struct {
	Code    Code
	Message string
}

func (*Error) Kind() Kind { return KindError }

func (m *Error) Encode(e *Encoder) {
	e.Uvarint(uint64(m.Code))
	e.String(m.Message)
}

func (m *Error) Decode(d *Decoder) error {
	m.Code = Code(d.Uvarint())
	m.Message = d.String()
	return d.Err()
}

// Cancel asks the peer to stop the job (sent by the controller).
type Cancel struct{}

func (*Cancel) Kind() Kind              { return KindCancel }
func (*Cancel) Encode(*Encoder)         {}
func (*Cancel) Decode(d *Decoder) error { return d.Err() }
