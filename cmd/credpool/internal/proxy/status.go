// status.go serves the pool's state as JSON (/credpool/status) and an
// operator's changes to one key (/credpool/reset, /credpool/disable and
// /credpool/enable, each ?key=<index>).

package proxy

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/credpool/credpool"
)

// keyStatus is one key in /credpool/status: its redacted label, never the
// key. Fields that do not apply are null.
type keyStatus struct {
	Index     int            `json:"index"` // the key's position in the pool, for ?key= of the key actions
	Label     string         `json:"label"`
	State     credpool.State `json:"state"`
	Reason    *string        `json:"reason"`    // why it last left ok; null if it never has
	ResetAt   *time.Time     `json:"reset_at"`  // when a cooling key returns
	Remaining *int64         `json:"remaining"` // the provider's last remaining-requests count
	Requests  uint64         `json:"requests"`
	Failures  uint64         `json:"failures"`
	Strikes   int            `json:"strikes"` // cooldowns in a row after which the key failed again at once
}

// newKeyStatus converts a credpool.KeyStatus.
func newKeyStatus(i int, s credpool.KeyStatus) keyStatus {
	k := keyStatus{Index: i, Label: s.Label, State: s.State, Requests: s.Requests, Failures: s.Failures, Strikes: s.Strikes}
	if s.Reason != "" {
		r := string(s.Reason)
		k.Reason = &r
	}
	if !s.ResetAt.IsZero() {
		t := s.ResetAt.UTC()
		k.ResetAt = &t
	}
	if s.Remaining >= 0 {
		n := s.Remaining
		k.Remaining = &n
	}
	return k
}

// poolStatus is /credpool/status: every key, and the store's health.
type poolStatus struct {
	Keys  []keyStatus  `json:"keys"`
	Store *storeStatus `json:"store"` // null without --store
}

// storeStatus is what the pool knows of its store.
type storeStatus struct {
	Up          bool       `json:"up"`            // its last answer was a success
	Loaded      bool       `json:"loaded"`        // the stored states have been loaded
	LastSync    *time.Time `json:"last_sync"`     // when it last answered; null before it ever did
	LastSyncAge *float64   `json:"last_sync_age"` // seconds since then
}

// newStoreStatus converts the pool's StoreHealth, if it has a store.
func newStoreStatus(pool *credpool.Transport, now time.Time) *storeStatus {
	h, ok := pool.StoreHealth()
	if !ok {
		return nil
	}
	s := &storeStatus{Up: h.Up, Loaded: h.Loaded}
	if !h.LastSync.IsZero() {
		t, age := h.LastSync.UTC(), now.Sub(h.LastSync).Seconds()
		s.LastSync, s.LastSyncAge = &t, &age
	}
	return s
}

// status answers GET /credpool/status with every key's state and the
// store's health.
func (p *Server) status(w http.ResponseWriter, _ *http.Request) {
	all := p.pool.Keys()
	out := poolStatus{Keys: make([]keyStatus, len(all)), Store: newStoreStatus(p.pool, time.Now())}
	for i, s := range all {
		out.Keys[i] = newKeyStatus(i, s)
	}
	writeJSON(w, http.StatusOK, out)
}

// keyAction is an operator's change to one key, answered at
// POST /credpool/<name>?key=<index>. The three actions share a handler
// (keyActions, serveAction) so that they parse, refuse, log and answer
// alike.
type keyAction struct {
	name  string                               // the path's last element
	done  string                               // the log message, without the key
	apply func(*credpool.Transport, int) error // the Transport's method
}

// keyActions are the key actions the proxy serves:
//
//   - reset puts a dead or cooling key back in rotation; a disabled key
//     stays disabled, since only enable reverses an operator's decision.
//   - disable takes a key out of rotation, whatever its state, until enable:
//     no cooldown, reset or re-check brings it back, and with --store every
//     replica holds to it.
//   - enable puts a disabled key back in rotation, with a clean past; any
//     other key is left as it is.
var keyActions = []keyAction{
	{"reset", "credpool proxy: key reset on request", (*credpool.Transport).ResetKey},
	{"disable", "credpool proxy: key disabled on request", (*credpool.Transport).DisableKey},
	{"enable", "credpool proxy: key enabled on request", (*credpool.Transport).EnableKey},
}

// serveAction answers POST /credpool/<a.name>?key=<index>: it applies the
// action to the key, logs who asked (by the key's label, never the key), and
// answers the key's new status. A missing or malformed index is a 400, an
// index the pool has no key at a 404.
func (p *Server) serveAction(a keyAction) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i, err := strconv.Atoi(r.URL.Query().Get("key"))
		if err != nil {
			writeError(w, http.StatusBadRequest, a.name+" needs ?key=<index>, the key's index in /credpool/status", "bad_request")
			return
		}
		if err := a.apply(p.pool, i); err != nil {
			writeError(w, http.StatusNotFound, err.Error(), "no_such_key")
			return
		}
		s := newKeyStatus(i, p.pool.Keys()[i])
		p.log.LogAttrs(r.Context(), slog.LevelInfo, a.done,
			slog.String("key", s.Label), slog.Int("index", i), slog.String("state", string(s.State)),
			slog.String("remote", r.RemoteAddr))
		writeJSON(w, http.StatusOK, s)
	})
}
