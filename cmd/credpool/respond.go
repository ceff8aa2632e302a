// respond.go writes the proxy's own JSON answers and errors.

package main

import (
	"encoding/json"
	"net/http"
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
