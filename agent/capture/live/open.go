package live

import (
	"errors"
	"fmt"
)

// Open starts the eBPF source or, where eBPF cannot run, the AF_PACKET one,
// and logs one line saying which runs and why. Config.Source forces one.
func Open(cfg Config) (Source, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	switch cfg.Source {
	case "", "ebpf", "afpacket":
	default:
		return nil, fmt.Errorf("unknown capture source %q: want ebpf or afpacket", cfg.Source)
	}
	var ebpfErr error
	if cfg.Source != "afpacket" {
		s, err := NewEBPF(cfg)
		if err == nil {
			cfg.Log.Info("capture source", "source", "ebpf", "interfaces", s.Stats().Interfaces)
			return s, nil
		}
		if cfg.Source == "ebpf" || !errors.Is(err, ErrUnavailable) {
			return nil, err
		}
		ebpfErr = err
	}
	a, err := NewAFPacket(cfg)
	if err != nil {
		if ebpfErr != nil {
			return nil, fmt.Errorf("no capture source: %w; AF_PACKET: %w", ebpfErr, err)
		}
		return nil, err
	}
	reason := "chosen in the configuration"
	if ebpfErr != nil {
		reason = ebpfErr.Error()
		if hint := capabilityHint(); hint != "" {
			reason = hint + ": " + reason
		}
	}
	cfg.Log.Warn("capture source", "source", "afpacket", "reason", reason)
	return a, nil
}
