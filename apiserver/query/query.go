package query

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/wire"
)

// MaxLength is the longest query accepted, in bytes.
const MaxLength = 4096

var (
	// ErrNotBool: a query must evaluate to true or false.
	ErrNotBool = errors.New("the query must be a condition (true or false)")
)

// Error is a query that does not compile: Message says why in CEL's words,
// Position is the 0-based character offset where it went wrong.
type Error struct {
	Message  string
	Position int
}

func (e *Error) Error() string { return fmt.Sprintf("at character %d: %s", e.Position, e.Message) }

// env is the CEL environment of the vocabulary, built on first use so that
// merely linking the package costs nothing.
var env = sync.OnceValue(func() *cel.Env {
	opts := append(costOptions(),
		cel.ParserExpressionSizeLimit(MaxLength),
		cel.Function("now", cel.Overload("now_timestamp", nil, cel.TimestampType,
			cel.FunctionBinding(func(...ref.Val) ref.Val { return types.Timestamp{Time: time.Now()} }))),
	)
	for _, f := range wire.Table() {
		opts = append(opts, cel.Variable(f.Name, celType(f.Kind)))
	}
	e, err := cel.NewEnv(opts...)
	if err != nil {
		panic(fmt.Sprintf("query vocabulary does not compile: %v", err))
	}
	return e
})

func celType(k wire.Kind) *cel.Type {
	switch k {
	case wire.Bool:
		return cel.BoolType
	case wire.Int:
		return cel.IntType
	case wire.String:
		return cel.StringType
	case wire.Duration:
		return cel.DurationType
	case wire.Time:
		return cel.TimestampType
	case wire.List:
		return cel.ListType(cel.StringType)
	}
	return cel.MapType(cel.StringType, cel.DynType)
}

// Program is a compiled query. A nil *Program matches everything. It is safe
// for concurrent use.
type Program struct {
	src string
	prg cel.Program
	// guarded: the query may cost enough per entry to be worth tracking
	// its cost and its request while it runs (see cost.go).
	guarded bool
	// full: the query reads a field that index records do not keep.
	full bool
	// required are constants every matching index record contains.
	required [][]byte
	// allow, when set, must accept a record before the query is asked
	// (see Restrict); prg is nil when there is no query beside it.
	allow func(*wire.Index) bool
}

// Restrict returns a program matching what p matches (every entry, when p
// is nil) among the records allow accepts: a reader's access, asked of
// each record before the query, so that a query never runs over an entry
// its reader may not see.
func Restrict(p *Program, allow func(*wire.Index) bool) *Program {
	r := &Program{allow: allow}
	if p != nil {
		*r = *p
		r.allow = allow
	}
	return r
}

// Compile compiles a query once; evaluate it per entry with MatchIndex.
// The empty query compiles to nil, which matches everything.
func Compile(q string) (*Program, error) {
	if strings.TrimSpace(q) == "" {
		return nil, nil
	}
	if len(q) > MaxLength {
		return nil, &Error{Message: fmt.Sprintf("the query is longer than %d bytes", MaxLength), Position: MaxLength}
	}
	ast, iss := env().Compile(q)
	if iss.Err() != nil {
		return nil, issueError(q, iss)
	}
	if ast.OutputType() != cel.BoolType {
		return nil, &Error{Message: fmt.Sprintf("%v, not %s", ErrNotBool, ast.OutputType()), Position: 0}
	}
	worst, err := checkCost(env(), ast)
	if err != nil {
		return nil, err
	}
	guarded := worst > cheapCost
	prg, err := env().Program(ast, programOptions(guarded)...)
	if err != nil {
		return nil, &Error{Message: err.Error()}
	}
	p := &Program{src: q, prg: prg, guarded: guarded, required: requiredStrings(ast.NativeRep().Expr())}
	for _, r := range ast.NativeRep().ReferenceMap() {
		if f := wire.Lookup(r.Name); f != nil && !f.Kind.Indexed() {
			p.full = true
		}
	}
	return p, nil
}

