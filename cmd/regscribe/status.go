package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/regscribe/regscribe/internal/config"
	"github.com/regscribe/regscribe/internal/queue"
)

func (c *cli) statusCmd() *cobra.Command {
	var format outputFormat
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the queue: jobs queued, in flight, waiting for a retry, dead letters and stranded",
		Long: `Shows what the queue holds (joins REGSCRIBE_NATS_URL): jobs queued, in flight,
waiting for a retry, dead letters and stranded, and the consumer's own facts
(redelivered, idle worker slots, ack wait, delivery limit).`,
		Example: `  regscribe status
  regscribe status --format json | jq .deadLetters`,
		GroupID:           groupTools,
		Args:              argsBetween(0, 0, "no arguments"),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: c.tool(func(ctx context.Context, cfg config.Config, _ []string) int {
			return status(ctx, cfg, format, c.stdout, c.stderr)
		}),
	}
	addFormatFlags(cmd, cmd.Flags(), &format, "one object")
	return cmd
}

// status shows what the queue holds: queued, in flight, waiting for a
// retry, stranded and given-up jobs, and the consumer's own facts.
func status(ctx context.Context, cfg config.Config, format outputFormat, stdout, stderr io.Writer) int {
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
	if format == formatJSON {
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
	if err := printSweeps(ctx, js, stdout); err != nil {
		fmt.Fprintln(stderr, "regscribe status: reconcile sweeps:", err)
		return 1
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
