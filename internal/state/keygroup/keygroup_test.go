package keygroup

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestMurmurFlinkVectors pins murmur to Flink's MathUtils.murmurHash. The
// values were derived from Flink's published algorithm (MathUtils.murmurHash
// as read in apache/flink's flink-core, computed with an independent
// implementation of the Java int arithmetic); 0, 1, 2 and -1 also match
// values printed by Flink programs (593689054, 68075478, 1085422463,
// 1982413648).
func TestMurmurFlinkVectors(t *testing.T) {
	tests := []struct {
		javaInt int32
		want    int32
	}{
		{0, 593689054},
		{1, 68075478},
		{2, 1085422463},
		{3, 847579505},
		{42, 1134849565},
		{-1, 1982413648},
		{-2, 1087594050},
		{2147483647, 1653689534},
		{-2147483648, 1718298732},
		{123456789, 1088346449},
		{-987654321, 1314828554},
	}
	for _, tt := range tests {
		if got := murmur(uint32(tt.javaInt)); got != tt.want {
			t.Errorf("murmur(%d) = %d, want %d (Flink's MathUtils.murmurHash)", tt.javaInt, got, tt.want)
		}
	}
}

// TestOfFlinkVectors pins Of to Flink's
// KeyGroupRangeAssignment.computeKeyGroupForKeyHash(keyHash, maxParallelism)
// = MathUtils.murmurHash(keyHash) % maxParallelism, for Java int hashes
// (an Integer key's hashCode is its value). Derived from Flink's published
// algorithm, as TestMurmurFlinkVectors.
func TestOfFlinkVectors(t *testing.T) {
	maxes := []int{1, 2, 128, 1000, 32768}
	tests := []struct {
		javaInt int32
		want    []int // per maxes
	}{
		{0, []int{0, 0, 94, 54, 31198}},
		{1, []int{0, 0, 86, 478, 16342}},
		{2, []int{0, 1, 127, 463, 15231}},
		{3, []int{0, 1, 113, 505, 2417}},
		{42, []int{0, 1, 29, 565, 28189}},
		{-1, []int{0, 0, 80, 648, 15184}},
		{-2, []int{0, 0, 66, 50, 24130}},
		{2147483647, []int{0, 0, 62, 534, 19646}},
		{-2147483648, []int{0, 0, 108, 732, 10348}},
		{123456789, []int{0, 1, 81, 449, 22865}},
		{-987654321, []int{0, 0, 10, 554, 12554}},
	}
	for _, tt := range tests {
		for i, m := range maxes {
			if got := Of(uint32(tt.javaInt), m); got != tt.want[i] {
				t.Errorf("Of(%d, %d) = %d, want %d", tt.javaInt, m, got, tt.want[i])
			}
		}
	}
}

// TestHashVectors pins Hash to FNV-1a 32: a change would move every key to
// another key group and make every savepoint unrestorable.
func TestHashVectors(t *testing.T) {
	tests := []struct {
		key  string
		want uint32
	}{
		{"", 0x811c9dc5},
		{"a", 0xe40c292c},
		{"foobar", 0xbf9cf968},
		{"user-42", 0x026073ab},
	}
	for _, tt := range tests {
		if got := Hash([]byte(tt.key)); got != tt.want {
			t.Errorf("Hash(%q) = %#x, want %#x", tt.key, got, tt.want)
		}
	}
}

func TestOfInRange(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, m := range []int{1, 3, 128, 4096, MaxParallelism} {
		for range 10000 {
			h := r.Uint32()
			if kg := Of(h, m); kg < 0 || kg >= m {
				t.Fatalf("Of(%#x, %d) = %d", h, m, kg)
			}
		}
	}
}

// TestRangeOfPartitions: for every parallelism up to max, the subtasks'
// ranges are non-empty, in order, contiguous and cover [0, max) exactly, and
// Operator maps every key group to the subtask whose range holds it.
func TestRangeOfPartitions(t *testing.T) {
	for _, m := range []int{1, 2, 3, 7, 128, 129, 1000, 4096} {
		for p := 1; p <= m; p++ {
			next := 0
			for i := range p {
				r := RangeOf(i, p, m)
				if r.First != next || r.Last < r.First {
					t.Fatalf("max %d p %d: subtask %d has %v after key group %d", m, p, i, r, next-1)
				}
				for kg := r.First; kg <= r.Last; kg++ {
					if op := Operator(kg, p, m); op != i {
						t.Fatalf("max %d p %d: Operator(%d) = %d, but RangeOf(%d) = %v", m, p, kg, op, i, r)
					}
				}
				next = r.Last + 1
			}
			if next != m {
				t.Fatalf("max %d p %d: ranges end at %d", m, p, next)
			}
		}
	}
	// The largest max at a few parallelisms, including p = max.
	m := MaxParallelism
	for _, p := range []int{1, 2, 3, 100, 32767, m} {
		next := 0
		for i := range p {
			r := RangeOf(i, p, m)
			if r.First != next || r.Last < r.First || Operator(r.First, p, m) != i || Operator(r.Last, p, m) != i {
				t.Fatalf("max %d p %d: subtask %d has %v", m, p, i, r)
			}
			next = r.Last + 1
		}
		if next != m {
			t.Fatalf("max %d p %d: ranges end at %d", m, p, next)
		}
	}
}

