package query

import (
	"bytes"

	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"

	"github.com/sondehq/sonde/protocols/wire"
)

// A selective query over stored history spends most of its time proving
// that records do not match. Index records keep string values verbatim, so
// when a query can only be true if a string field equals, starts with, ends
// with or contains a constant, a record that does not contain that constant
// anywhere cannot match, and a byte search rules it out before CEL runs.
// The search is only a filter: records that pass are evaluated in full.

// requiredStrings returns constants that every matching entry's index record
// must contain: from the conjuncts (a && b && ...) at the top of the query
// that compare an indexed string field with a non-empty constant.
func requiredStrings(e celast.Expr) [][]byte {
	if e.Kind() != celast.CallKind {
		return nil
	}
	call := e.AsCall()
	args := call.Args()
	switch call.FunctionName() {
	case "_&&_":
		var out [][]byte
		for _, a := range args {
			out = append(out, requiredStrings(a)...)
		}
		return out
	case "_==_":
		if len(args) != 2 {
			return nil
		}
		for i := range 2 {
			if s, ok := constString(args[i]); ok && verbatimField(args[1-i]) {
				return [][]byte{[]byte(s)}
			}
		}
	case "startsWith", "endsWith", "contains":
		if call.IsMemberFunction() && len(args) == 1 && verbatimField(call.Target()) {
			if s, ok := constString(args[0]); ok {
				return [][]byte{[]byte(s)}
			}
		}
	}
	return nil
}

func constString(e celast.Expr) (string, bool) {
	if e.Kind() != celast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok && s != ""
}

// verbatimField reports whether e reads a value the index record stores as
// its own bytes: a String field, or a name of src or dst.
func verbatimField(e celast.Expr) bool {
	switch e.Kind() {
	case celast.IdentKind:
		f := wire.Lookup(e.AsIdent())
		return f != nil && f.Kind == wire.String
	case celast.SelectKind:
		sel := e.AsSelect()
		if sel.IsTestOnly() || sel.Operand().Kind() != celast.IdentKind {
			return false
		}
		f := wire.Lookup(sel.Operand().AsIdent())
		if f == nil || f.Kind != wire.Endpoint {
			return false
		}
		switch sel.FieldName() {
		case "pod", "namespace", "service", "workload", "node":
			return true
		}
	}
	return false
}

// ruledOut reports whether the record lacks a required constant. Records
// written under another field set may lack the field itself, so they are
// never ruled out here.
func (p *Program) ruledOut(x *wire.Index) bool {
	if !x.Current() {
		return false
	}
	for _, r := range p.required {
		if !bytes.Contains(x.Raw(), r) {
			return true
		}
	}
	return false
}
