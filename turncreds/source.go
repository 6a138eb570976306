package turncreds

// SourceAppName is the Caddy app whose secrets and URIs a Config falls back
// on when it names none of its own: the embedded TURN server.
const SourceAppName = "turn"

// Source supplies secrets and URIs to a Config that has none of its own.
// The embedded TURN app implements it; this package only depends on the
// interface so that it never imports the app.
type Source interface {
	// TURNSecrets returns the accepted shared secrets; the first one signs.
	TURNSecrets() []string
	// ICEURIs returns the stun: and the turn:/turns: URIs under which a client
	// that reached the site at host (a hostname or IP, no port) finds the server.
	ICEURIs(host string) (stun, turn []string)
}
