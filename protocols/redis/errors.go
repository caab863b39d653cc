package redis

import (
	"github.com/sondehq/sonde/protocols"
)

// The ParseError codes, one per check.
var (
	errBadType       = malformed("redis_bad_type", "unknown RESP type byte")
	errMissingCR     = malformed("redis_missing_cr", "line not terminated by CRLF")
	errBadLength     = malformed("redis_bad_length", "invalid length or count")
	errBadInteger    = malformed("redis_bad_integer", "invalid integer")
	errBadDouble     = malformed("redis_bad_double", "invalid double")
	errBadBoolean    = malformed("redis_bad_boolean", "boolean is neither t nor f")
	errBadNull       = malformed("redis_bad_null", "null carries data")
	errBadBigNumber  = malformed("redis_bad_big_number", "invalid big number")
	errBulkCRLF      = malformed("redis_bulk_crlf", "string payload not followed by CRLF")
	errBulkTooLarge  = malformed("redis_bulk_too_large", "string longer than 512 MiB")
	errCountTooLarge = malformed("redis_count_too_large", "aggregate declares more elements than a peer can send")
	errTooDeep       = malformed("redis_too_deep", "aggregates nested deeper than 32 levels")
	errLineTooLong   = malformed("redis_line_too_long", "line longer than 64 KiB")
	errInlineTooLong = malformed("redis_inline_too_long", "inline command longer than 64 KiB")
	errRequestType   = malformed("redis_request_not_bulk", "command array holds something other than strings")
	errBadRDB        = malformed("redis_bad_rdb", "snapshot transfer without a valid length or end mark")
)

// malformed makes the ParseError of one check.
func malformed(code, detail string) error { return protocols.Malformed(protocols.Redis, code, detail) }

// Counter names, stable: the pipeline adds them up by name.
const (
	// countPendingEvicted: more than Options.MaxPending commands were waiting,
	// and the oldest was given up.
	countPendingEvicted = "redis_pending_evicted"
	// countBudgetEvicted: the agent's memory budget for held messages
	// (Options.Budget) was spent, and the oldest command waiting on this
	// connection was given up to make room.
	countBudgetEvicted = "redis_budget_evicted"
	// countBudgetCut: the budget was spent while a command or reply was
	// read, and it was kept shorter than the body cap.
	countBudgetCut = "redis_budget_cut"
)

var counterNames = protocols.NewCounterNames(countPendingEvicted, countBudgetEvicted, countBudgetCut).WithLoss(
	countPendingEvicted, countBudgetEvicted, countBudgetCut,
)
