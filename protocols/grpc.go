package protocols

// GRPCRecord is the record of one gRPC call (unary or streaming), carried by an
// HTTP/2 stream.
type GRPCRecord struct {
	// Service and Method come from the :path "/pkg.Service/Method".
	Service string `json:"service"`
	Method  string `json:"method"`
	// StatusCode is the grpc-status code; -1 when the call did not finish.
	StatusCode int `json:"status_code"`
	// Status is the code's name ("OK", "NOT_FOUND", ...).
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}
