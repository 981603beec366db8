package main

import (
	"fmt"
	"strings"

	"github.com/sluice-dev/sluice/internal/config"
)

// clientKeyPrefixes are the configuration keys the client itself reads
// (where the REST API is and how to trust it), as Flink's CLI does.
var clientKeyPrefixes = []string{"rest.", "security.ssl.rest.", "security.ssl.verify-hostname", "security.ssl.protocol", "security.ssl.algorithms"}

// splitRunDefines sorts the -D settings of `sluice run` as `flink run -D`
// does: keys a job may set (parallelism.default, restart-strategy.*) go
// with the job, the client's own keys configure the client, and any other
// key is refused: it is a cluster setting that cannot apply to one job,
// and accepting it silently would mislead.
func splitRunDefines(defines []string) (job map[string]string, client []string, err error) {
	for _, d := range defines {
		k, v, ok := strings.Cut(d, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, nil, fmt.Errorf("-D %s: want key=value", d)
		}
		key, known := config.Lookup(k)
		switch {
		case known && key.Job:
			if job == nil {
				job = map[string]string{}
			}
			job[key.Name] = v
		case isClientKey(k) || (known && isClientKey(key.Name)):
			client = append(client, d)
		case !known:
			// Unknown keys are the client configuration's to report (a
			// warning, or an error under security.).
			client = append(client, d)
		default:
			return nil, nil, fmt.Errorf("-D %s: a cluster setting, which cannot apply to one job; a job may set %s (set cluster settings in the cluster's configuration)",
				k, strings.Join(config.JobKeys(), ", "))
		}
	}
	return job, client, nil
}

func isClientKey(k string) bool {
	for _, p := range clientKeyPrefixes {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}
