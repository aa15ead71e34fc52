// Package bench measures what regscribe costs around the model: it starts
// the real parts in process (embedded NATS with JetStream on file storage,
// an embedded CNCF Distribution registry, the notifier, a worker pool with
// the parts it settles jobs through and the search index, all as
// `regscribe up` runs them) with a fake Ollama that
// answers after a fixed latency L and serves at most C requests at once,
// pushes generated photos the way `oras push` does, and reports throughput
// against the model's ceiling C/L, the latency regscribe adds per photo,
// CPU time per photo, peak memory, the notifier's ingest rate, and the same
// photos described by the design of the conference demo regscribe grew
// from (one photo at a time, inside the registry's notification request).
//
// [Run] measures; [WriteTable] prints; [Main] is `regscribe bench`. Timings
// are reported and judged against issue 8's targets ([Report.Targets]),
// never asserted by tests.
//
// It owns nothing regscribe runs: it wires the real packages as
// cmd/regscribe does and changes none of them.
package bench
