package har

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sondehq/sonde/protocols"
)

// Log is the top-level HAR object: {"log": Log}.
type Log struct {
	Version string  `json:"version"`
	Creator Creator `json:"creator"`
	Entries []Entry `json:"entries"`
}

// Creator names the tool that wrote the file.
type Creator struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Entry is one exchange.
type Entry struct {
	StartedDateTime string   `json:"startedDateTime"`
	Time            float64  `json:"time"`
	Request         Request  `json:"request"`
	Response        Response `json:"response"`
	Cache           struct{} `json:"cache"`
	Timings         Timings  `json:"timings"`
	ServerIPAddress string   `json:"serverIPAddress,omitempty"`
	Connection      string   `json:"connection,omitempty"`
	Comment         string   `json:"comment,omitempty"`
}

// Request is the request half.
type Request struct {
	Method      string    `json:"method"`
	URL         string    `json:"url"`
	HTTPVersion string    `json:"httpVersion"`
	Cookies     []NV      `json:"cookies"`
	Headers     []NV      `json:"headers"`
	QueryString []NV      `json:"queryString"`
	PostData    *PostData `json:"postData,omitempty"`
	HeadersSize int       `json:"headersSize"`
	BodySize    int64     `json:"bodySize"`
}

// Response is the response half.
type Response struct {
	Status      int     `json:"status"`
	StatusText  string  `json:"statusText"`
	HTTPVersion string  `json:"httpVersion"`
	Cookies     []NV    `json:"cookies"`
	Headers     []NV    `json:"headers"`
	Content     Content `json:"content"`
	RedirectURL string  `json:"redirectURL"`
	HeadersSize int     `json:"headersSize"`
	BodySize    int64   `json:"bodySize"`
}

// NV is a name/value pair (headers, query parameters, cookies).
type NV struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// PostData is a request body.
type PostData struct {
	MimeType string `json:"mimeType"`
	Text     string `json:"text"`
}

// Content is a response body.
type Content struct {
	Size     int64  `json:"size"`
	MimeType string `json:"mimeType"`
	Text     string `json:"text,omitempty"`
	Encoding string `json:"encoding,omitempty"`
}

// Timings splits Entry.Time; Sonde only knows the whole.
type Timings struct {
	Send    float64 `json:"send"`
	Wait    float64 `json:"wait"`
	Receive float64 `json:"receive"`
}

// Writer writes a HAR file ({"log": Log}) one entry at a time, so that an
// export holds one entry in memory however many it writes.
type Writer struct {
	w   io.Writer
	enc *json.Encoder
	n   int
	err error
}

// NewWriter starts a HAR file on w, written by the given version of Sonde.
func NewWriter(w io.Writer, version string) *Writer {
	hw := &Writer{w: w, enc: json.NewEncoder(w)}
	head, _ := json.Marshal(Creator{Name: "sonde", Version: version})
	_, hw.err = fmt.Fprintf(w, `{"log":{"version":"1.2","creator":%s,"entries":[`, head)
	return hw
}

// Add writes e when it is an HTTP exchange with a request (others are
// skipped, and Add reports whether it wrote).
func (w *Writer) Add(e *protocols.Entry) (bool, error) {
	if w.err != nil || e.HTTP == nil || e.HTTP.Request == nil {
		return false, w.err
	}
	if w.n > 0 {
		_, w.err = io.WriteString(w.w, ",")
	}
	if w.err == nil {
		w.err = w.enc.Encode(entry(e))
	}
	w.n++
	return w.err == nil, w.err
}

// Close ends the file.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	_, w.err = io.WriteString(w.w, "]}}\n")
	return w.err
}

func entry(e *protocols.Entry) Entry {
	ms := float64(e.Duration) / float64(time.Millisecond)
	req := e.HTTP.Request
	out := Entry{
		StartedDateTime: e.Start.UTC().Format(time.RFC3339Nano),
		Time:            ms,
		Timings:         Timings{Wait: ms},
		Connection:      strconv.Itoa(int(e.Src.Port)),
		Request: Request{
			Method:      req.Method,
			URL:         requestURL(e, req),
			HTTPVersion: version(req.Version),
			Cookies:     []NV{},
			Headers:     headers(req.Headers),
			QueryString: query(req.Target),
			HeadersSize: -1,
			BodySize:    req.Body.Size,
		},
		Response: Response{Cookies: []NV{}, Headers: []NV{}, HeadersSize: -1, HTTPVersion: version(req.Version)},
	}
	if e.Dst.IP.IsValid() {
		out.ServerIPAddress = e.Dst.IP.String()
	}
	if len(req.Body.Data) > 0 || req.Body.Size > 0 {
		ct, _ := req.Headers.Get("content-type")
		out.Request.PostData = &PostData{MimeType: ct, Text: string(req.Body.Data)}
	}
	var notes []string
	if r := e.HTTP.Response; r != nil {
		ct, _ := r.Headers.Get("content-type")
		out.Response.Status = r.StatusCode
		out.Response.StatusText = r.Reason
		out.Response.HTTPVersion = version(r.Version)
		out.Response.Headers = headers(r.Headers)
		out.Response.BodySize = r.Body.Size
		out.Response.Content = Content{Size: r.Body.Size, MimeType: ct}
		if loc, ok := r.Headers.Get("location"); ok {
			out.Response.RedirectURL = loc
		}
		if utf8.Valid(r.Body.Data) {
			out.Response.Content.Text = string(r.Body.Data)
		} else {
			out.Response.Content.Text = base64.StdEncoding.EncodeToString(r.Body.Data)
			out.Response.Content.Encoding = "base64"
		}
		if r.Body.Truncated {
			notes = append(notes, "response body truncated")
		}
	} else {
		notes = append(notes, "no response captured")
	}
	if req.Body.Truncated {
		notes = append(notes, "request body truncated")
	}
	if e.Gap {
		notes = append(notes, "bytes missing from the capture")
	}
	out.Comment = strings.Join(append(notes, e.Warnings...), "; ")
	return out
}

func version(v string) string {
	if v == "" {
		return "HTTP/1.1"
	}
	return v
}

func requestURL(e *protocols.Entry, r *protocols.HTTPRequest) string {
	if strings.Contains(r.Target, "://") {
		return r.Target
	}
	scheme := r.Scheme
	if scheme == "" {
		scheme = "http"
	}
	host := r.Authority
	if host == "" && e.Dst.IP.IsValid() {
		host = net.JoinHostPort(e.Dst.IP.String(), strconv.Itoa(int(e.Dst.Port)))
	}
	target := r.Target
	if !strings.HasPrefix(target, "/") {
		target = "/" + target
	}
	return scheme + "://" + host + target
}

func headers(h protocols.Headers) []NV {
	out := make([]NV, 0, len(h))
	for _, f := range h {
		out = append(out, NV{Name: f.Name, Value: f.Value})
	}
	return out
}

func query(target string) []NV {
	out := []NV{}
	_, q, ok := strings.Cut(target, "?")
	if !ok {
		return out
	}
	q, _, _ = strings.Cut(q, "#")
	for _, kv := range strings.Split(q, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if uk, err := url.QueryUnescape(k); err == nil {
			k = uk
		}
		if uv, err := url.QueryUnescape(v); err == nil {
			v = uv
		}
		out = append(out, NV{Name: k, Value: v})
	}
	return out
}
