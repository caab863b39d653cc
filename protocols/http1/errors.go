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
)

var counterNames = protocols.NewCounterNames(countPendingEvicted).WithLoss(
	countPendingEvicted,
)
