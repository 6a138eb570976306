// Package webclient embeds the browser client (an ES module and its type
// declarations) that the signaling handler serves at <route>/client.js.
package webclient

import (
	"embed"
	"net/http"
	"path"
	"strings"
)

//go:embed client.js client.d.ts
var files embed.FS

// Served are the file names answered under the signaling route.
var Served = []string{"client.js", "client.d.ts"}

// Serve writes the embedded file named by the last element of r's path and
// reports whether there was one; other paths are left to the caller.
func Serve(w http.ResponseWriter, r *http.Request) bool {
	name := path.Base(r.URL.Path)
	found := false
	for _, s := range Served {
		found = found || s == name
	}
	if !found || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return false
	}
	ctype := "text/javascript; charset=utf-8"
	if strings.HasSuffix(name, ".d.ts") {
		ctype = "application/typescript; charset=utf-8"
	}
	w.Header().Set("Content-Type", ctype)
	// Short caching: the client changes with the server binary.
	w.Header().Set("Cache-Control", "public, max-age=300")
	http.ServeFileFS(w, r, files, name)
	return true
}
