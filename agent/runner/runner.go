package runner

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/sondehq/sonde/agent/capture/live"
	"github.com/sondehq/sonde/agent/emit"
	"github.com/sondehq/sonde/agent/packet"
	"github.com/sondehq/sonde/agent/pipeline"
	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/all"
)

const (
	// ExpireEvery is how often, in wall-clock time, a live capture looks
	// for idle connections: the pipeline's own period, for when no
	// segment arrives to advance capture time.
	ExpireEvery = pipeline.ExpireEvery
	// FlushTimeout bounds the wait at the end of Run for the hub to
	// acknowledge the last entries.
	FlushTimeout = 5 * time.Second
	// jsonBuffer is the JSON sink's buffer, flushed every ExpireEvery.
	jsonBuffer = 64 << 10
)

var (
	// ErrNoSource says a Config names neither a live capture nor a file,
	// or both.
	ErrNoSource = errors.New("say what to capture: a live capture or a capture file, one of them")
	// ErrNoSink says a Config names nowhere for the entries to go.
	ErrNoSink = errors.New("say where entries go: the hub, a JSON writer or a function")
	// ErrNoToken says a Hub lacks its ingest token.
	ErrNoToken = errors.New("sending to a hub needs its ingest token")

	errRanTwice = errors.New("a runner runs only once")
)

// Hub is where the emit sink sends entries.
type Hub struct {
	// URL is the hub's address ("http://sonde-hub:8898") or its ingest URL.
	URL string
	// Token is the bearer token the hub checks.
	Token []byte
	// CAFile, when set, is a PEM file of the CA certificates the hub's
	// certificate must chain to (see emit.CAFileTLS); the URL is then https.
	CAFile string
}

// Config configures Open. Exactly one of Live and File is set, and at
// least one of Hub, JSON and Emit.
type Config struct {
	// Live captures the interfaces and pods it selects.
	Live *live.Config
	// File is a pcap or pcapng file to read instead.
	File string

	// Node is stamped on entries and prefixes their IDs.
	Node string
	// Version is reported to the hub.
	Version string
	// KeepSecrets turns off the redaction of credentials, cookies and
	// tokens (on by default).
	KeepSecrets bool
	// Secrets extends what is redacted (see protocols.SecretPolicy).
	Secrets protocols.SecretPolicy

	// Hub, when set, receives the entries over the ingest websocket.
	Hub *Hub
	// JSON, when set, receives one JSON entry per line, buffered and
	// flushed every ExpireEvery and at the end.
	JSON io.Writer
	// Emit, when set, is called with every entry, under the pipeline's
	// lock; it must not block and owns nothing it is handed (the other
	// sinks read the entry after it).
	Emit protocols.EmitFunc

	// Log receives the capture's and the sender's structured log; nil
	// discards.
	Log *slog.Logger
}

// Stats are a runner's counters as the parts keep them.
type Stats struct {
	Capture  live.Stats // zero for a file
	Pipeline pipeline.Stats
	Emit     emit.Stats // zero without a hub
}

// Runner is an opened source with its pipeline and sinks. See the package
// doc for who may call what.
type Runner struct {
	cfg    Config
	log    *slog.Logger
	src    live.Source // nil for a file
	source string      // "ebpf", "afpacket" or "pcap"
	pcfg   pipeline.Config
	p      *pipeline.Shared // nil for a file
	sender *emit.Sender
	out    *bufio.Writer
	outMu  sync.Mutex
	enc    *json.Encoder

	mu        sync.Mutex
	fileStats pipeline.Stats // a file's, once read
	ran       bool
}

// Run opens cfg's source and runs it until ctx ends (or the file ends).
func Run(ctx context.Context, cfg Config) error {
	r, err := Open(cfg)
	if err != nil {
		return err
	}
	return r.Run(ctx)
}

// Open checks cfg, starts its source and builds the pipeline and sinks.
// A live source is attached from then on; call Run.
func Open(cfg Config) (*Runner, error) {
	if (cfg.Live == nil) == (cfg.File == "") {
		return nil, ErrNoSource
	}
	if cfg.Hub == nil && cfg.JSON == nil && cfg.Emit == nil {
		return nil, ErrNoSink
	}
	if cfg.Hub != nil && len(cfg.Hub.Token) == 0 {
		return nil, ErrNoToken
	}
	r := &Runner{cfg: cfg, log: cfg.Log}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Live != nil {
		lc := *cfg.Live
		if lc.Log == nil {
			lc.Log = r.log
		}
		src, err := live.Open(lc)
		if err != nil {
			return nil, fmt.Errorf("starting the capture: %w", err)
		}
		r.src, r.source = src, src.Stats().Source
	} else {
		r.source = "pcap"
	}
	if cfg.JSON != nil {
		r.out = bufio.NewWriterSize(cfg.JSON, jsonBuffer)
		r.enc = json.NewEncoder(r.out)
		r.enc.SetEscapeHTML(false)
	}
	dissectors := all.Dissectors()
	if cfg.Hub != nil {
		ec := emit.Config{HubURL: cfg.Hub.URL, Token: cfg.Hub.Token, Node: cfg.Node,
			Version: cfg.Version, Source: r.source, Logger: r.log, Counters: r.Counters,
			Loss: protocols.LossCounterNames(dissectors)}
		if cfg.Hub.CAFile != "" {
			ec.Dialer = emit.NewDialer(emit.CAFileTLS(cfg.Hub.CAFile))
		}
		r.sender = emit.New(ec)
	}
	r.pcfg = pipeline.DefaultConfig(dissectors)
	r.pcfg.Options.Redact = !cfg.KeepSecrets
	r.pcfg.Options.Secrets = cfg.Secrets
	r.pcfg.Node, r.pcfg.Source = cfg.Node, r.source
	if cfg.Node != "" {
		r.pcfg.IDPrefix = cfg.Node + "-"
	}
	if r.src != nil {
		r.p = pipeline.NewShared(pipeline.New(r.pcfg, r.emit))
	}
	// What the agent's memory is bounded by, for whoever sizes its limit
	// (deploy/ gives the DaemonSet 512 MiB for these and the Go runtime).
	sendBuffer := 0
	if r.sender != nil {
		sendBuffer = emit.DefaultBufferBytes
	}
	r.log.Info("memory bounds", "reassembly_bytes", r.pcfg.Assembly.MaxBufferedTotal,
		"held_messages_bytes", r.pcfg.Options.Budget.Limit(), "send_buffer_bytes", sendBuffer)
	return r, nil
}

