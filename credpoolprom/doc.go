// Package credpoolprom exports the state of a credpool.Transport as
// Prometheus metrics: how many keys are in rotation, cooling, dead or
// disabled, the attempts and their failures by reason, rotations, retries,
// waits and re-checks of dead keys, and a histogram of the upstream latency
// of every attempt.
//
// Create the Metrics first, so that the Transport can send its attempts
// through Base, then tell the Metrics which Transport to read, and register
// it:
//
//	m := credpoolprom.New(credpoolprom.WithConstLabels(prometheus.Labels{"pool": "openai"}))
//	t, err := credpool.New(keys, credpool.WithBase(m.Base(http.DefaultTransport)))
//	if err != nil {
//		log.Fatal(err)
//	}
//	m.Observe(t)
//	prometheus.MustRegister(m)
//	client := &http.Client{Transport: t}
//
// Everything but the histogram is read from Transport.Status and
// Transport.Stats when Prometheus scrapes, so the request path pays nothing
// for it; the histogram costs one clock read and one observation per attempt.
//
// The metrics, with the default namespace "credpool":
//
//	credpool_keys{state}                        gauge: keys per state (ok, exhausted, dead, disabled)
//	credpool_attempts_total                     counter: attempts sent upstream
//	credpool_attempt_failures_total{reason}     counter: failed attempts, by credpool.Reason
//	credpool_rotations_total                    counter: requests moved at once to another key
//	credpool_retries_total                      counter: retries after a backoff
//	credpool_waits_total                        counter: waits for a cooling key
//	credpool_wait_seconds_total                 counter: time spent in backoffs and waits
//	credpool_rechecks_total                     counter: re-checks of dead keys sent (credpool.WithRecheck)
//	credpool_revived_total                      counter: dead keys a re-check put back in rotation
//	credpool_upstream_latency_seconds{code}     histogram: time to response headers, by status class
//
// and, with WithPerKey(true), one set per key, labelled by its redacted
// label (never the key):
//
//	credpool_key_state{key,state}               gauge: 1 for the key's current state, 0 for the others
//	credpool_key_requests_total{key}            counter: attempts sent with the key
//	credpool_key_failures_total{key}            counter: attempts with the key that failed
//	credpool_key_remaining{key}                 gauge: the provider's last remaining-requests count, once seen
//
// The keys themselves never reach a metric: only the labels of
// Transport.Status do.
package credpoolprom
