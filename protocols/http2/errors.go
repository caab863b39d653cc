package http2

import (
	"errors"
	"fmt"

	"golang.org/x/net/http2/hpack"

	"github.com/sondehq/sonde/protocols"
)

// Stable codes of the protocol errors, under which the pipeline counts them.
// A frame the framer refuses is counted as codeFrame, or codeFrame + "_" and
// the RFC 9113 error code it names ("http2_frame_protocol_error").
const (
	codeBadPreface          = "http2_bad_preface"
	codeFrame               = "http2_frame"
	codeFrameTooLarge       = "http2_frame_too_large"
	codeHeaderBlockTooLarge = "http2_header_block_too_large"
	codeHPACK               = "http2_hpack"
	codeHPACKStringTooLong  = "http2_hpack_string_too_long"
)

// errHPACKInteger is the shadow decoder's: an integer that overflows or a
// block that ends inside one.
var errHPACKInteger = errors.New("hpack: integer overflow or truncated block")

// tooLarge is the error of a check against a size cap: a ParseError that is
// also ErrTooLarge.
func tooLarge(code, detail string) error {
	return fmt.Errorf("%w: %w", protocols.Malformed(protocols.HTTP2, code, detail), protocols.ErrTooLarge)
}

// hpackError is the ParseError of a header block x/net's decoder refused.
func hpackError(err error) error {
	if errors.Is(err, hpack.ErrStringLength) {
		return tooLarge(codeHPACKStringTooLong, err.Error())
	}
	// RFC 9113 §4.3: a field block that cannot be decompressed is a
	// connection error of type COMPRESSION_ERROR.
	return protocols.Malformed(protocols.HTTP2, codeHPACK, err.Error())
}

// Counter names, stable: the pipeline adds them up by name.
const (
	// countPendingEvicted: more than Options.MaxPending streams were waiting,
	// and the oldest was given up.
	countPendingEvicted = "http2_pending_evicted"
	// countTableSizeCapped: a receiver announced a header table larger than
	// Sonde keeps (maxTableSize, or what Options.Budget had left); an
	// encoder that uses it all ends the connection's dissection.
	countTableSizeCapped = "http2_table_size_capped"
	// countBudgetEvicted: the agent's memory budget for held messages
	// (Options.Budget) was spent, and the oldest stream open on the
	// connection was emitted as it stood to make room.
	countBudgetEvicted = "http2_budget_evicted"
	// countBudgetCut: the budget was spent and no other stream could be
	// given up: a body or gRPC messages were kept shorter, or header
	// fields left out.
	countBudgetCut = "http2_budget_cut"
)

var counterNames = protocols.NewCounterNames(countPendingEvicted, countTableSizeCapped, countBudgetEvicted, countBudgetCut).WithLoss(
	countPendingEvicted, countTableSizeCapped, countBudgetEvicted, countBudgetCut,
)
