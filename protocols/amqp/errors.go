package amqp

import (
	"errors"
	"fmt"

	"github.com/sondehq/sonde/protocols"
)

// Stable codes of the parse errors that make a connection opaque.
const (
	codeProtocolHeader = "amqp_protocol_header"
	codeFrameType      = "amqp_frame_type"
	codeFrameEnd       = "amqp_frame_end"
	codeFrameSize      = "amqp_frame_too_large"
	codeHeartbeat      = "amqp_heartbeat_payload"
	codeMethod         = "amqp_unknown_method"
	codeMethodArgs     = "amqp_method_args"
	codeContentHeader  = "amqp_content_header"
	codeBodySize       = "amqp_body_overrun"
	codeChannels       = "amqp_channel_cap"
)

// errShort: a method or content header ends before its fields do.
var errShort = errors.New("truncated")

// malformed makes the ParseError of one check.
func malformed(code, format string, args ...any) error {
	return protocols.Malformed(protocols.AMQP, code, fmt.Sprintf(format, args...))
}

// Counter names of events that are counted, not fatal (see Counters).
const (
	countHeartbeat       = "amqp_heartbeat"
	countOrphan          = "amqp_orphan_frame"
	countResync          = "amqp_resync_skipped_bytes"
	countLostFrame       = "amqp_frame_lost_to_gap"
	countPendingCap      = "amqp_pending_cap"
	countConfirmTimeout  = "amqp_confirm_timeout"
	countConfirmUnlinked = "amqp_confirm_unlinked"
	countBodyTruncated   = "amqp_body_truncated"
	countIncomplete      = "amqp_content_incomplete"
	// countBudgetEvicted: the agent's memory budget for held messages
	// (Options.Budget) was spent, and the oldest message waiting for its
	// answer on the connection was emitted unmatched to make room.
	countBudgetEvicted = "amqp_budget_evicted"
	// countBudgetCut: the budget was spent and nothing on the connection
	// could be given up: a body was kept shorter than the body cap.
	countBudgetCut = "amqp_budget_cut"
)

// Counter names of cap hits and anomalies that are not fatal.
const (
	countTableDepth    = "amqp_table_depth"
	countTableFields   = "amqp_table_fields"
	countValueLen      = "amqp_value_truncated"
	countTableBad      = "amqp_table_malformed"
	countFieldType     = "amqp_field_type_unknown"
	countTrailingBytes = "amqp_trailing_bytes"
)

// counterNames are every counter of a connection, those of field tables included.
var counterNames = protocols.NewCounterNames(
	countHeartbeat, countOrphan, countResync, countLostFrame, countPendingCap,
	countConfirmTimeout, countConfirmUnlinked, countBodyTruncated, countIncomplete,
	countTableDepth, countTableFields, countValueLen, countTableBad, countFieldType, countTrailingBytes,
	countBudgetEvicted, countBudgetCut,
).WithLoss(
	countBudgetEvicted, countBudgetCut, countOrphan, countResync, countLostFrame, countPendingCap, countBodyTruncated, countIncomplete, countTableDepth, countTableFields, countValueLen, countTableBad, countFieldType,
)
