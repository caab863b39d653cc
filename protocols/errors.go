package protocols

import (
	"errors"
	"fmt"
)

var (
	// ErrMalformed is wrapped by every ParseError: the bytes break the protocol.
	ErrMalformed = errors.New("malformed")
	// ErrTooLarge: a message or frame is larger than a cap allows.
	ErrTooLarge = errors.New("exceeds a size cap")
)

// ParseError is a protocol violation. Code is a stable, short name that the
// pipeline counts errors under ("http1_bad_request_line",
// "amqp_frame_end"), so that a user can see which check failed how often.
type ParseError struct {
	Protocol Protocol
	Code     string
	Detail   string
}

func (e *ParseError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("%s: %s", e.Protocol, e.Code)
	}
	return fmt.Sprintf("%s: %s: %s", e.Protocol, e.Code, e.Detail)
}

// Is makes errors.Is(err, ErrMalformed) true for every ParseError.
func (e *ParseError) Is(target error) bool { return target == ErrMalformed }

// Malformed builds a ParseError.
func Malformed(p Protocol, code, detail string) error {
	return &ParseError{Protocol: p, Code: code, Detail: detail}
}

// UpgradeError is returned by Feed when the connection switches protocols (an
// HTTP/1.1 101 response to "Upgrade: h2c"). The pipeline hands the rest of the
// connection to the dissector of To, with Request as ConnInfo.Upgrade. Bytes
// not consumed by the Feed that returned it belong to the new protocol.
type UpgradeError struct {
	To      Protocol
	Request *Entry
}

func (e *UpgradeError) Error() string { return fmt.Sprintf("connection upgraded to %s", e.To) }
