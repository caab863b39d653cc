package main

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestRedactFlags(t *testing.T) {
	var f redactFlags
	fl := pflag.NewFlagSet("t", pflag.ContinueOnError)
	f.register(fl)
	if err := fl.Parse([]string{"--redact-name", "X-Tenant", "--redact-name=pin", "--redact-pattern", "ghp_[a-z]+,x"}); err != nil {
		t.Fatal(err)
	}
	p, err := f.policy()
	if err != nil {
		t.Fatal(err)
	}
	// A comma belongs to the pattern: each flag is one pattern.
	if !p.IsSecret("x_tenant") || !p.IsSecret("PIN") || len(p.Patterns) != 1 || p.Patterns[0].String() != "ghp_[a-z]+,x" {
		t.Errorf("policy %+v", p)
	}
	f = redactFlags{patterns: []string{"ok", "a("}}
	if _, err := f.policy(); err == nil || err.Error() != `--redact-pattern "a(" is not a valid Go regular expression: missing closing )` {
		t.Errorf("bad pattern: %v", err)
	}
	if _, err := f.policy(); err != nil && strings.Contains(err.Error(), "\n") {
		t.Error("more than one line")
	}
}
