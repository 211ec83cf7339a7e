// Package ui holds Ferry's browser management UI. Its built assets are
// embedded in the ferry binary and served by the API server.
package ui

import (
	"embed"
	"io/fs"
)

//go:embed static
var static embed.FS

// Assets returns the UI's files, rooted at the directory that holds index.html.
func Assets() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		// The embed pattern above guarantees the directory exists.
		panic(err)
	}
	return sub
}