// Source is the live capture, for SetPods and its metrics; nil for a file.
func (r *Runner) Source() live.Source { return r.src }

// SourceName says what captures: "ebpf", "afpacket" or "pcap".
func (r *Runner) SourceName() string { return r.source }

// Stats returns the counters of the source, the pipeline and the sender.
func (r *Runner) Stats() Stats {
	var st Stats
	if r.src != nil {
		st.Capture = r.src.Stats()
		st.Pipeline = r.p.Stats()
	} else {
		r.mu.Lock()
		st.Pipeline = r.fileStats
		r.mu.Unlock()
	}
	if r.sender != nil {
		st.Emit = r.sender.Stats()
	}
	return st
}

// Counters flattens the source's and the pipeline's counters under their
// stable names (protocols/wire), as the hub and the metrics show them.
// The sender adds its own when it reports them.
func (r *Runner) Counters() map[string]uint64 {
	st := r.Stats()
	return Counters(st.Capture, st.Pipeline)
}

// emit hands one entry to every sink; it runs under the pipeline's lock.
func (r *Runner) emit(e *protocols.Entry) {
	if r.cfg.Emit != nil {
		r.cfg.Emit(e)
	}
	if r.enc != nil {
		r.outMu.Lock()
		r.enc.Encode(e)
		r.outMu.Unlock()
	}
	if r.sender != nil {
		r.sender.Send(e)
	}
}

func (r *Runner) flushJSON() {
	if r.out == nil {
		return
	}
	r.outMu.Lock()
	r.out.Flush()
	r.outMu.Unlock()
}

// Run captures until ctx ends, or reads the file to its end, then closes
// every connection and flushes the sinks. A live capture ended by ctx
// returns nil; a capture that failed returns why, after the flush.
func (r *Runner) Run(ctx context.Context) error {
	r.mu.Lock()
	ran := r.ran
	r.ran = true
	r.mu.Unlock()
	if ran {
		return errRanTwice
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The sender outlives the capture: the last entries, made when the
	// capture closes its connections, still go to the hub.
	sendCtx, stopSending := context.WithCancel(context.Background())
	defer stopSending()
	var wg sync.WaitGroup
	if r.sender != nil {
		wg.Go(func() { r.sender.Run(sendCtx) })
	}
	var runErr error
	if r.src != nil {
		wg.Go(func() { r.tick(ctx) })
		runErr = r.src.Run(ctx, func(f *live.Frame) {
			r.p.Frame(f.Data, f.WireLen, f.Time, packet.LinkEthernet)
		})
		r.p.Close(time.Now())
		if errors.Is(runErr, context.Canceled) {
			runErr = nil
		}
		if runErr != nil {
			runErr = fmt.Errorf("capture: %w", runErr)
		}
	} else {
		runErr = r.readFile()
	}
	if r.sender != nil {
		flushCtx, done := context.WithTimeout(context.Background(), FlushTimeout)
		if err := r.sender.Flush(flushCtx); err != nil {
			r.log.Warn("entries not acknowledged by the hub at exit", "err", err)
		}
		done()
	}
	stopSending()
	cancel()
	wg.Wait()
	r.flushJSON()
	return runErr
}

// tick expires idle connections and flushes the JSON sink until ctx ends.
func (r *Runner) tick(ctx context.Context) {
	t := time.NewTicker(ExpireEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			r.p.Expire(now)
			r.flushJSON()
		}
	}
}

// readFile runs the file through pipeline.RunFile, which expires
// connections in the capture's time and closes them at its last packet.
func (r *Runner) readFile() error {
	st, err := pipeline.RunFile(r.cfg.File, r.pcfg, r.emit)
	r.mu.Lock()
	r.fileStats = st.Pipeline
	r.mu.Unlock()
	if err != nil {
		return fmt.Errorf("reading %s: %w", r.cfg.File, err)
	}
	return nil
}
