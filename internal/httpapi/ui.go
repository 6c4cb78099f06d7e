package httpapi

import (
	"embed"
	"net/http"
)

// ui holds the dashboard: one HTML page, its script and its stylesheet,
// all self-contained (no CDN, no build step).
//
//go:embed ui/index.html ui/app.js ui/app.css
var ui embed.FS

func (s *Server) handleUI(name, contentType string) http.HandlerFunc {
	body, err := ui.ReadFile("ui/" + name)
	if err != nil {
		panic("httpapi: embedded " + name + " missing: " + err.Error()) // a build defect
	}
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", "no-cache")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(body)
	}
}
