// page.go serves the status page, page.html, embedded in the binary, with a
// Content-Security-Policy that allows its own inline script and style and
// nothing from anywhere else.

package proxy

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"net/http"
)

//go:embed page.html
var pageHTML []byte

// pageCSP lets the page run its own script and style, identified by their
// hashes, fetch from the proxy, and do nothing else.
var pageCSP = fmt.Sprintf("default-src 'none'; script-src %s; style-src %s; connect-src 'self'; img-src data:; "+
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	inlineHash(pageHTML, "script"), inlineHash(pageHTML, "style"))

// inlineHash returns the CSP source ('sha256-...') of the first inline
// <tag> element of page.
func inlineHash(page []byte, tag string) string {
	_, rest, _ := bytes.Cut(page, []byte("<"+tag+">"))
	body, _, ok := bytes.Cut(rest, []byte("</"+tag+">"))
	if !ok {
		panic("page.html has no <" + tag + "> element")
	}
	sum := sha256.Sum256(body)
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// pageHandler serves the status page. It holds no data (it fetches
// /credpool/status with the token it is given), so it needs no token itself.
func pageHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", pageCSP)
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		_, _ = w.Write(pageHTML)
	})
}
