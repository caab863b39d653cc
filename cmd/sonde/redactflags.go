package main

import (
	"errors"
	"fmt"
	"regexp/syntax"

	"github.com/spf13/pflag"

	"github.com/sondehq/sonde/protocols"
)

// redactFlags extend what the agent and read redact: secret names beyond
// the built-in rule, and patterns matched against values.
type redactFlags struct {
	names    []string
	patterns []string
}

func (f *redactFlags) register(fl *pflag.FlagSet) {
	fl.StringArrayVar(&f.names, "redact-name", nil, "also redact the values of headers, query keys, body fields and metadata of this name (repeatable; compared without case, '-', '_' and '.')")
	fl.StringArrayVar(&f.patterns, "redact-pattern", nil, "also redact what this Go regular expression matches in header values, query values and bodies (repeatable)")
}

// policy builds the policy the flags say; a pattern that does not compile
// is one sentence naming the flag and what is wrong with it.
func (f *redactFlags) policy() (protocols.SecretPolicy, error) {
	p, err := protocols.NewSecretPolicy(f.names, f.patterns)
	var se *syntax.Error
	if errors.As(err, &se) {
		return p, fmt.Errorf("--redact-pattern %q is not a valid Go regular expression: %s", se.Expr, se.Code)
	}
	return p, err
}
