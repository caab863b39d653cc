package kafka

import (
	"errors"

	"github.com/sondehq/sonde/protocols"
)

// Stable codes of the protocol errors, under which the pipeline counts them.
const (
	codeFrameLength   = "kafka_frame_length"
	codeRequestHeader = "kafka_request_header"
)

// Errors a call's decoding recovers from: they become warnings on its
// entry, not the end of the connection.
var (
	// errUndecodable wraps what kmsg's decoder could not read.
	errUndecodable = errors.New("undecodable")
	// errShortHeader: a flexible response header's tagged fields ran past the frame.
	errShortHeader = errors.New("response header runs past the frame")
	// errCorruptBatch: a record batch's fields contradict its length.
	errCorruptBatch = errors.New("corrupt record batch")
	// errUnknownCodec: a batch names a compression codec Kafka does not define.
	errUnknownCodec = errors.New("unknown compression codec")
)

// Counter names, stable: the pipeline and the tests read them by name.
const (
	CountFrameOverCap      = "kafka_frame_over_decode_cap"
	CountRequestUndecoded  = "kafka_request_undecodable"
	CountResponseUndecoded = "kafka_response_undecodable"
	CountUnmatchedResponse = "kafka_response_unmatched"
	CountPendingEvicted    = "kafka_pending_evicted"
	CountDecodedCap        = "kafka_decoded_cap"
	CountDecodeBudget      = "kafka_decode_budget"
	CountDecompressError   = "kafka_decompress_error"
	CountBatchMalformed    = "kafka_batch_malformed"
	CountRecordsCap        = "kafka_records_cap"
	CountListCap           = "kafka_list_cap"
	CountResync            = "kafka_resync"
	CountGapInFrame        = "kafka_gap_in_frame"
	CountDecoderPanic      = "kafka_decoder_panic"
	CountRawSASL           = "kafka_sasl_raw_token"
	CountWalkCap           = "kafka_walk_cap"
	// CountBudgetEvicted: the agent's memory budget for held messages
	// (Options.Budget) was spent, and the oldest request waiting on the
	// connection was emitted unmatched to make room.
	CountBudgetEvicted = "kafka_budget_evicted"
	// CountBudgetCut: the budget was spent and nothing on the connection
	// could be given up: a frame being collected was passed over undecoded,
	// or a waiting request let go of its records.
	CountBudgetCut = "kafka_budget_cut"
)

var counterNames = protocols.NewCounterNames(
	CountFrameOverCap, CountRequestUndecoded, CountResponseUndecoded,
	CountUnmatchedResponse, CountPendingEvicted, CountDecodedCap,
	CountDecodeBudget, CountDecompressError, CountBatchMalformed,
	CountRecordsCap, CountListCap, CountResync, CountGapInFrame,
	CountDecoderPanic, CountRawSASL, CountWalkCap, CountBudgetEvicted, CountBudgetCut,
).WithLoss(
	CountBudgetEvicted, CountBudgetCut, CountFrameOverCap, CountRequestUndecoded, CountResponseUndecoded, CountUnmatchedResponse, CountPendingEvicted, CountDecodedCap, CountDecodeBudget, CountDecompressError, CountBatchMalformed, CountRecordsCap, CountListCap, CountResync, CountGapInFrame, CountDecoderPanic, CountWalkCap,
)
