package protocols

// RedisRecord is the record of one Redis command and its reply, or of one
// push message (pub/sub, client-side caching) that has no command.
type RedisRecord struct {
	Command string   `json:"command,omitempty"`
	Key     string   `json:"key,omitempty"`
	Args    []string `json:"args,omitempty"`
	Error   string   `json:"error,omitempty"`
}
