package afpacket

import (
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
)

func serialize(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestTCPOnly runs the socket filter in x/net/bpf's interpreter.
func TestTCPOnly(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	eth := func(et layers.EthernetType) *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: mac, DstMAC: mac, EthernetType: et}
	}
	v4 := func(p layers.IPProtocol) *layers.IPv4 {
		return &layers.IPv4{Version: 4, TTL: 1, Protocol: p, SrcIP: net.IPv4(10, 0, 0, 1), DstIP: net.IPv4(10, 0, 0, 2)}
	}
	v6 := func(p layers.IPProtocol) *layers.IPv6 {
		return &layers.IPv6{Version: 6, HopLimit: 1, NextHeader: p, SrcIP: net.ParseIP("fd00::1"), DstIP: net.ParseIP("fd00::2")}
	}
	tcp := &layers.TCP{SrcPort: 1, DstPort: 2}
	udp := &layers.UDP{SrcPort: 1, DstPort: 2}
	tests := []struct {
		name  string
		frame []byte
		want  bool
	}{
		{"ipv4 tcp", serialize(t, eth(layers.EthernetTypeIPv4), v4(layers.IPProtocolTCP), tcp), true},
		{"ipv6 tcp", serialize(t, eth(layers.EthernetTypeIPv6), v6(layers.IPProtocolTCP), tcp), true},
		{"ipv4 udp", serialize(t, eth(layers.EthernetTypeIPv4), v4(layers.IPProtocolUDP), udp), false},
		{"ipv6 udp", serialize(t, eth(layers.EthernetTypeIPv6), v6(layers.IPProtocolUDP), udp), false},
		{"arp", serialize(t, eth(layers.EthernetTypeARP), &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
			HwAddressSize: 6, ProtAddressSize: 4, SourceHwAddress: mac, SourceProtAddress: []byte{10, 0, 0, 1},
			DstHwAddress: mac, DstProtAddress: []byte{10, 0, 0, 2}}), false},
		{"runt", []byte{1, 2, 3}, false},
	}
	vm, err := bpf.NewVM(tcpOnly(1000))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := vm.Run(tt.frame)
			if err != nil {
				t.Fatal(err)
			}
			if got := n > 0; got != tt.want {
				t.Errorf("filter kept %d bytes, want kept=%v", n, tt.want)
			}
			if tt.want && n != 1000 {
				t.Errorf("filter kept %d bytes, want the snap length 1000", n)
			}
		})
	}
}

func TestFrameSize(t *testing.T) {
	tests := []struct{ snap, want int }{{100, 4096}, {4000, 8192}, {65536 + 128, 131072}}
	for _, tt := range tests {
		if got := frameSize(tt.snap); got != tt.want {
			t.Errorf("frameSize(%d) = %d, want %d", tt.snap, got, tt.want)
		}
	}
}
