package query

import (
	"fmt"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"

	"github.com/sondehq/sonde/protocols/wire"
)

// A query is untrusted input evaluated once per stored or live entry, so its
// cost per entry is bounded twice: before it runs, by CEL's static estimate
// of the worst case (a query over that is refused with a sentence that says
// so), and while it runs, by CEL's runtime cost limit, which stops one
// evaluation that the estimate let through but the data made expensive.
// Comprehensions (exists, all, map, filter) may nest only so deep, since each
// level multiplies the cost by a list's length.
const (
	// MaxCost is the most a query may cost per entry, in CEL's cost units
	// (about one per operation, one per ten characters a string function
	// reads): a search of a 1 MiB body is about a tenth of it.
	MaxCost = 1_000_000
	// MaxNesting is how deep comprehensions may nest.
	MaxNesting = 2
	// maxRecursion bounds the parser's recursion (nested parentheses,
	// operators), well below what a 4 KiB query could otherwise reach.
	maxRecursion = 64
	// interruptEvery is how many comprehension iterations pass between
	// checks that the request behind an evaluation is still wanted.
	interruptEvery = 100
	// cheapCost is the worst case per entry below which a query runs
	// without tracking its cost or its request: tracking costs several
	// times what such a query does (a comparison of a few fields), and its
	// worst case is already bounded by the sizes an entry can have.
	cheapCost = 10_000
)

// The largest values an entry can hold, by what the dissectors keep: what a
// query's worst case is estimated over. An entry beyond them (an agent's
// word is not proof) meets the runtime limit instead.
var valueSizes = map[string]struct{ items, itemLen uint64 }{
	"warnings":   {64, 256},    // a dissector's few fixed sentences
	"redis_args": {1024, 4096}, // the values shown per command, 4 KiB each
}

const (
	maxHeaders   = 256     // header fields kept per message
	maxHeaderLen = 8 << 10 // a header's name or value
	maxTextLen   = 64 << 10
	maxBodyLen   = 1 << 20 // a decoded body, the longest string a query can read
)

// sizes tells CEL's cost estimator how large the vocabulary's values can be;
// without it every list and string is assumed unbounded and any
// comprehension would be refused.
type sizes struct{}

func (sizes) EstimateSize(n checker.AstNode) *checker.SizeEstimate {
	path := n.Path()
	if len(path) == 0 || wire.Lookup(path[0]) == nil {
		return nil
	}
	hi := uint64(maxTextLen)
	if v, ok := valueSizes[path[0]]; ok {
		hi = v.items
		if len(path) > 1 {
			hi = v.itemLen
		}
	} else if len(path) > 1 { // request and response: maps of a message's parts
		switch {
		case path[1] == "body":
			hi = maxBodyLen
		case path[1] == "headers" && len(path) == 2:
			hi = maxHeaders
		case path[1] == "headers":
			hi = maxHeaderLen
		}
	}
	return &checker.SizeEstimate{Min: 0, Max: hi}
}

func (sizes) EstimateCallCost(function, overloadID string, target *checker.AstNode, args []checker.AstNode) *checker.CallEstimate {
	return nil
}

// costOptions are the environment's options that bound a query's shape.
func costOptions() []cel.EnvOption {
	return []cel.EnvOption{
		cel.ParserRecursionLimit(maxRecursion),
		cel.ASTValidators(cel.ValidateComprehensionNestingLimit(MaxNesting)),
	}
}

// programOptions are the options of a compiled query; guarded ones stop at
// the cost limit and with their request.
func programOptions(guarded bool) []cel.ProgramOption {
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	if guarded {
		opts = append(opts, cel.CostLimit(MaxCost), cel.InterruptCheckFrequency(interruptEvery))
	}
	return opts
}

// checkCost refuses a query whose worst case per entry is over MaxCost, and
// returns that worst case.
func checkCost(e *cel.Env, ast *cel.Ast) (uint64, error) {
	est, err := e.EstimateCost(ast, sizes{})
	if err != nil {
		return 0, &Error{Message: fmt.Sprintf("the query's cost cannot be bounded: %v", err)}
	}
	if est.Max > MaxCost {
		return 0, &Error{Message: fmt.Sprintf("the query could cost up to %s per entry, over the limit of %d: "+
			"iterate over fewer or smaller values (nested exists/all/map over lists multiply)", costString(est.Max), MaxCost)}
	}
	return est.Max, nil
}

func costString(c uint64) string {
	if c == ^uint64(0) {
		return "an unbounded amount"
	}
	return fmt.Sprint(c)
}
