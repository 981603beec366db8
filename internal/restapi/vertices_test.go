package restapi

import "testing"

// Flink's thresholds: ok up to 10%, low up to 50%, high above.
func TestBackPressureLevel(t *testing.T) {
	for ratio, want := range map[float64]string{0: "ok", 0.1: "ok", 0.11: "low", 0.5: "low", 0.51: "high", 1: "high"} {
		if got := BackPressureLevel(ratio); got != want {
			t.Errorf("BackPressureLevel(%v) = %q, want %q", ratio, got, want)
		}
	}
}
