package jobmanager

import (
	"net/http"
	"sync"
	"time"
)

// ReloadKind says what a Reloader re-reads.
type ReloadKind string

// What POST /admin/reload can reload.
const (
	// ReloadCertificates re-reads a keystore and its trust store.
	ReloadCertificates ReloadKind = "certificates"
	// ReloadTokenFile re-reads the bearer-token file.
	ReloadTokenFile ReloadKind = "token-file"
	// ReloadPolicy re-reads an authorization policy.
	ReloadPolicy ReloadKind = "policy"
)

// A Reloader re-reads one piece of configuration from its files now. An
// error leaves the previous one in force (each Reload builds the new one
// fully before swapping it in).
type Reloader struct {
	Name   string // "rest-tls", "internal-tls", "token-file", "acl-policy"
	Kind   ReloadKind
	Reload func() error
}

// reloadResult is one reloader's line of the POST /admin/reload answer.
type reloadResult struct {
	Name  string     `json:"name"`
	Kind  ReloadKind `json:"kind"`
	OK    bool       `json:"ok"`
	Error string     `json:"error,omitempty"`
}

// reloadStatus is the outcome of the last reload, for the metrics.
type reloadStatus struct {
	mu     sync.Mutex
	done   bool      // a reload happened
	ok     bool      // the last one reloaded everything
	lastOK time.Time // of the last successful one
}

func (s *reloadStatus) record(ok bool, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done, s.ok = true, ok
	if ok {
		s.lastOK = now
	}
}

func (s *reloadStatus) snapshot() (done, ok bool, lastOK time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done, s.ok, s.lastOK
}

// reloadAll runs every reloader, in order, and reports each: one failing
// does not keep the others from reloading.
func reloadAll(reloaders []Reloader) ([]reloadResult, bool) {
	results := make([]reloadResult, 0, len(reloaders))
	allOK := true
	for _, rl := range reloaders {
		res := reloadResult{Name: rl.Name, Kind: rl.Kind, OK: true}
		if err := rl.Reload(); err != nil {
			res.OK, res.Error, allOK = false, err.Error()+" (the previous one stays in force)", false
		}
		results = append(results, res)
	}
	return results, allOK
}

// adminReload re-reads certificates, trust stores, the token file and the
// policy now rather than at the next poll, and reports each: 200 when all
// reloaded, 500 when any failed (the others are reloaded all the same).
func (rs *restServer) adminReload(w http.ResponseWriter, r *http.Request) {
	var reloaders []Reloader
	if rs.sec != nil {
		reloaders = rs.sec.reloaders
	}
	results, ok := reloadAll(reloaders)
	now := time.Now().UTC()
	rs.jm.reloads.record(ok, now)
	status := http.StatusOK
	if !ok {
		status = http.StatusInternalServerError
	}
	writeJSON(w, status, map[string]any{"reloaded": results, "successful": ok, "time": now.Format(time.RFC3339)})
}
