package apiserver

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrSize: a size flag is not a number of bytes with an optional unit.
var ErrSize = errors.New(`a size is a number with an optional unit: 1GiB, 512MiB, 2G, 1500000000`)

// ParseSize reads a storage size as `--storage-limit` takes it: bytes, or a
// number with KiB, MiB, GiB, TiB (powers of 1024) or KB, MB, GB, TB, K, M, G,
// T (powers of 1000), case-insensitive.
func ParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	units := []struct {
		suffix string
		mult   float64
	}{
		{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
		{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
		{"k", 1e3}, {"m", 1e6}, {"g", 1e9}, {"t", 1e12}, {"b", 1},
	}
	mult := 1.0
	for _, u := range units {
		if n, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 || v*mult > 1<<62 {
		return 0, fmt.Errorf("%q: %w", s, ErrSize)
	}
	return int64(v * mult), nil
}
