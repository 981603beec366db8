package jobmanager

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestOriginCheck: state-changing requests a browser sends from another
// site are refused, whatever they carry; reads, same-origin requests and
// clients that are not browsers pass.
func TestOriginCheck(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	h := withOriginCheck(ok)
	tests := []struct {
		name, method string
		hdr          map[string]string
		want         int
	}{
		{"CLI post", "POST", nil, 200},
		{"same-origin fetch", "PATCH", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "https://jm:8443"}, 200},
		{"typed into the address bar", "POST", map[string]string{"Sec-Fetch-Site": "none"}, 200},
		{"cross-site form", "POST", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil"}, 403},
		{"same-site sibling", "POST", map[string]string{"Sec-Fetch-Site": "same-site"}, 403},
		{"cross-site delete", "DELETE", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"cross-site link (GET)", "GET", map[string]string{"Sec-Fetch-Site": "cross-site"}, 200},
		{"old browser, other origin", "POST", map[string]string{"Origin": "https://evil"}, 403},
		{"old browser, null origin", "POST", map[string]string{"Origin": "null"}, 403},
		{"old browser, own origin", "POST", map[string]string{"Origin": "https://jm:8443"}, 200},
		{"old browser, other port", "POST", map[string]string{"Origin": "https://jm:9999"}, 403},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(tt.method, "https://jm:8443/jobs/x/stop", nil)
		for k, v := range tt.hdr {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Errorf("%s: %d, want %d (%s)", tt.name, rec.Code, tt.want, rec.Body)
		}
	}
}
