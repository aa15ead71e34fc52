package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/regscribe/regscribe/internal/config"
	"github.com/regscribe/regscribe/internal/queue"
)

func (c *cli) failedCmd() *cobra.Command {
	var format outputFormat
	var all bool
	var limit int
	cmd := &cobra.Command{
		Use:   "failed",
		Short: "List the jobs given up (dead letters) with their reasons, or queue them again",
		Long: `Lists the jobs given up (dead letters) with their reasons, or queues them
again once their cause is fixed (joins REGSCRIBE_NATS_URL).`,
		Example: `  regscribe failed list
  regscribe failed list --format json
  regscribe failed retry 12 15
  regscribe failed retry --all`,
		GroupID:           groupTools,
		Args:              subcommandArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("which? list or retry")
		},
	}
	list := &cobra.Command{
		Use:               "list",
		Short:             "List the jobs given up, with their reasons",
		Example:           "  regscribe failed list\n  regscribe failed list --limit 0 --format json",
		Args:              argsBetween(0, 0, "no arguments"),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: c.tool(func(ctx context.Context, cfg config.Config, _ []string) int {
			return failedList(ctx, cfg, limit, format, c.stdout, c.stderr)
		}),
	}
	addFormatFlags(list, list.Flags(), &format, "an array of dead letters")
	list.Flags().IntVar(&limit, "limit", 100, "list the newest `N` (0: all)")
	retry := &cobra.Command{
		Use:               "retry ID... | --all",
		Short:             "Queue jobs given up again, by their ID in 'regscribe failed list'",
		Example:           "  regscribe failed retry 12 15\n  regscribe failed retry --all",
		ValidArgsFunction: cobra.NoFileCompletions,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && !all {
				return errors.New("takes the IDs of 'regscribe failed list', or --all")
			}
			for _, a := range args {
				if _, err := strconv.ParseUint(a, 10, 64); err != nil {
					return fmt.Errorf("%q is not an ID from 'regscribe failed list'", a)
				}
			}
			return nil
		},
		RunE: c.tool(func(ctx context.Context, cfg config.Config, args []string) int {
			return failedRetry(ctx, cfg, args, all, c.stdout, c.stderr)
		}),
	}
	retry.Flags().BoolVar(&all, "all", false, "retry every failed job")
	cmd.AddCommand(list, retry)
	return cmd
}

// retryBatch is how many dead letters `failed retry --all` reads and
// queues again at a time.
const retryBatch = 100

// joinDeadLetters joins NATS for `regscribe failed` and ensures the
// streams (with the configured retention).
func joinDeadLetters(ctx context.Context, cfg config.Config, stderr io.Writer) (jetstream.JetStream, func(), bool) {
	js, closeNATS, err := connectJetStream(cfg, "regscribe failed")
	if err != nil {
		fmt.Fprintln(stderr, "regscribe failed:", err)
		return nil, nil, false
	}
	if _, err := queue.EnsureStream(ctx, js, streamOptions(cfg)); err != nil {
		closeNATS()
		fmt.Fprintf(stderr, "regscribe failed: %v (is regscribe up, or NATS at %s?)\n", err, cfg.NATSURL)
		return nil, nil, false
	}
	return js, closeNATS, true
}

// failedList lists the newest limit dead letters (0: all), oldest first,
// and says on stderr when there are more.
func failedList(ctx context.Context, cfg config.Config, limit int, format outputFormat, stdout, stderr io.Writer) int {
	if limit < 0 {
		fmt.Fprintln(stderr, "regscribe failed list: --limit must not be negative (0: all)")
		return 2
	}
	js, closeNATS, ok := joinDeadLetters(ctx, cfg, stderr)
	if !ok {
		return 1
	}
	defer closeNATS()
	var letters []queue.DeadLetter
	var total uint64
	var err error
	if limit == 0 {
		letters, err = queue.DeadLetters(ctx, js)
		total = uint64(len(letters))
	} else {
		var p queue.DeadLetterPage
		p, err = queue.ReadDeadLetters(ctx, js, queue.DeadLetterWindow{Limit: limit})
		letters, total = p.Letters, p.Total
		slices.Reverse(letters)
	}
	if err != nil {
		fmt.Fprintln(stderr, "regscribe failed:", err)
		return 1
	}
	if uint64(len(letters)) < total {
		fmt.Fprintf(stderr, "regscribe failed list: the newest %d of %d failed jobs (--limit 0 lists all)\n", len(letters), total)
	}
	if format == formatJSON {
		if letters == nil {
			letters = []queue.DeadLetter{}
		}
		writeIndented(stdout, letters)
		return 0
	}
	if len(letters) == 0 {
		fmt.Fprintln(stdout, "no failed jobs")
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tFAILED\tATTEMPTS\tPHOTO\tREASON")
	for _, d := range letters {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\n", d.Seq, d.FailedAt.Format("2006-01-02 15:04:05"), d.Attempts, d.Job.Ref(), d.Error)
	}
	_ = tw.Flush()
	return 0
}

// failedRetry queues again the jobs of the dead letters ids, or of all of
// them (those stored when it starts, retryBatch at a time).
func failedRetry(ctx context.Context, cfg config.Config, ids []string, all bool, stdout, stderr io.Writer) int {
	js, closeNATS, ok := joinDeadLetters(ctx, cfg, stderr)
	if !ok {
		return 1
	}
	defer closeNATS()
	var done []queue.Retried
	for _, a := range ids {
		seq, _ := strconv.ParseUint(a, 10, 64) // checked by the command's Args
		job, err := queue.RetryDead(ctx, js, seq)
		done = append(done, queue.Retried{Seq: seq, Job: job, Err: err})
	}
	code := 0
	report := func(done []queue.Retried) {
		for _, r := range done {
			if r.Err != nil {
				fmt.Fprintln(stderr, "regscribe failed retry:", r.Err)
				code = 1
				continue
			}
			fmt.Fprintf(stdout, "queued again: %d %s\n", r.Seq, r.Job.Ref())
		}
	}
	report(done)
	n := len(done)
	if all {
		// Up to the last dead letter now: a job queued again that fails
		// again is a new dead letter, not retried in a loop.
		st, err := js.Stream(ctx, queue.DeadStream)
		var info *jetstream.StreamInfo
		if err == nil {
			info, err = st.Info(ctx)
		}
		if err != nil {
			fmt.Fprintln(stderr, "regscribe failed retry:", err)
			return 1
		}
		last := info.State.LastSeq
		for from := info.State.FirstSeq; from != 0 && info.State.Msgs > 0; {
			batch, next, err := queue.RetryDeadLetters(ctx, js, from, last, retryBatch)
			if err != nil {
				fmt.Fprintln(stderr, "regscribe failed retry:", err)
				return 1
			}
			report(batch)
			n += len(batch)
			from = next
		}
	}
	if n == 0 {
		fmt.Fprintln(stdout, "no failed jobs")
	}
	return code
}
