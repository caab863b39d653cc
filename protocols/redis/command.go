package redis

import (
	"bytes"
	"strconv"

	"github.com/sondehq/sonde/protocols"
)

// command is what the connection's state follows of a command.
type command struct {
	name string   // upper case, without the subcommand: "CLIENT"
	sub  string   // upper case subcommand of a container command: "REPLY"
	argv [][]byte // kept arguments, argv[0] being the name
	cut  []bool   // whether each kept argument is complete
	argc int64    // arguments sent, name included
}

// arg is argument i upper-cased, or "".
func (c *command) arg(i int) string {
	if i >= len(c.argv) || len(c.argv[i]) > nameLimit {
		return ""
	}
	return string(upperASCII(nil, c.argv[i]))
}

// parseCommand reads a command's name and arguments and fills in an entry
// for it, secrets redacted when opts say so.
func parseCommand(m *message, opts *protocols.Options) (*command, *protocols.Entry) {
	v := m.v
	cmd := &command{argc: v.n}
	for _, e := range v.elems {
		cmd.argv = append(cmd.argv, e.text)
		cmd.cut = append(cmd.cut, e.cut)
	}
	rec := &protocols.RedisRecord{Inline: v.inline}
	e := &protocols.Entry{Protocol: protocols.Redis, Start: m.start, RequestSize: m.wire, Redis: rec}
	if v.unbalanced {
		e.Warn("unbalanced quotes: Redis refuses this inline command and closes the connection")
	}
	if len(cmd.argv) == 0 {
		// The budget (Options.BodyCap) kept nothing, not even the name.
		rec.ArgsTruncated = true
		return cmd, e
	}
	cmd.name = cmd.arg(0)
	shown, _ := display(upperASCII(nil, cmd.argv[0]), nameLimit)
	spec := commands[cmd.name]
	first := 1
	if spec.container && len(cmd.argv) > 1 {
		cmd.sub = cmd.arg(1)
		sub, _ := display(upperASCII(nil, cmd.argv[1]), nameLimit)
		shown += " " + sub
		spec = commands[cmd.name+" "+cmd.sub]
		first = 2
	}
	rec.Command = shown
	args := cmd.argv[first:]
	if opts.Redact && redactArgs(cmd.name, cmd.sub, args, opts.Secrets) {
		e.Redacted = true
	}
	rec.ArgCount = int(cmd.argc) - first
	rec.ArgsTruncated = v.cut
	for i, a := range args {
		if i == maxArgs {
			rec.ArgsTruncated = true
			break
		}
		s, cut := display(a, argCap)
		if cmd.cut[first+i] && !cut && s != protocols.Redacted {
			s, cut = s+"...", true
		}
		rec.Args = append(rec.Args, s)
		rec.ArgsTruncated = rec.ArgsTruncated || cut
	}
	if k := firstKey(spec, cmd.argv); k > 0 {
		s, _ := display(cmd.argv[k], argCap)
		if spec.channel {
			rec.Channel = s
		} else {
			rec.Key = s
		}
		e.Summary.Target = s
	}
	e.Summary.Method = rec.Command
	return cmd, e
}

// firstKey is the argv index of the first key (or channel), or -1.
func firstKey(spec keySpec, argv [][]byte) int {
	i := int(spec.first)
	if i == 0 {
		return -1
	}
	if spec.keyword != "" {
		found := -1
		for j := i; j < len(argv); j++ {
			if bytes.EqualFold(argv[j], []byte(spec.keyword)) {
				found = j
				break
			}
		}
		if found < 0 {
			return -1
		}
		i = found + 1
	}
	if spec.keynum {
		if i >= len(argv) {
			return -1
		}
		if n, err := strconv.ParseInt(string(argv[i]), 10, 64); err != nil || n <= 0 {
			return -1
		}
		i++
	}
	if i >= len(argv) {
		return -1
	}
	return i
}

// secretConfig are the configuration parameters whose values are secrets
// although their names do not say so to the general rule.
var secretConfig = []string{"requirepass", "masterauth"}

// isSecretConfig says whether a configuration parameter's value is a
// secret: secretConfig, the passphrases of TLS keys (tls-key-file-pass,
// tls-client-key-file-pass and any later tls-*-pass), and what the policy
// calls secret.
func isSecretConfig(name []byte, p protocols.SecretPolicy) bool {
	for _, s := range secretConfig {
		if bytes.EqualFold(name, []byte(s)) {
			return true
		}
	}
	lower := bytes.ToLower(name)
	if bytes.HasPrefix(lower, []byte("tls-")) && bytes.HasSuffix(lower, []byte("-pass")) {
		return true
	}
	return p.IsSecret(string(name))
}

// redactConfigReply replaces, in the reply to CONFIG GET (an array, or a
// RESP3 map, of parameter names each followed by its value), the values of
// secret parameters, and reports whether it replaced any. A pattern such as
// "CONFIG GET *" returns them all.
func redactConfigReply(v *value, p protocols.SecretPolicy) bool {
	if v.kind != '*' && v.kind != '%' {
		return false
	}
	redacted := false
	for i := 0; i+1 < len(v.elems); i += 2 {
		val := v.elems[i+1]
		if !isSecretConfig(v.elems[i].text, p) || val.isNull() || val.isAggregate() {
			continue
		}
		if string(val.text) == protocols.Redacted && !val.cut {
			continue
		}
		val.text, val.cut = []byte(protocols.Redacted), false
		val.size = int64(len(val.text))
		redacted = true
	}
	return redacted
}

// redactArgs replaces the secrets among a command's arguments (those after
// the name and subcommand) with protocols.Redacted, as Redis does in its
// own slow log and MONITOR output, and reports whether it replaced any.
func redactArgs(name, sub string, args [][]byte, p protocols.SecretPolicy) bool {
	redacted := false
	hide := func(i int) {
		if i < len(args) {
			args[i] = []byte(protocols.Redacted)
			redacted = true
		}
	}
	switch {
	case name == "AUTH":
		// AUTH password | AUTH username password
		for i := range args {
			hide(i)
		}
	case name == "HELLO":
		// HELLO [protover [AUTH username password] [SETNAME clientname]]
		for i := 0; i < len(args); i++ {
			if bytes.EqualFold(args[i], []byte("AUTH")) {
				hide(i + 1)
				hide(i + 2)
				i += 2
			}
		}
	case name == "MIGRATE":
		// MIGRATE ... [AUTH password | AUTH2 username password] [KEYS key ...]
		for i := 0; i < len(args); i++ {
			switch {
			case bytes.EqualFold(args[i], []byte("AUTH")):
				hide(i + 1)
				i++
			case bytes.EqualFold(args[i], []byte("AUTH2")):
				hide(i + 1)
				hide(i + 2)
				i += 2
			}
		}
	case name == "ACL" && sub == "SETUSER":
		// ACL SETUSER username rule...: ">pass", "<pass", "#hash", "!hash".
		for i := 1; i < len(args); i++ {
			if len(args[i]) > 0 && bytes.IndexByte([]byte("><#!"), args[i][0]) >= 0 {
				hide(i)
			}
		}
	case name == "CONFIG" && sub == "SET":
		// CONFIG SET parameter value [parameter value ...]
		for i := 0; i+1 < len(args); i += 2 {
			if isSecretConfig(args[i], p) {
				hide(i + 1)
			}
		}
	}
	return redacted
}
