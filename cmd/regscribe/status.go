package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/regscribe/regscribe/internal/config"
	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/outage"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/reconcile"
)

func (c *cli) statusCmd() *cobra.Command {
	var format outputFormat
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the model's outages, the queue (jobs queued, in flight, waiting, dead, stranded), what is not an image and the last sweeps",
		Long: `Shows first, when the workers cannot reach their model, since when, why and
how many jobs wait for it; then what the queue holds (joins REGSCRIBE_NATS_URL): jobs queued, in flight,
waiting for a retry, dead letters and stranded, the manifests read and found
to hold no photo (not images: regscribe show REF says why), and the
consumer's own facts (redelivered, idle worker slots, ack wait, delivery
limit); then the last reconcile sweep of each registry: when, how long it
took, what it found and caught, or that it failed and why.

With --format json (or --json) it prints one object: the queue's numbers
(messages, queued, inFlight, waitingRetry, stranded, deadLetters, consumers),
"refused" (the manifests that are not images), "modelOutages" (model, since,
cause, seen, jobsWaiting), and "sweeps", one object per
registry: registry, started and ended (RFC 3339), tookSeconds, counts (tags,
unchanged, manifests, queued, alreadyQueued, failedBefore, errors, ...), and
when the sweep failed, error and failures (how many sweeps of the registry
failed in a row).`,
		Example: `  regscribe status
  regscribe status --format json | jq .deadLetters
  regscribe status --json | jq '.sweeps[] | select(.error)'`,
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
	refused, err := feed.Refusals(ctx, js)
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		fmt.Fprintln(stderr, "regscribe status:", err)
		return 1
	}
	sweeps, err := reconcile.Sweeps(ctx, js)
	if err != nil {
		fmt.Fprintln(stderr, "regscribe status: reconcile sweeps:", err)
		return 1
	}
	outages, err := outage.Read(ctx, js)
	if err != nil {
		fmt.Fprintln(stderr, "regscribe status:", err)
		return 1
	}
	waiting := st.Queued + st.InFlight + st.WaitingRetry
	if format == formatJSON {
		rec := statusRecord{Status: st, Refused: refused, Sweeps: []sweepRecord{}, ModelOutages: []outageRecord{}}
		for _, o := range outages {
			rec.ModelOutages = append(rec.ModelOutages, outageRecord{Outage: o, JobsWaiting: waiting})
		}
		for _, s := range sweeps {
			rec.Sweeps = append(rec.Sweeps, sweepRecord{Sweep: s, TookSeconds: s.Took().Seconds()})
		}
		writeIndented(stdout, rec)
		return 0
	}
	for _, o := range outages {
		fmt.Fprintln(stdout, o.Line(waiting))
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
		{"not images", refused, "manifests that hold no photo: regscribe show REF says why"},
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
	printSweeps(sweeps, stdout)
	return 0
}

// statusRecord is `regscribe status --format json`: the queue's numbers
// and the last reconcile sweep of each registry.
type statusRecord struct {
	queue.Status
	// Refused counts the manifests the workers found no photo in.
	Refused uint64        `json:"refused"`
	Sweeps  []sweepRecord `json:"sweeps"`
	// ModelOutages are the models the workers cannot reach.
	ModelOutages []outageRecord `json:"modelOutages"`
}

// outageRecord is a model the workers cannot reach, and the jobs that wait
// (queued, in flight and waiting for a retry).
type outageRecord struct {
	outage.Outage
	JobsWaiting uint64 `json:"jobsWaiting"`
}

// sweepRecord is a registry's last sweep with how long it took.
type sweepRecord struct {
	reconcile.Sweep
	TookSeconds float64 `json:"tookSeconds"`
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