func issueError(q string, iss *cel.Issues) error {
	errs := iss.Errors()
	if len(errs) == 0 {
		return &Error{Message: iss.Err().Error()}
	}
	e := errs[0]
	pos := 0
	if off, ok := common.NewTextSource(q).LocationOffset(e.Location); ok {
		pos = int(off)
	}
	pos = min(max(pos, 0), utf8.RuneCountInString(q))
	return &Error{Message: e.Message, Position: pos}
}

// String returns the query's text.
func (p *Program) String() string {
	if p == nil {
		return ""
	}
	return p.src
}

// NeedsEntry reports whether the query reads fields that only the whole
// entry has (headers, bodies, lists), so that MatchIndex decodes entries.
func (p *Program) NeedsEntry() bool { return p != nil && p.full }

// MatchIndex evaluates the query against an index record. entry decodes the
// whole entry; it is called at most once, and only when the record cannot
// answer (NeedsEntry, or a record older than a field). An evaluation error
// (a missing map key, say) is no match.
func (p *Program) MatchIndex(x *wire.Index, entry func() *protocols.Entry) bool {
	return p.MatchIndexContext(context.Background(), x, entry)
}

// MatchIndexContext is MatchIndex for a request that may end first: an
// evaluation still running when ctx ends stops and is no match.
func (p *Program) MatchIndexContext(ctx context.Context, x *wire.Index, entry func() *protocols.Entry) bool {
	if p == nil {
		return true
	}
	if p.allow != nil && !p.allow(x) {
		return false
	}
	if p.prg == nil {
		return true
	}
	if p.ruledOut(x) {
		return false
	}
	a := &indexActivation{x: x, entry: entry}
	return p.eval(ctx, a)
}

// eval runs the program; an error (a missing key, the cost limit reached,
// ctx ended) is no match.
func (p *Program) eval(ctx context.Context, a interpreter.Activation) bool {
	var out ref.Val
	var err error
	if p.guarded {
		out, _, err = p.prg.ContextEval(ctx, a)
	} else {
		out, _, err = p.prg.Eval(a)
	}
	if err != nil {
		return false
	}
	b, ok := out.(types.Bool)
	return ok && bool(b)
}

type entryActivation struct{ e *protocols.Entry }

func (a *entryActivation) ResolveName(name string) (any, bool) {
	f := wire.Lookup(name)
	if f == nil || a.e == nil {
		return nil, false
	}
	return celValue(f.Kind, f.Get(a.e)), true
}

func (a *entryActivation) Parent() interpreter.Activation { return nil }

type indexActivation struct {
	x       *wire.Index
	entry   func() *protocols.Entry
	decoded *entryActivation
}

func (a *indexActivation) ResolveName(name string) (any, bool) {
	f := wire.Lookup(name)
	if f == nil {
		return nil, false
	}
	if f.Kind.Indexed() {
		if v, ok := a.x.Lookup(f); ok {
			return celValue(f.Kind, v), true
		}
	}
	if a.decoded == nil {
		a.decoded = &entryActivation{e: a.entry()}
	}
	return a.decoded.ResolveName(name)
}

func (a *indexActivation) Parent() interpreter.Activation { return nil }

// celValue converts a field's Go value to CEL without reflection where the
// kind is known.
func celValue(k wire.Kind, v any) any {
	switch k {
	case wire.Bool:
		return types.Bool(v.(bool))
	case wire.Int:
		return types.Int(v.(int64))
	case wire.String:
		return types.String(v.(string))
	case wire.Duration:
		return types.Duration{Duration: v.(time.Duration)}
	case wire.Time:
		return types.Timestamp{Time: v.(time.Time)}
	case wire.Endpoint:
		return endpointVal{v.(protocols.Endpoint)}
	}
	return v
}
