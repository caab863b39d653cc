package query

import (
	"reflect"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"

	"github.com/sondehq/sonde/protocols"
)

// endpointVal is how src and dst look to CEL: a map with the keys ip, port,
// pod, namespace, service, workload and node. Selecting one key (dst.namespace),
// which is what queries do, reads that field without building a map; other
// uses (comparing whole maps, iterating) fall back to a real CEL map.
type endpointVal struct{ ep protocols.Endpoint }

var (
	_ ref.Val = endpointVal{}
)

func (v endpointVal) field(key string) (ref.Val, bool) {
	switch key {
	case "ip":
		if !v.ep.IP.IsValid() {
			return types.String(""), true
		}
		return types.String(v.ep.IP.String()), true
	case "port":
		return types.Int(v.ep.Port), true
	case "pod":
		return types.String(v.ep.Pod), true
	case "namespace":
		return types.String(v.ep.Namespace), true
	case "service":
		return types.String(v.ep.Service), true
	case "workload":
		return types.String(v.ep.Workload), true
	case "node":
		return types.String(v.ep.Node), true
	}
	return nil, false
}

// Get implements traits.Indexer.
func (v endpointVal) Get(index ref.Val) ref.Val {
	k, ok := index.(types.String)
	if !ok {
		return types.ValOrErr(index, "no such overload")
	}
	if f, ok := v.field(string(k)); ok {
		return f
	}
	return types.NewErr("no such key: %s", k)
}

// Contains implements traits.Container: "pod" in src.
func (v endpointVal) Contains(index ref.Val) ref.Val {
	k, ok := index.(types.String)
	if !ok {
		return types.False
	}
	_, found := v.field(string(k))
	return types.Bool(found)
}

// IsSet implements traits.FieldTester: has(src.pod).
func (v endpointVal) IsSet(field ref.Val) ref.Val { return v.Contains(field) }

func (v endpointVal) asMap() ref.Val {
	return types.DefaultTypeAdapter.NativeToValue(endpointMap(v.ep))
}

func (v endpointVal) ConvertToNative(t reflect.Type) (any, error) {
	return v.asMap().ConvertToNative(t)
}
func (v endpointVal) ConvertToType(t ref.Type) ref.Val { return v.asMap().ConvertToType(t) }
func (v endpointVal) Equal(other ref.Val) ref.Val      { return v.asMap().Equal(other) }
func (v endpointVal) Type() ref.Type                   { return types.MapType }
func (v endpointVal) Value() any                       { return endpointMap(v.ep) }

// endpointMap is how src and dst look to a query.
func endpointMap(ep protocols.Endpoint) map[string]any {
	ip := ""
	if ep.IP.IsValid() {
		ip = ep.IP.String()
	}
	return map[string]any{
		"ip": ip, "port": int64(ep.Port), "pod": ep.Pod, "namespace": ep.Namespace,
		"service": ep.Service, "workload": ep.Workload, "node": ep.Node,
	}
}
