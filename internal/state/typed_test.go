package state_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/state"
	"github.com/sluice-dev/sluice/internal/state/hashmap"
)

func newBackend(t *testing.T) state.Backend {
	t.Helper()
	b, err := hashmap.Factory{}.New(context.Background(), state.Config{Operator: "op", KeyGroups: state.KeyGroupRange{First: 0, Last: 7}, MaxParallelism: 8}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// step is one access of a typed state: under key (in key group kg) and
// namespace ns, do op with arg and expect want ("-" for absent).
type step struct {
	key string
	kg  int
	ns  string
	op  string
	arg string
	// want is the result of a get (fmt.Sprint of the value, "-" when absent).
	want string
}

func run(t *testing.T, b state.Backend, steps []step, setNS func([]byte), do func(op, arg string) (string, error)) {
	t.Helper()
	for i, s := range steps {
		b.SetCurrentKey([]byte(s.key), s.kg)
		var ns []byte
		if s.ns != "" {
			ns = []byte(s.ns)
		}
		setNS(ns)
		got, err := do(s.op, s.arg)
		if err != nil {
			t.Fatalf("step %d %+v: %v", i, s, err)
		}
		if s.op == "get" && got != s.want {
			t.Errorf("step %d %+v: got %q, want %q", i, s, got, s.want)
		}
	}
}

// isolation is the same pattern for every state type: writes under one
// key, key group or namespace are invisible under the others, and clear
// removes only its own.
func isolation(first, second string) []step {
	return []step{
		{key: "a", kg: 1, op: "get", want: "-"},
		{key: "a", kg: 1, op: "add", arg: first},
		{key: "a", kg: 1, op: "get", want: first},
		{key: "b", kg: 1, op: "get", want: "-"},
		{key: "a", kg: 2, op: "get", want: "-"}, // same bytes, another key group
		{key: "a", kg: 1, ns: "w1", op: "get", want: "-"},
		{key: "a", kg: 1, ns: "w1", op: "add", arg: second},
		{key: "b", kg: 1, op: "add", arg: second},
		{key: "a", kg: 1, op: "get", want: first},
		{key: "a", kg: 1, ns: "w1", op: "get", want: second},
		{key: "b", kg: 1, op: "get", want: second},
		{key: "a", kg: 1, op: "clear"},
		{key: "a", kg: 1, op: "get", want: "-"},
		{key: "a", kg: 1, ns: "w1", op: "get", want: second},
		{key: "b", kg: 1, op: "get", want: second},
		{key: "", kg: 0, op: "add", arg: first}, // the empty key is a key
		{key: "", kg: 0, op: "get", want: first},
	}
}

func show[T any](v T, ok bool, err error) (string, error) {
	if err != nil || !ok {
		return "-", err
	}
	return fmt.Sprint(v), nil
}

func TestValueState(t *testing.T) {
	b := newBackend(t)
	v, err := state.NewValue(b, "v", state.Int64Codec)
	if err != nil {
		t.Fatal(err)
	}
	steps := append(isolation("1", "2"),
		step{key: "a", kg: 1, op: "add", arg: "-5"},
		step{key: "a", kg: 1, op: "add", arg: "7"}, // update replaces
		step{key: "a", kg: 1, op: "get", want: "7"},
	)
	run(t, b, steps, v.SetNamespace, func(op, arg string) (string, error) {
		switch op {
		case "get":
			return show(v.Get())
		case "add":
			var n int64
			fmt.Sscan(arg, &n)
			return "", v.Set(n)
		}
		return "", v.Clear()
	})
}

func TestListState(t *testing.T) {
	b := newBackend(t)
	l, err := state.NewList(b, "l", state.StringCodec)
	if err != nil {
		t.Fatal(err)
	}
	steps := append(isolation("[x]", "[y]"),
		step{key: "a", kg: 1, op: "add", arg: "[p]"},
		step{key: "a", kg: 1, op: "add", arg: "[]"}, // an empty element is an element
		step{key: "a", kg: 1, op: "add", arg: "[q]"},
		step{key: "a", kg: 1, op: "get", want: "[p  q]"},
		step{key: "a", kg: 1, op: "update", arg: "r,s"},
		step{key: "a", kg: 1, op: "get", want: "[r s]"},
		step{key: "a", kg: 1, op: "update", arg: ""},
		step{key: "a", kg: 1, op: "get", want: "-"},
	)
	run(t, b, steps, l.SetNamespace, func(op, arg string) (string, error) {
		switch op {
		case "get":
			vs, err := l.Get()
			return show(vs, len(vs) > 0, err)
		case "add":
			return "", l.Add(strings.Trim(arg, "[]"))
		case "update":
			var vs []string
			if arg != "" {
				vs = strings.Split(arg, ",")
			}
			return "", l.Update(vs)
		}
		return "", l.Clear()
	})
}

func TestMapState(t *testing.T) {
	b := newBackend(t)
	m, err := state.NewMap(b, "m", state.StringCodec, state.Int64Codec)
	if err != nil {
		t.Fatal(err)
	}
	steps := append(isolation("k=1", "k=2"),
		step{key: "a", kg: 1, op: "add", arg: "j=3"},
		step{key: "a", kg: 1, op: "add", arg: "k=4"},
		step{key: "a", kg: 1, op: "add", arg: "=5"}, // the empty user key is a key
		step{key: "a", kg: 1, op: "get", want: "=5 j=3 k=4"},
		step{key: "a", kg: 1, op: "lookup", arg: "j"},
		step{key: "a", kg: 1, op: "delete", arg: "j"},
		step{key: "a", kg: 1, op: "delete", arg: "absent"},
		step{key: "a", kg: 1, op: "get", want: "=5 k=4"},
		step{key: "a", kg: 1, op: "delete", arg: ""},
		step{key: "a", kg: 1, op: "delete", arg: "k"},
		step{key: "a", kg: 1, op: "get", want: "-"},
	)
	run(t, b, steps, m.SetNamespace, func(op, arg string) (string, error) {
		k, val, _ := strings.Cut(arg, "=")
		switch op {
		case "get":
			var all []string
			err := m.Range(func(k string, v int64) error {
				all = append(all, fmt.Sprintf("%s=%d", k, v))
				return nil
			})
			slices.Sort(all)
			return show(strings.Join(all, " "), len(all) > 0, err)
		case "lookup":
			v, ok, err := m.Get(k)
			if err != nil || !ok || v != 3 {
				return "", fmt.Errorf("Get(%q) = %d, %v, %v; want 3", k, v, ok, err)
			}
			if _, ok, _ := m.Get("absent"); ok {
				return "", errors.New(`Get("absent") found a value`)
			}
			return "", nil
		case "add":
			var n int64
			fmt.Sscan(val, &n)
			return "", m.Put(k, n)
		case "delete":
			return "", m.Delete(k)
		}
		return "", m.Clear()
	})
}

func TestReducingState(t *testing.T) {
	b := newBackend(t)
	r, err := state.NewReducing(b, "r", state.Int64Codec, func(a, b int64) (int64, error) { return a + b, nil })
	if err != nil {
		t.Fatal(err)
	}
	steps := append(isolation("1", "2"),
		step{key: "a", kg: 1, op: "add", arg: "10"},
		step{key: "a", kg: 1, op: "add", arg: "5"},
		step{key: "a", kg: 1, op: "get", want: "15"},
	)
	run(t, b, steps, r.SetNamespace, func(op, arg string) (string, error) {
		switch op {
		case "get":
			return show(r.Get())
		case "add":
			var n int64
			fmt.Sscan(arg, &n)
			return "", r.Add(n)
		}
		return "", r.Clear()
	})
	bad, _ := state.NewReducing(b, "bad", state.Int64Codec, func(a, b int64) (int64, error) { return 0, errors.New("overflow") })
	b.SetCurrentKey([]byte("a"), 1)
	_ = bad.Add(1)
	if err := bad.Add(2); err == nil || !strings.Contains(err.Error(), `state "bad": overflow`) {
		t.Errorf("reduce error: %v", err)
	}
}

// avg averages int64 inputs: the accumulator is "sum/count", the result a float.
type avg struct{}

func (avg) Create() string { return "0/0" }
func (avg) Add(acc string, in int64) (string, error) {
	var s, n int64
	fmt.Sscanf(acc, "%d/%d", &s, &n)
	return fmt.Sprintf("%d/%d", s+in, n+1), nil
}
func (avg) Result(acc string) float64 {
	var s, n int64
	fmt.Sscanf(acc, "%d/%d", &s, &n)
	return float64(s) / float64(n)
}

func TestAggregatingState(t *testing.T) {
	b := newBackend(t)
	g, err := state.NewAggregating[int64, string, float64](b, "g", state.StringCodec, avg{})
	if err != nil {
		t.Fatal(err)
	}
	steps := append(isolation("1", "2"),
		step{key: "a", kg: 1, op: "add", arg: "1"},
		step{key: "a", kg: 1, op: "add", arg: "2"},
		step{key: "a", kg: 1, op: "get", want: "1.5"},
	)
	run(t, b, steps, g.SetNamespace, func(op, arg string) (string, error) {
		switch op {
		case "get":
			return show(g.Get())
		case "add":
			var n int64
			fmt.Sscan(arg, &n)
			return "", g.Add(n)
		}
		return "", g.Clear()
	})
}

// TestStatesAreSeparate: two states of one backend never see each other's
// values, and a name keeps its kind.
func TestStatesAreSeparate(t *testing.T) {
	b := newBackend(t)
	v1, _ := state.NewValue(b, "one", state.StringCodec)
	v2, _ := state.NewValue(b, "two", state.StringCodec)
	b.SetCurrentKey([]byte("k"), 3)
	if err := v1.Set("x"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := v2.Get(); ok {
		t.Error("state two sees state one's value")
	}
	again, err := state.NewValue(b, "one", state.StringCodec)
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _ := again.Get(); got != "x" {
		t.Errorf("re-registered state reads %q", got)
	}
	if _, err := state.NewList(b, "one", state.StringCodec); err == nil || !strings.Contains(err.Error(), `state "one" was registered as value state and cannot be registered as list state`) {
		t.Errorf("kind change: %v", err)
	}
}

func TestAccessOutsideKeyGroups(t *testing.T) {
	b := newBackend(t)
	v, _ := state.NewValue(b, "v", state.StringCodec)
	if err := v.Set("x"); err == nil || !strings.Contains(err.Error(), "no current key") {
		t.Errorf("without a key: %v", err)
	}
	b.SetCurrentKey([]byte("k"), 8)
	if err := v.Set("x"); err == nil || !strings.Contains(err.Error(), "key group 8 of the current key is outside this subtask's key groups [0, 7]") {
		t.Errorf("outside the range: %v", err)
	}
	if _, _, err := v.Get(); err == nil {
		t.Error("Get outside the range succeeded")
	}
}

func TestCodecsRefuseMalformedInput(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"int64 empty", func() error { _, err := state.Int64Codec.Decode(nil); return err }()},
		{"int64 trailing", func() error { _, err := state.Int64Codec.Decode([]byte{1, 2}); return err }()},
		{"float64 short", func() error { _, err := state.Float64Codec.Decode([]byte{1}); return err }()},
		{"list length past end", state.CheckElements([]byte{5, 'a'})},
		{"list varint", state.CheckElements([]byte{0xff})},
	} {
		if tt.err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
	b := state.Float64Codec.Append(nil, 2.5)
	if f, err := state.Float64Codec.Decode(b); err != nil || f != 2.5 {
		t.Errorf("float64 round trip: %v %v", f, err)
	}
}
