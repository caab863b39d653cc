// Package pcapfile reads pcap and pcapng capture files for the offline
// pipeline (`sonde read`), with gopacket's pure-Go pcapgo readers.
//
// A Reader is not safe for concurrent use. The Frame it returns is valid only
// until the next call to Next.
package pcapfile
