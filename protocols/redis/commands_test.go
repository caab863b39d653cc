package redis

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// TestCommandTable checks the command table against what a live
// redis-server reports of its commands (COMMAND): every command is known,
// and the first key is where the server's key specifications put it.
func TestCommandTable(t *testing.T) {
	c := goredis.NewClient(&goredis.Options{Addr: startServer(t), Protocol: 2})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reply, err := c.Do(ctx, "COMMAND").Slice()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	var check func(info []any)
	check = func(info []any) {
		name := strings.ToUpper(strings.ReplaceAll(info[0].(string), "|", " "))
		spec, ok := commands[name]
		subs := info[9].([]any)
		if !ok && !strings.Contains(name, " ") {
			t.Errorf("%s: not in the command table", name)
		}
		if spec.container != (len(subs) > 0) {
			t.Errorf("%s: container %v, the server lists %d subcommands", name, spec.container, len(subs))
		}
		for _, s := range subs {
			check(s.([]any))
		}
		checked++
		if spec.channel {
			return
		}
		want := keySpec{}
		if ks := info[8].([]any); len(ks) > 0 {
			first := pairs(ks[0].([]any))
			begin, find := pairs(first["begin_search"].([]any)), pairs(first["find_keys"].([]any))
			bs := pairs(begin["spec"].([]any))
			switch begin["type"] {
			case "index":
				want.first = int8(bs["index"].(int64))
			case "keyword":
				want.keyword, want.first = bs["keyword"].(string), int8(bs["startfrom"].(int64))
			}
			want.keynum = find["type"] == "keynum"
		}
		if got := (keySpec{first: spec.first, keyword: spec.keyword, keynum: spec.keynum}); got != want {
			t.Errorf("%s: key spec %+v, the server says %+v", name, got, want)
		}
	}
	for _, info := range reply {
		check(info.([]any))
	}
	if checked < 200 {
		t.Errorf("checked %d commands: the server listed too few", checked)
	}
}

// pairs reads a RESP2 flattened map.
func pairs(flat []any) map[string]any {
	m := make(map[string]any, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		m[fmt.Sprint(flat[i])] = flat[i+1]
	}
	return m
}
