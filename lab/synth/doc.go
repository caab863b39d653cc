// Package synth writes large synthetic captures of HTTP/1.1 traffic for
// benchmarks: many keep-alive connections, each with a run of request and
// response pairs, as Ethernet/IPv4/TCP frames in a pcap file. The bytes are
// deterministic for a given Config, so runs compare.
package synth
