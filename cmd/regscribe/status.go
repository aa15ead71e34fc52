package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/regscribe/regscribe/internal/config"
	"github.com/regscribe/regscribe/internal/queue"
)

// status shows what the queue holds: queued, in flight, waiting for a
// retry, stranded and given-up jobs, and the consumer's own facts.
func status(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer, _ *slog.Logger) int {
	fs := flag.NewFlagSet("regscribe status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: regscribe status [--json]")
		fs.PrintDefaults()
	}
	if done, code := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	js, closeNATS, err := connectJetStream(cfg, "regscribe status")
	if err != nil {
		fmt.Fprintln(stderr, "regscribe status:", err)
		return 1
	}
	defer closeNATS()
	st, err := queue.ReadStatus(ctx, js)
	if err != nil {
		fmt.Fprintf(stderr, "regscribe status: %v (is regscribe up, or NATS at %s?)\n", err, cfg.NATSURL)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(st)
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	for _, row := range []struct {
		name string
		n    uint64
		note string
	}{
		{"queued", st.Queued, "not yet delivered to a worker"},
		{"in flight", st.InFlight, "delivered, not yet settled"},
		{"waiting for a retry", st.WaitingRetry, "failed, retried after a delay"},
		{"dead letters", st.Dead, "given up: regscribe failed list"},
		{"stranded", st.Stranded, "never delivered again; the workers make them dead letters"},
	} {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", row.name, row.n, row.note)
	}
	_ = tw.Flush()
	for _, c := range st.Consumers {
		limit := "none"
		if c.MaxDeliver > 0 {
			limit = fmt.Sprint(c.MaxDeliver)
		}
		fmt.Fprintf(stdout, "consumer %s: %d redelivered, %d idle worker slots, ack wait %s, delivery limit %s\n",
			c.Name, c.Redelivered, c.WaitingPulls, c.AckWait, limit)
	}
	return 0
}

// connectJetStream connects a command to REGSCRIBE_NATS_URL's JetStream.
func connectJetStream(cfg config.Config, name string) (jetstream.JetStream, func(), error) {
	nc, err := connectNATS(cfg, name)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return js, nc.Close, nil
}
