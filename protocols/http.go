package protocols

// HTTPRecord is the record of an HTTP/1.x or HTTP/2 exchange. Either half may
// be nil when it was not seen (see Entry.Unmatched).
type HTTPRecord struct {
	Request  *HTTPRequest  `json:"request,omitempty"`
	Response *HTTPResponse `json:"response,omitempty"`
	// Upgrade names the protocol the connection switched to after this
	// exchange ("h2c", "websocket"), when it did.
	Upgrade string `json:"upgrade,omitempty"`
	// StreamID is the HTTP/2 stream the exchange travelled on; 0 for HTTP/1.
	StreamID uint32 `json:"stream_id,omitempty"`
	// ResetCode is the HTTP/2 RST_STREAM error code name when the stream was reset.
	ResetCode string `json:"reset_code,omitempty"`
}

// HTTPRequest is one request as it was seen, secrets redacted.
type HTTPRequest struct {
	Method string `json:"method"`
	// Target is the request target as sent: origin form ("/a?b"), absolute
	// form, authority form (CONNECT) or "*".
	Target string `json:"target"`
	// Path is the target's path without the query.
	Path    string `json:"path"`
	Version string `json:"version"`
	// Scheme and Authority come from HTTP/2 pseudo-headers, or from the Host
	// header and the target for HTTP/1.
	Scheme    string  `json:"scheme,omitempty"`
	Authority string  `json:"authority,omitempty"`
	Headers   Headers `json:"headers"`
	Trailers  Headers `json:"trailers,omitempty"`
	Body      Body    `json:"body"`
}

// HTTPResponse is one response as it was seen, secrets redacted.
type HTTPResponse struct {
	Version    string  `json:"version"`
	StatusCode int     `json:"status_code"`
	Reason     string  `json:"reason,omitempty"`
	Headers    Headers `json:"headers"`
	Trailers   Headers `json:"trailers,omitempty"`
	Body       Body    `json:"body"`
	// Informational lists 1xx responses (100 Continue, 103 Early Hints) that
	// came before the final one.
	Informational []int `json:"informational,omitempty"`
}
