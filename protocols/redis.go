package protocols

// RedisRecord is the record of one Redis command and its reply, or of one
// push message (pub/sub, client-side caching, MONITOR) that has no command.
//
// Strings that are not printable UTF-8 (binary keys, arguments and values)
// are shown Go-quoted ("\x00\x01") so that they stay readable; everything
// else is shown as sent.
type RedisRecord struct {
	// Command is the command name in upper case, followed by the subcommand
	// for container commands ("GET", "CLIENT SETINFO"). Empty for a reply
	// whose command was not seen and for push messages.
	Command string `json:"command,omitempty"`
	// Key is the command's first key, when it has one.
	Key string `json:"key,omitempty"`
	// Args are the arguments after the command name (and subcommand), each
	// cut to a cap, at most a cap of them. ArgCount counts them all;
	// ArgsTruncated says that Args shows less than was sent.
	Args          []string `json:"args,omitempty"`
	ArgCount      int      `json:"arg_count,omitempty"`
	ArgsTruncated bool     `json:"args_truncated,omitempty"`
	// Inline is true for a command sent as a line of text ("PING\r\n")
	// rather than as a RESP array.
	Inline bool `json:"inline,omitempty"`
	// Queued is true for a command sent inside MULTI that the server queued
	// (its reply was QUEUED; the result is in the reply to EXEC).
	Queued bool `json:"queued,omitempty"`
	// NoReply is true for a command the server does not answer by design
	// (CLIENT REPLY OFF and SKIP, and the commands they silence).
	NoReply bool `json:"no_reply,omitempty"`

	// ReplyType is the RESP type of the reply: simple_string, error,
	// integer, bulk_string, array, null, boolean, double, big_number,
	// bulk_error, verbatim_string, map, set or push; rdb for the snapshot a
	// master sends its replica.
	ReplyType string `json:"reply_type,omitempty"`
	// Reply is the reply rendered on one line ("OK", "42", "\"value\"",
	// "[\"a\", 1]", "{\"k\": \"v\"}", "(nil)"), cut to a cap; empty for errors.
	Reply string `json:"reply,omitempty"`
	// ReplyCount is the number of elements of an aggregate reply (of pairs
	// for a map), including those left out of Reply.
	ReplyCount int64 `json:"reply_count,omitempty"`
	// ReplyTruncated says that Reply shows less than was sent.
	ReplyTruncated bool `json:"reply_truncated,omitempty"`
	// Attributes are the RESP3 attributes sent before the reply, rendered.
	Attributes string `json:"attributes,omitempty"`
	// Error is the text of an error reply ("WRONGTYPE Operation against a
	// key holding the wrong kind of value").
	Error string `json:"error,omitempty"`

	// PushKind is set on one-way messages: "message", "pmessage",
	// "smessage", "invalidate", "monitor", the kind a RESP3 push names, or,
	// on a replication link, "rdb" for the snapshot and "replication" for
	// each command the master streams (Command, Key and Args are set).
	PushKind string `json:"push_kind,omitempty"`
	// Channel is the pub/sub channel of a message, or the first channel of a
	// SUBSCRIBE, PUBLISH and the like; Pattern the pattern a pmessage matched.
	Channel string `json:"channel,omitempty"`
	Pattern string `json:"pattern,omitempty"`
}
