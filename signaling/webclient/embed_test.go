package webclient

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestServe(t *testing.T) {
	js, _ := files.ReadFile("client.js")
	dts, _ := files.ReadFile("client.d.ts")
	tests := []struct {
		method, path string
		served       bool
		ctype        string
		body         []byte
	}{
		{"GET", "/rtc/client.js", true, "text/javascript; charset=utf-8", js},
		{"GET", "/rtc/client.d.ts", true, "application/typescript; charset=utf-8", dts},
		{"HEAD", "/rtc/client.js", true, "text/javascript; charset=utf-8", nil},
		{"GET", "/client.js", true, "text/javascript; charset=utf-8", js},
		{"POST", "/rtc/client.js", false, "", nil},
		{"GET", "/rtc/ws", false, "", nil},
		{"GET", "/rtc/embed.go", false, "", nil},
		{"GET", "/rtc/client.js.map", false, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			w := httptest.NewRecorder()
			served := Serve(w, httptest.NewRequest(tc.method, tc.path, nil))
			if served != tc.served {
				t.Fatalf("served = %v, want %v", served, tc.served)
			}
			if !served {
				if w.Body.Len() != 0 || len(w.Header()) != 0 {
					t.Fatalf("wrote %d bytes and headers %v for a path it did not serve", w.Body.Len(), w.Header())
				}
				return
			}
			if w.Code != http.StatusOK || w.Header().Get("Content-Type") != tc.ctype {
				t.Fatalf("got %d %q, want 200 %q", w.Code, w.Header().Get("Content-Type"), tc.ctype)
			}
			if tc.method == "GET" && w.Body.String() != string(tc.body) {
				t.Fatalf("body differs from the embedded file (%d bytes, want %d)", w.Body.Len(), len(tc.body))
			}
			if w.Header().Get("Cache-Control") == "" {
				t.Error("no Cache-Control")
			}
		})
	}
}

func TestServedFilesAreEmbedded(t *testing.T) {
	for _, name := range Served {
		if b, err := files.ReadFile(name); err != nil || len(b) == 0 {
			t.Errorf("%s: %v (%d bytes)", name, err, len(b))
		}
	}
}
