package live

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/sondehq/sonde/agent/packet"
	"github.com/sondehq/sonde/agent/pipeline"
	"github.com/sondehq/sonde/lab/netlab"
	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/all"
)

// iperf runs iperf3 from client to server for the duration and returns the
// received throughput in bits per second.
func iperf(b *testing.B, l *netlab.Lab, server, client *netlab.Pod, d time.Duration) float64 {
	b.Helper()
	var out []byte
	for range 5 { // iperf3 -s needs a moment to listen; a try that fails is cheap
		bps, o, err := iperfOnce(l, server, client, d)
		if err == nil && bps > 0 {
			return bps
		}
		out = o
	}
	b.Fatalf("iperf3 gave no throughput: %s", out)
	return 0
}

func iperfOnce(l *netlab.Lab, server, client *netlab.Pod, d time.Duration) (float64, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d+20*time.Second)
	defer cancel()
	srv := server.Command(ctx, "iperf3", "-s", "-1", "-B", server.IP.String())
	if err := srv.Start(); err != nil {
		return 0, nil, err
	}
	l.Track(srv)
	defer srv.Wait()
	defer srv.Process.Kill()
	out, err := client.Command(ctx, "iperf3", "-c", server.IP.String(), "-t", strconv.Itoa(int(d.Seconds())), "-J").Output()
	if err != nil {
		return 0, out, err
	}
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	err = json.Unmarshal(out, &res)
	return res.End.SumReceived.BitsPerSecond, out, err
}

func cpuTime() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS is the process's peak resident set (VmHWM) in bytes.
func peakRSS() float64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb * 1024
		}
	}
	return 0
}

// BenchmarkIperf measures iperf3 between two pods with and without the eBPF
// capture attached (full payload, frames decoded as the pipeline would), in
// the same run, and reports the throughput ratio, the capture's CPU share,
// its peak RSS and the kernel program's cost per packet (bpf stats).
// Run with: go test -run '^$' -bench Iperf -benchtime 1x ./agent/capture/live
func BenchmarkIperf(b *testing.B) {
	if _, err := exec.LookPath("iperf3"); err != nil {
		b.Skip("BenchmarkIperf needs iperf3 (Debian package iperf3)")
	}
	for _, bc := range []struct {
		name         string
		wakeup, ring int
	}{{"poll", 0, 0}, {"poll-64MiB-ring", 0, 64 << 20}, {"wakeup-per-record", -1, 0}} {
		b.Run(bc.name, func(b *testing.B) { benchIperf(b, bc.wakeup, bc.ring) })
	}
}

func benchIperf(b *testing.B, wakeup, ring int) {
	l := netlab.ForTest(b)
	server, client := addPod(b, l, "server"), addPod(b, l, "client")
	const d = 5 * time.Second
	for b.Loop() {
		base := iperf(b, l, server, client, d)

		stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
		if err != nil {
			b.Fatalf("enabling bpf stats: %v", err)
		}
		s, err := NewEBPF(Config{Pods: []netip.Addr{server.IP, client.IP}, Netns: l.Node.Handle, WakeupBytes: wakeup, RingSize: ring})
		if err != nil {
			b.Fatal(err)
		}
		dec, _ := packet.NewDecoder(packet.LinkEthernet)
		var seg packet.Segment
		var payload int64
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- s.Run(ctx, func(f *Frame) {
				if dec.Decode(f.Data, f.WireLen, f.Time, &seg) == nil {
					payload += int64(len(seg.Payload))
				}
			})
		}()
		cpu0, t0 := cpuTime(), time.Now()
		with := iperf(b, l, server, client, d)
		cpu, wall := cpuTime()-cpu0, time.Since(t0)
		var runtime time.Duration
		var runs uint64
		for _, p := range []*ebpf.Program{s.Capture().Ingress(), s.Capture().Egress()} {
			if ps, err := p.Stats(); err == nil {
				runtime += ps.Runtime
				runs += ps.RunCount
			}
		}
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		stats.Close()
		st := s.Stats()
		b.ReportMetric(base/1e9, "Gbit/s-without")
		b.ReportMetric(with/1e9, "Gbit/s-with")
		b.ReportMetric(with/base, "ratio")
		b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "%cpu-agent")
		b.ReportMetric(peakRSS()/(1<<20), "MiB-peak-rss")
		if runs > 0 {
			b.ReportMetric(float64(runtime.Nanoseconds())/float64(runs), "ns/pkt-kernel")
		}
		b.ReportMetric(float64(st.Captured)/wall.Seconds(), "pkt/s")
		b.ReportMetric(float64(st.Lost), "lost")
		b.Logf("without %.2f Gbit/s, with %.2f Gbit/s; capture %+v; %d payload bytes decoded; %d program runs",
			base/1e9, with/1e9, st, payload, runs)
	}
}

