# targets.awk reads `go test -bench` output and prints each performance
# target of the README with its measured value, from medians.
function median(name, metric,    n, i, j, t, v) {
	n = cnt[name, metric]
	if (n == 0) return -1
	for (i = 1; i <= n; i++) v[i] = val[name, metric, i]
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
	return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
function check(label, value, op, limit,    ok) {
	ok = (op == "<=") ? value <= limit : value >= limit
	printf "| %s | %.3g | %s %s | %s |\n", label, value, op, limit, ok ? "met" : "MISSED"
}
/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name)
	for (i = 3; i < NF; i += 2) { m = $(i + 1); cnt[name, m]++; val[name, m, cnt[name, m]] = $i }
}
END {
	s = "BenchmarkSuccess/impl="
	bare = median(s "bare", "ns/op")
	fl = median(s "floor", "ns/op") - bare
	cp = median(s "credpool", "ns/op") - bare
	print "| target | measured | limit | |"
	print "|---|---|---|---|"
	check("success overhead / floor's", cp / fl, "<=", 1.25)
	check("success overhead / oauth2's", cp / (median(s "oauth2", "ns/op") - bare), "<=", 0.85)
	check("success overhead / retryablehttp's", cp / (median(s "retryablehttp", "ns/op") - bare), "<=", 0.85)
	# The same from BenchmarkSuccessPaired, whose rows take turns within
	# microseconds of each other: steadier on a shared machine.
	q = "BenchmarkSuccessPaired"
	if (cnt[q, "ns/credpool"] > 0) {
		qb = median(q, "ns/bare")
		qc = median(q, "ns/credpool") - qb
		check("paired: success overhead / floor's", qc / (median(q, "ns/floor") - qb), "<=", 1.25)
		check("paired: success overhead / oauth2's", qc / (median(q, "ns/oauth2") - qb), "<=", 0.85)
		check("paired: success overhead / retryablehttp's", qc / (median(q, "ns/retryablehttp") - qb), "<=", 0.85)
	}
	check("allocs/op over floor's", median(s "credpool", "allocs/op") - median(s "floor", "allocs/op"), "<=", 1)
	p = "BenchmarkSuccessParallel/impl="
	pb = median(p "bare", "ns/op")
	check("parallel overhead / floor's", (median(p "credpool", "ns/op") - pb) / (median(p "floor", "ns/op") - pb), "<=", 1.25)
	split("round_robin fill_first least_used random", st, " ")
	for (k = 1; k <= 4; k++) {
		one = median("BenchmarkStrategy/strategy=" st[k] "/keys=1", "ns/op") - bare
		many = median("BenchmarkStrategy/strategy=" st[k] "/keys=10000", "ns/op") - bare
		check(st[k] " overhead, 10k keys / 1 key", many / one, "<=", 1.5)
		# The same from the key choice alone, which is the only part of the
		# path that depends on the pool's size, and steady enough to trust.
		c = "BenchmarkChoice/strategy=" st[k] "/keys="
		if (cnt[c "1", "ns/op"] > 0)
			check(st[k] " the same, from the choice alone", (one + median(c "10000", "ns/op") - median(c "1", "ns/op")) / one, "<=", 1.5)
	}
	check("loopback throughput / bare http.Transport", median("BenchmarkLoopback", "credpool/bare"), ">=", 0.95)
	check("failover attempts per request", median("BenchmarkFailover", "attempts/op"), "<=", 2)
	check("failover wall time, ms (no sleep)", median("BenchmarkFailover", "ns/op") / 1e6, "<=", 1)
	check("heap per idle key, bytes", median("BenchmarkMemoryPerKey", "B/key"), "<=", 512)
}
