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
	case "ebpf":
		return NewEBPF(cfg)
	case "afpacket":
		s, err := NewAFPacket(cfg)
		if err == nil {
			cfg.Log.Info("capture source", "source", "afpacket", "reason", "chosen in the configuration")
		}
		return s, err
	case "":
	default:
		return nil, fmt.Errorf("unknown capture source %q: want ebpf or afpacket", cfg.Source)
	}
	s, err := NewEBPF(cfg)
	if err == nil {
		cfg.Log.Info("capture source", "source", "ebpf", "interfaces", s.Stats().Interfaces)
		return s, nil
	}
	if !errors.Is(err, ErrUnavailable) {
		return nil, err
	}
	a, aerr := NewAFPacket(cfg)
	if aerr != nil {
		return nil, fmt.Errorf("no capture source: %w; AF_PACKET: %w", err, aerr)
	}
	cfg.Log.Warn("capture source", "source", "afpacket", "reason", err.Error())
	return a, nil
}