// BenchmarkHTTPLoad sends HTTP/1 requests between two pods at rising rates
// (keep-alive connections, a fixed schedule per rate) through the eBPF
// capture and the pipeline, and reports per rate the requests that did not
// come out as entries, the capture's CPU per 1,000 requests/s and the peak RSS.
// Run with: go test -run '^$' -bench HTTPLoad -benchtime 1x ./agent/capture/live
func BenchmarkHTTPLoad(b *testing.B) {
	l := netlab.ForTest(b)
	server, client := addPod(b, l, "server"), addPod(b, l, "client")
	sizedServer(b, server, 8080)
	url := fmt.Sprintf("http://%s:8080/?n=200", server.IP)
	for b.Loop() {
		for _, rate := range []int{1000, 2000, 5000, 10000} {
			missing, cpu := httpLoad(b, l, server, client, url, rate, 3*time.Second)
			b.ReportMetric(float64(missing), fmt.Sprintf("missing@%d/s", rate))
			b.ReportMetric(100*cpu/(float64(rate)/1000), fmt.Sprintf("%%cpu-per-1k@%d/s", rate))
		}
		b.ReportMetric(peakRSS()/(1<<20), "MiB-peak-rss")
	}
}

// httpLoad runs one rate and returns how many requests were answered but
// not captured as entries, and the process's CPU share (cores) meanwhile,
// load generator excluded as far as it can be: it is measured alone first.
func httpLoad(b *testing.B, l *netlab.Lab, server, client *netlab.Pod, url string, rate int, d time.Duration) (missing int, cpu float64) {
	b.Helper()
	gen := func() (sent int, cores float64) {
		tr := &http.Transport{DialContext: client.DialContext, MaxIdleConnsPerHost: 64}
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		total := int(d.Seconds()) * rate
		var wg sync.WaitGroup
		var mu sync.Mutex
		sem := make(chan struct{}, 64)
		tick := time.NewTicker(time.Second / time.Duration(rate/100)) // 100 requests per tick
		defer tick.Stop()
		cpu0, t0 := cpuTime(), time.Now()
		for i := 0; i < total; i += 100 {
			<-tick.C
			for range 100 {
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem }()
					resp, err := hc.Get(url)
					if err != nil {
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					mu.Lock()
					sent++
					mu.Unlock()
				})
			}
		}
		wg.Wait()
		return sent, (cpuTime() - cpu0).Seconds() / time.Since(t0).Seconds()
	}
	_, alone := gen()

	s, err := NewEBPF(Config{Pods: []netip.Addr{server.IP, client.IP}, Netns: l.Node.Handle})
	if err != nil {
		b.Fatal(err)
	}
	var entries int
	p := pipeline.New(pipeline.DefaultConfig(all.Dissectors()), func(e *protocols.Entry) {
		if e.HTTP != nil && e.Unmatched == protocols.Matched {
			entries++
		}
	})
	frames := pipeline.NewFrames(p)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.Run(ctx, func(f *Frame) { frames.Frame(f.Data, f.WireLen, f.Time, packet.LinkEthernet) })
	}()
	sent, with := gen()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	p.Close(time.Now())
	st := s.Stats()
	b.Logf("%d/s: %d answered, %d entries, capture lost %d; cpu %.2f cores with capture, %.2f without",
		rate, sent, entries, st.Lost, with, alone)
	return sent - entries, max(with-alone, 0)
}
