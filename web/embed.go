// Package web holds the dashboard: its TypeScript sources (src/), built by
// `make web` into dist/, which is committed so that `go build` alone works
// on a fresh clone; `make web-check` rebuilds and fails if dist/ is stale.
package web

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

// Dist is the built dashboard: index.html and assets/.
func Dist() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // dist is embedded at build time: it exists
	}
	return sub
}
