package wire

import "testing"

func TestIsLoss(t *testing.T) {
	hello := &Hello{Loss: []string{"kafka_gap_in_frame"}}
	tests := []struct {
		name string
		want bool
	}{
		{CaptureLost, true},
		{EmitDropped, true},
		{GapBytes, true},
		{CaptureSeen, false},
		{Entries, false},
		{"kafka_gap_in_frame", true},
		{"amqp_heartbeat", false},
		{ParseErrorPrefix + "http1_bad_chunk_size", false},
	}
	for _, tt := range tests {
		if got := IsLoss(tt.name, hello); got != tt.want {
			t.Errorf("IsLoss(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
	if IsLoss("kafka_gap_in_frame", nil) {
		t.Error("a dissector's counter is loss without a hello that says so")
	}
	seen := map[string]bool{}
	for _, c := range AgentCounters() {
		if seen[c.Name] || c.Doc == "" {
			t.Errorf("counter %q: listed twice or without a doc", c.Name)
		}
		seen[c.Name] = true
	}
}