// TestRangeOfFlink compares with values of Flink's
// computeKeyGroupRangeForOperatorIndex worked by hand from its formula.
func TestRangeOfFlink(t *testing.T) {
	tests := []struct {
		subtask, p, max int
		want            Range
	}{
		{0, 2, 128, Range{0, 63}},
		{1, 2, 128, Range{64, 127}},
		{0, 3, 128, Range{0, 42}},
		{1, 3, 128, Range{43, 85}},
		{2, 3, 128, Range{86, 127}},
		{0, 4, 10, Range{0, 2}},
		{1, 4, 10, Range{3, 4}},
		{2, 4, 10, Range{5, 7}},
		{3, 4, 10, Range{8, 9}},
		{4, 5, 5, Range{4, 4}},
	}
	for _, tt := range tests {
		if got := RangeOf(tt.subtask, tt.p, tt.max); got != tt.want {
			t.Errorf("RangeOf(%d, %d, %d) = %v, want %v", tt.subtask, tt.p, tt.max, got, tt.want)
		}
	}
}

func TestRangeContainsIntersect(t *testing.T) {
	r := Range{10, 20}
	for kg, want := range map[int]bool{9: false, 10: true, 15: true, 20: true, 21: false} {
		if r.Contains(kg) != want {
			t.Errorf("%v.Contains(%d) = %v", r, kg, !want)
		}
	}
	tests := []struct {
		a, b Range
		want Range
		ok   bool
	}{
		{Range{0, 63}, Range{32, 95}, Range{32, 63}, true},
		{Range{32, 95}, Range{0, 63}, Range{32, 63}, true},
		{Range{0, 63}, Range{64, 127}, Range{}, false},
		{Range{0, 63}, Range{63, 127}, Range{63, 63}, true},
		{Range{0, 127}, Range{5, 6}, Range{5, 6}, true},
		{Range{5, 5}, Range{5, 5}, Range{5, 5}, true},
	}
	for _, tt := range tests {
		got, ok := tt.a.Intersect(tt.b)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%v.Intersect(%v) = %v, %v; want %v, %v", tt.a, tt.b, got, ok, tt.want, tt.ok)
		}
	}
	if n := (Range{3, 5}).Len(); n != 3 {
		t.Errorf("Len = %d", n)
	}
}

func TestChecks(t *testing.T) {
	for _, m := range []int{0, -1, MaxParallelism + 1} {
		if err := CheckMaxParallelism(m); err == nil || !strings.Contains(err.Error(), "pipeline.max-parallelism") {
			t.Errorf("CheckMaxParallelism(%d) = %v", m, err)
		}
	}
	if err := CheckParallelism(129, 128); err == nil || !strings.Contains(err.Error(), "pipeline.max-parallelism") {
		t.Errorf("CheckParallelism(129, 128) = %v", err)
	}
	if err := CheckParallelism(128, 128); err != nil {
		t.Error(err)
	}
	for name, f := range map[string]func(){
		"Of max 0":          func() { Of(1, 0) },
		"Operator kg = max": func() { Operator(128, 2, 128) },
		"Operator p > max":  func() { Operator(0, 129, 128) },
		"RangeOf subtask p": func() { RangeOf(2, 2, 128) },
		"RangeOf p 0":       func() { RangeOf(0, 0, 128) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", name)
				}
			}()
			f()
		}()
	}
}

func TestRangeJSON(t *testing.T) {
	b, err := json.Marshal(Range{64, 127})
	if err != nil || string(b) != "[64,127]" {
		t.Fatalf("marshal: %s %v", b, err)
	}
	var r Range
	if err := json.Unmarshal([]byte("[0, 63]"), &r); err != nil || r != (Range{0, 63}) {
		t.Fatalf("unmarshal: %v %v", r, err)
	}
	for _, bad := range []string{`[1]`, `[1,2,3]`, `[5,4]`, `[-1,3]`, `[0,32768]`, `{"First":0}`, `"0-63"`} {
		if err := json.Unmarshal([]byte(bad), &r); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func ExampleRangeOf() {
	for i := range 3 {
		fmt.Println(RangeOf(i, 3, 128))
	}
	// Output:
	// [0, 42]
	// [43, 85]
	// [86, 127]
}

func BenchmarkOf(b *testing.B) {
	key := []byte("user-000042")
	var sink int
	for i := 0; b.Loop(); i++ {
		sink += Of(Hash(key)+uint32(i), 128)
	}
	_ = sink
}

func BenchmarkOfHashOnly(b *testing.B) {
	var sink int
	for i := 0; b.Loop(); i++ {
		sink += Of(uint32(i), 128)
	}
	_ = sink
}
