package config

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestSecretDoesNotLeak(t *testing.T) {
	s := Secret("hunter2")
	if s.Value() != "hunter2" {
		t.Fatal("Value lost the secret")
	}
	var decoded struct{ P string }
	j, _ := json.Marshal(struct{ P Secret }{s})
	if err := json.Unmarshal(j, &decoded); err != nil || decoded.P != "<secret>" {
		t.Errorf("JSON: %s", j)
	}
	j, _ = s.MarshalJSON()
	y, _ := yaml.Marshal(struct{ P Secret }{s})
	for _, got := range []string{
		s.String(), fmt.Sprint(s), fmt.Sprintf("%v %s %#v", s, s, s), string(j), string(y),
	} {
		if want := "<secret>"; !strings.Contains(got, want) || strings.Contains(got, "hunter2") {
			t.Errorf("leaks or lacks %q: %s", want, got)
		}
	}
	if Secret("").String() != "" {
		t.Error("empty Secret should print empty")
	}
}

func TestHoldsSecret(t *testing.T) {
	for v, want := range map[string]bool{
		`org.apache.kafka.common.security.plain.PlainLoginModule required username="a" password="x";`: true,
		"host=db dbname=app password=x":                 true,
		"host=db dbname=app PASSWORD = 'x'":             true,
		"postgresql://alice:pw@db/app":                  true,
		"postgresql://alice@db/app?sslmode=verify-full": false,
		"https://example.com/a:b@c":                     false,
		"clicks":                                        false,
		"tokenizer: whitespace":                         false,
		"the secret garden":                             false,
		"api token: abc":                                true,
		"":                                              false,
	} {
		if got := HoldsSecret(v); got != want {
			t.Errorf("HoldsSecret(%q) = %v, want %v", v, got, want)
		}
	}
}
