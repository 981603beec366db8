package jobmanager

import (
	"net/http"
)

// A filter wraps a handler. The REST API is one chain of filters in front of
// the router, assembled by buildHandlerChain; each filter has its own file
// (filter_*.go).
type filter func(http.Handler) http.Handler

// chain wraps h in filters, the first outermost.
func chain(h http.Handler, filters ...filter) http.Handler {
	for i := len(filters) - 1; i >= 0; i-- {
		h = filters[i](h)
	}
	return h
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
