package live

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

type fixedSource Stats

func (f fixedSource) Stats() Stats { return Stats(f) }

func TestCollector(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(NewCollector(fixedSource{Source: "ebpf", Seen: 10, Filtered: 2, Captured: 7, Lost: 1, LostBytes: 1500, Read: 7, Delivered: 7, Interfaces: 3})); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if l := m.GetLabel(); len(l) != 1 || l[0].GetValue() != "ebpf" {
				t.Errorf("%s: labels %v, want source=ebpf", mf.GetName(), l)
			}
			got[mf.GetName()] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	want := map[string]float64{
		"sonde_capture_seen_packets_total":      10,
		"sonde_capture_filtered_packets_total":  2,
		"sonde_capture_lost_packets_total":      1,
		"sonde_capture_lost_bytes_total":        1500,
		"sonde_capture_delivered_packets_total": 7,
		"sonde_capture_interfaces":              3,
	}
	for name, v := range want {
		if got[name] != v {
			t.Errorf("%s = %v, want %v", name, got[name], v)
		}
	}
	if len(got) != len(counters)+1 {
		t.Errorf("%d metrics, want %d", len(got), len(counters)+1)
	}
}
