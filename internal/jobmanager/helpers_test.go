package jobmanager

import (
	"net/http"
	"net/http/httptest"
)

func newRequest(method, path string) *http.Request { return httptest.NewRequest(method, path, nil) }
