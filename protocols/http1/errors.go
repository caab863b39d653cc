package http1

import (
	"errors"

	"github.com/sondehq/sonde/protocols"
)

// Stable names of the protocol errors, under which the pipeline counts them.
const (
	codeStartLineTooLong    = "http1_start_line_too_long"
	codeHeadersTooLarge     = "http1_headers_too_large"
	codeTooManyHeaders      = "http1_too_many_headers"
	codeBadContentLength    = "http1_bad_content_length"
	codeBadTransferEncoding = "http1_bad_transfer_encoding"
	codeBadChunkSize        = "http1_bad_chunk_size"
	codeChunkLineTooLong    = "http1_chunk_line_too_long"
	codeBadChunkEnd         = "http1_bad_chunk_end"
	codeLostSync            = "http1_lost_sync"
)

// errClosed is what a Conn returns when fed after Close.
var errClosed = errors.New("connection closed")

// Counter names, stable: the pipeline adds them up by name.
const (
	// countPendingEvicted: more than Options.MaxPending requests were waiting,
	// and the oldest was given up.
	countPendingEvicted = "http1_pending_evicted"
	// countBudgetEvicted: the agent's memory budget for held messages
	// (Options.Budget) was spent, and the oldest request waiting on this
	// connection was given up to make room.
	countBudgetEvicted = "http1_budget_evicted"
	// countBudgetCut: the budget was spent and nothing here could be given
	// up: a body was kept shorter than the body cap.
	countBudgetCut = "http1_budget_cut"
)

var counterNames = protocols.NewCounterNames(countPendingEvicted, countBudgetEvicted, countBudgetCut).WithLoss(
	countPendingEvicted, countBudgetEvicted, countBudgetCut,
)
