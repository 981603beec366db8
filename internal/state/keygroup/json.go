package keygroup

import (
	"encoding/json"
	"fmt"
)

// MarshalJSON writes the range as [first, last], the form of _metadata's
// "key-groups".
func (r Range) MarshalJSON() ([]byte, error) {
	return json.Marshal([2]int{r.First, r.Last})
}

// UnmarshalJSON reads [first, last] and refuses anything else: a range
// with first > last, or outside [0, MaxParallelism), is a corrupt handle.
func (r *Range) UnmarshalJSON(b []byte) error {
	var a []int
	if err := json.Unmarshal(b, &a); err != nil {
		return fmt.Errorf("key-group range: %w", err)
	}
	if len(a) != 2 {
		return fmt.Errorf("key-group range: want [first, last], got %d numbers", len(a))
	}
	if a[0] < 0 || a[1] < a[0] || a[1] >= MaxParallelism {
		return fmt.Errorf("key-group range [%d, %d]: want 0 <= first <= last < %d", a[0], a[1], MaxParallelism)
	}
	*r = Range{First: a[0], Last: a[1]}
	return nil
}
