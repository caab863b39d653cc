package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sondehq/sonde/agent/capture/pcapfile"
	"github.com/sondehq/sonde/agent/pipeline"
	"github.com/sondehq/sonde/apiserver"
	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/all"
)

func newReadCmd() *cobra.Command {
	var (
		asJSON   bool
		noRedact bool
		bodyCap  int
		serve    bool
		hub      hubFlags
		redact   redactFlags
	)
	cmd := &cobra.Command{
		Use:   "read FILE",
		Short: "Dissect a pcap or pcapng file and print its requests and responses",
		Long: `read runs a capture file through the same reassembly and dissectors the live
agent uses, and prints one line per exchange. At the end it prints on stderr what
it read and every counter of data it could not read.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if bodyCap < 0 {
				return fmt.Errorf("--body-cap must be zero or more, not %d", bodyCap)
			}
			cfg := pipeline.DefaultConfig(all.Dissectors())
			cfg.Options.Redact = !noRedact
			var err error
			if cfg.Options.Secrets, err = redact.policy(); err != nil {
				return err
			}
			cfg.Options.BodyCap = bodyCap
			if serve {
				return readAndServe(cmd, args[0], cfg, &hub)
			}
			out := bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
			var emit protocols.EmitFunc
			var table *tableWriter
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetEscapeHTML(false)
				emit = func(e *protocols.Entry) { enc.Encode(e) }
			} else {
				table = newTableWriter(out)
				emit = table.row
			}
			st, err := runFile(cmd.Context(), args[0], cfg, emit)
			if errors.Is(err, errStopped) {
				out.Flush()
				return err
			}
			if table != nil {
				table.flush()
			}
			out.Flush()
			if err != nil && st.Capture.Packets == 0 && !errors.Is(err, pcapfile.ErrTruncated) {
				return readError(args[0], err)
			}
			printStats(cmd.ErrOrStderr(), st)
			if err != nil {
				return readError(args[0], err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON entry per line")
	cmd.Flags().BoolVar(&noRedact, "no-redact", false, "show credentials, cookies and tokens instead of [REDACTED]")
	redact.register(cmd.Flags())
	cmd.Flags().IntVar(&bodyCap, "body-cap", protocols.DefaultOptions().BodyCap, "bytes of each body to keep")
	cmd.Flags().BoolVar(&serve, "serve", false, "load the entries into a hub and serve the UI until Ctrl-C")
	hub.register(cmd, "127.0.0.1:8899")
	return cmd
}

// readAndServe loads a capture into an in-process hub with a temporary store
// and serves it.
func readAndServe(cmd *cobra.Command, path string, cfg pipeline.Config, f *hubFlags) error {
	hubCfg, err := f.hubConfig(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	// The hub serves on this machine: only the holder of the URL it prints
	// may read the capture (see apiserver.Session).
	token, err := apiserver.NewSessionToken()
	if err != nil {
		return err
	}
	hubCfg.Session = &apiserver.Session{Token: token}
	load := func(srv *apiserver.Server) error {
		var batch []*protocols.Entry
		var ingestErr error
		st, err := pipeline.RunFile(path, cfg, func(e *protocols.Entry) {
			if batch = append(batch, e); len(batch) == 1000 && ingestErr == nil {
				ingestErr = srv.Ingest(batch...)
				batch = batch[:0]
			}
		})
		if err != nil && !errors.Is(err, pcapfile.ErrTruncated) {
			return readError(path, err)
		}
		if ingestErr == nil {
			ingestErr = srv.Ingest(batch...)
		}
		if ingestErr != nil {
			return fmt.Errorf("loading entries into the hub: %w", ingestErr)
		}
		printStats(cmd.ErrOrStderr(), st)
		if err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "sonde: %v\n", readError(path, err))
		}
		return nil
	}
	return serveHub(cmd.Context(), hubCfg, f.listen, load, cmd.ErrOrStderr())
}

// errStopped: a signal ended the read before the capture did.
var errStopped = errors.New("stopped before the end of the capture")

// runFile is pipeline.RunFile that returns when ctx ends (Ctrl-C, SIGTERM),
// also while the file blocks: a FIFO with no writer blocks in open(2)
// itself, where nothing can interrupt the read, so the read is left behind
// with the process that is ending.
func runFile(ctx context.Context, path string, cfg pipeline.Config, emit protocols.EmitFunc) (pipeline.FileStats, error) {
	type result struct {
		st  pipeline.FileStats
		err error
	}
	var mu sync.Mutex // emit runs on the reading goroutine until ctx ends
	stopped := false
	done := make(chan result, 1)
	go func() {
		st, err := pipeline.RunFile(path, cfg, func(e *protocols.Entry) {
			mu.Lock()
			defer mu.Unlock()
			if !stopped {
				emit(e)
			}
		})
		done <- result{st, err}
	}()
	select {
	case r := <-done:
		return r.st, r.err
	case <-ctx.Done():
		mu.Lock()
		stopped = true
		mu.Unlock()
		return pipeline.FileStats{}, errStopped
	}
}

// readError turns a capture error into one sentence for the user.
func readError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: no such file", path)
	case errors.Is(err, pcapfile.ErrTruncated):
		return fmt.Errorf("%s is truncated: %v; the entries above are what could be read", path, err)
	case errors.Is(err, pcapfile.ErrNotCapture):
		return fmt.Errorf("%s is not a pcap or pcapng capture (%v)", path, err)
	}
	return err
}

// tableWriter prints entries as an aligned table, flushing every few rows
// so that a long capture shows progress.
type tableWriter struct {
	tw   *tabwriter.Writer
	rows int
}

func newTableWriter(w io.Writer) *tableWriter {
	t := &tableWriter{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	fmt.Fprintln(t.tw, "TIME\tPROTO\tSOURCE\tDESTINATION\tMETHOD\tTARGET\tSTATUS\tLATENCY")
	return t
}

func (t *tableWriter) row(e *protocols.Entry) {
	status := e.Summary.Status
	switch e.Unmatched {
	case protocols.MissingResponse:
		status = "(no response)"
	case protocols.MissingRequest:
		status += " (no request)"
	}
	if e.Gap {
		status += " [gap]"
	}
	fmt.Fprintf(t.tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
		e.Start.UTC().Format("15:04:05.000000"), e.Protocol,
		endpoint(e.Src), endpoint(e.Dst),
		clip(e.Summary.Method, 24), clip(e.Summary.Target, 60), status,
		latency(e))
	if t.rows++; t.rows%256 == 0 {
		t.tw.Flush()
	}
}

func (t *tableWriter) flush() { t.tw.Flush() }

func endpoint(ep protocols.Endpoint) string {
	if ep.Pod != "" {
		return ep.Namespace + "/" + ep.Pod
	}
	if !ep.IP.IsValid() {
		return "?"
	}
	if ep.IP.Is6() {
		return fmt.Sprintf("[%s]:%d", ep.IP, ep.Port)
	}
	return fmt.Sprintf("%s:%d", ep.IP, ep.Port)
}

func latency(e *protocols.Entry) string {
	if e.Unmatched != protocols.Matched {
		return "-"
	}
	return e.Duration.Round(time.Microsecond).String()
}

// clip shortens s for the table; tabs and newlines would break the columns.
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '.'
		}
		return r
	}, s)
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}

// printStats prints what was read and every counter of lost data.
func printStats(w io.Writer, st pipeline.FileStats) {
	c, p, a := st.Capture, st.Pipeline, st.Pipeline.Assembly
	var entries uint64
	var byProto []string
	for proto, n := range p.Entries {
		entries += n
		byProto = append(byProto, fmt.Sprintf("%s %d", proto, n))
	}
	sort.Strings(byProto)
	fmt.Fprintf(w, "read %d packets (%d bytes), %d TCP connections, %d entries", c.Packets, c.WireBytes, p.Connections, entries)
	if len(byProto) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(byProto, ", "))
	}
	fmt.Fprintln(w)
	lost := []struct {
		n    uint64
		what string
	}{
		{c.Undecodable, "frames could not be decoded"},
		{c.SnapCut, "payload bytes were cut off by the snap length"},
		{p.Gaps, "gaps in TCP streams"},
		{a.GapBytes, "bytes missing in those gaps (never captured, or given up on)"},
		{a.ConnBufferFull + a.SegmentsFull + a.TotalBufferFull, "holes given up on because the reassembly buffer was full"},
		{a.HoleTimeouts, "holes given up on after the idle timeout"},
		{a.ConnsEvicted, "connections closed early to stay within the connection limit"},
		{a.LateBytes, "bytes arrived after their connection ended and were ignored"},
		{p.EntriesWithGap, "entries are missing bytes (gap)"},
		{p.Unmatched, "entries are missing their request or response"},
		{p.Undetected, "connections spoke no protocol Sonde reads"},
		{p.OpaqueBytes, "bytes were in connections Sonde could not dissect"},
		{p.LeftoverOverflows, "connections exceeded the parser buffer"},
	}
	for _, l := range lost {
		if l.n > 0 {
			fmt.Fprintf(w, "  %d %s\n", l.n, l.what)
		}
	}
	var codes []string
	for code := range p.ParseErrors {
		codes = append(codes, code)
	}
	sort.Strings(codes)
	for _, code := range codes {
		fmt.Fprintf(w, "  %d connections stopped at a protocol error: %s\n", p.ParseErrors[code], code)
	}
}
