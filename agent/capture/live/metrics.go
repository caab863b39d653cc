package live

import "github.com/prometheus/client_golang/prometheus"

// StatsSource is what a Collector reads: a Source, or anything that
// counts as one.
type StatsSource interface{ Stats() Stats }

// Collector exports a Source's Stats as Prometheus metrics, read at each
// scrape. Register it once per Source.
type Collector struct {
	src    StatsSource
	descs  []*prometheus.Desc
	ifaces *prometheus.Desc
}

// counters lists the exported counters with their Stats field, in one place
// so that a new field cannot be exported under two names.
var counters = []struct {
	name, help string
	get        func(Stats) uint64
}{
	{"seen_packets_total", "Packets the capture ran on.", func(s Stats) uint64 { return s.Seen }},
	{"filtered_packets_total", "Packets not TCP or not selected by the filter.", func(s Stats) uint64 { return s.Filtered }},
	{"captured_packets_total", "Packets copied into the ring.", func(s Stats) uint64 { return s.Captured }},
	{"lost_packets_total", "Selected packets lost for want of ring space.", func(s Stats) uint64 { return s.Lost }},
	{"lost_bytes_total", "Wire bytes of the lost packets.", func(s Stats) uint64 { return s.LostBytes }},
	{"truncated_packets_total", "Packets cut by the snap length.", func(s Stats) uint64 { return s.Truncated }},
	{"read_packets_total", "Packets taken out of the ring.", func(s Stats) uint64 { return s.Read }},
	{"malformed_packets_total", "Unreadable ring records.", func(s Stats) uint64 { return s.Malformed }},
	{"skipped_packets_total", "Packets read from unwatched interfaces.", func(s Stats) uint64 { return s.Skipped }},
	{"delivered_packets_total", "Packets handed to the pipeline.", func(s Stats) uint64 { return s.Delivered }},
	{"attach_errors_total", "Failed interface attachments.", func(s Stats) uint64 { return s.AttachErrors }},
}

// NewCollector returns a collector for src; every metric has a "source"
// label ("ebpf" or "afpacket").
func NewCollector(src StatsSource) *Collector {
	c := &Collector{src: src}
	for _, m := range counters {
		c.descs = append(c.descs, prometheus.NewDesc("sonde_capture_"+m.name, m.help, []string{"source"}, nil))
	}
	c.ifaces = prometheus.NewDesc("sonde_capture_interfaces", "Interfaces attached now.", []string{"source"}, nil)
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
	ch <- c.ifaces
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	for i, m := range counters {
		ch <- prometheus.MustNewConstMetric(c.descs[i], prometheus.CounterValue, float64(m.get(st)), st.Source)
	}
	ch <- prometheus.MustNewConstMetric(c.ifaces, prometheus.GaugeValue, float64(st.Interfaces), st.Source)
}
