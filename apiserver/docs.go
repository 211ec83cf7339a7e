package apiserver

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed docs
var docsFS embed.FS

//go:generate go test -run TestOpenAPIUpToDate -update .

// registerDocs serves the offline API reference at /docs: a small page
// that renders /openapi.json with plain JavaScript from embedded files,
// so it works without any network access beyond this server.
func (s *Server) registerDocs() {
	sub, err := fs.Sub(docsFS, "docs")
	if err != nil {
		// The embed pattern guarantees the directory.
		panic(err)
	}
	files := http.StripPrefix("/docs/", http.FileServerFS(sub))
	s.mux.HandleFunc("GET /docs", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/docs/", http.StatusMovedPermanently)
	})
	s.mux.Handle("GET /docs/", files)
}
