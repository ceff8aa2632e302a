// respond.go writes the proxy's own JSON answers and errors.

package proxy

import (
	"encoding/json"
	"net/http"
	"time"
)

// writeJSON writes v as JSON with status, never cached.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // an error means the client went away
}

// apiError is an error in the shape OpenAI's API answers with, which most
// SDKs know how to show.
type apiError struct {
	Error struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Code    string `json:"code"`
	} `json:"error"`
}

// writeError writes an error answered by the proxy itself.
func writeError(w http.ResponseWriter, status int, message, code string) {
	var e apiError
	e.Error.Message, e.Error.Type, e.Error.Code = message, "credpool_error", code
	writeJSON(w, status, e)
}

// refuse writes an error for a request the proxy will not serve, without
// reading its body, and closes the connection after it. Otherwise net/http
// would read up to 256 KiB of the body with no deadline, before the answer
// (to keep the connection) or after it, and a client that sends its body a
// byte at a time, or not at all, would hold a connection and a goroutine as
// long as it liked without ever presenting a token.
func refuse(w http.ResponseWriter, r *http.Request, status int, message, code string) {
	w.Header().Set("Connection", "close") // no draining for reuse
	if r.Body != nil && r.Body != http.NoBody {
		// The read net/http makes of the body when the handler returns, to
		// find its end, fails at once instead of waiting on the client.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	}
	writeError(w, status, message, code)
}
