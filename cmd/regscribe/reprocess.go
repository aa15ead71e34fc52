package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/regscribe/regscribe/internal/config"
	"github.com/regscribe/regscribe/internal/embedded"
	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/lease"
	"github.com/regscribe/regscribe/internal/queue"
	regclient "github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/reprocess"
	"github.com/regscribe/regscribe/worker"
)

// reprocessFlags are the command line of `regscribe reprocess`.
type reprocessFlags struct {
	all, force, retryFailed bool
	missing                 bool
	tag                     string
	wait, local, dryRun     bool
	format                  outputFormat
	progress                bool
	plain                   bool
	concurrency             int
	// set says which flags the command line set.
	set func(name string) bool
}

func (c *cli) reprocessCmd() *cobra.Command {
	var f reprocessFlags
	cmd := &cobra.Command{
		Use:   "reprocess REGISTRY/REPOSITORY | --all REGISTRY",
		Short: "Describe the photos already in a repository or registry",
		Long: `Queues a job for every photo of a repository (or of every repository) that
has no description from the configured model, and follows the jobs to the end.
The descriptions it finds already (annotations and referrers, by any model or a
person) are put on the description stream for search ("indexed"), without a
model call.
Exit status: 0 when nothing failed, 1 when a photo failed, could not be read or
is still running when waiting stopped, 2 for a usage error.

With --format json it prints JSON lines: "queued", one "photo" line per photo
that ends (with --dry-run: one "item" line per photo), then the "summary".`,
		Example: `  regscribe reprocess localhost:5000/photos/archive
  regscribe reprocess localhost:5000/photos/archive --wait --format json
  regscribe reprocess --all localhost:5000
  regscribe reprocess localhost:5000/photos/archive --dry-run --tag 'v*'
  regscribe reprocess localhost:5000/photos/archive --local`,
		GroupID:           groupTools,
		Args:              argsBetween(1, 1, "one REGISTRY/REPOSITORY, or --all REGISTRY"),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: c.tool(func(ctx context.Context, cfg config.Config, args []string) int {
			return reprocessRun(ctx, cfg, f, args[0], c.stdout, c.stderr, c.log)
		}),
	}
	fs := cmd.Flags()
	fs.BoolVar(&f.missing, "missing", true, "queue only photos without a description from the configured model")
	fs.BoolVar(&f.force, "force", false, "queue every photo, to describe it again")
	fs.BoolVar(&f.all, "all", false, "every repository of REGISTRY (through its catalog API)")
	fs.StringVar(&f.tag, "tag", "", "only tags matching this glob (e.g. 'v*')")
	fs.BoolVar(&f.retryFailed, "retry-failed", false, "also queue photos whose earlier job was given up (regscribe failed list)")
	fs.BoolVar(&f.wait, "wait", isTerminal(c.stdout), "wait until every queued job has a result (default: when stdout is a terminal)")
	addFormatFlags(cmd, fs, &f.format, "JSON lines: one per photo that ends, then the summary")
	fs.BoolVar(&f.dryRun, "dry-run", false, "list what would be queued; queue nothing")
	fs.BoolVar(&f.local, "local", false, "run workers in this process (implies --wait); without NATS at REGSCRIBE_NATS_URL, an embedded one")
	fs.BoolVar(&f.progress, "progress", false, "show the progress bar even when stderr is not a terminal")
	fs.BoolVar(&f.plain, "plain-http", false, "reach the registry over plain HTTP")
	fs.IntVar(&f.concurrency, "concurrency", 16, "registry requests in flight while planning")
	f.set = fs.Changed
	return cmd
}

// reprocessRun is `regscribe reprocess` with its flags parsed; raw is its argument.
func reprocessRun(ctx context.Context, cfg config.Config, f reprocessFlags, raw string, stdout, stderr io.Writer, log *slog.Logger) int {
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "regscribe reprocess: "+format+"\n", a...)
		return 2
	}
	switch {
	case f.set("missing") && f.missing && f.force:
		return usageErr("--missing and --force exclude each other")
	case f.set("missing") && !f.missing && !f.force:
		return usageErr("--missing=false means --force; say --force")
	case f.concurrency < 1:
		return usageErr("--concurrency must be at least 1")
	case f.local && f.dryRun:
		return usageErr("--local and --dry-run exclude each other")
	}
	if f.local {
		if f.set("wait") && !f.wait {
			return usageErr("--local waits for its workers: drop --wait=false")
		}
		f.wait = true
	}
	host, repository, err := reprocessTarget(raw, f.all)
	if err != nil {
		return usageErr("%v", err)
	}
	// A registry the person names on their own command line is configuration
	// (parseTarget takes a reference: with --all, any repository name does).
	t, err := parseTarget(cfg, host+"/"+cmp.Or(repository, "all"), f.plain)
	if err != nil {
		return usageErr("%v", err)
	}
	// Jobs, leases and found descriptions name the registry as configured.
	host = t.client.Canonical(t.ref.Registry)
	model, err := newDescriber(cfg)
	if err != nil {
		return usageErr("%v", err)
	}

	fail := func(err error) int {
		fmt.Fprintln(stderr, "regscribe reprocess:", err)
		return 1
	}
	// NATS first: a run that cannot queue stops before listing 10,000 tags.
	conn, natsErr := reprocessNATS(cfg, f.local)
	if natsErr != nil && !f.dryRun {
		return fail(natsErr)
	}
	var js jetstream.JetStream
	if conn != nil {
		defer conn.close()
		js = conn.js
		so := streamOptions(cfg)
		so.Replicas = conn.replicas(cfg)
		if _, err := queue.EnsureStream(ctx, js, so); err != nil {
			return fail(err)
		}
		// The descriptions found already are put on the description stream.
		if _, err := feed.EnsureStream(ctx, js, conn.replicas(cfg)); err != nil {
			return fail(err)
		}
	}

	// One run per repository at a time, across processes: a lease on the
	// repository (with --all, on each the plan lists) before anything is queued.
	batch := reprocess.NewBatch()
	claim := func(repositories ...string) (func(), error) {
		if f.dryRun || js == nil {
			return func() {}, nil
		}
		leases, err := lease.Open(ctx, js, conn.replicas(cfg), 0)
		if err != nil {
			return nil, err
		}
		held, release, err := reprocess.Claim(ctx, leases, host, repositories, reprocess.NewHolder(batch, "regscribe reprocess"))
		if err != nil {
			return nil, err
		}
		ctx = held
		return release, nil
	}
	if !f.all {
		release, err := claim(repository)
		if err != nil {
			return fail(err)
		}
		defer release()
	}
	out := &reprocessOutput{stdout: stdout, stderr: stderr, json: f.format == formatJSON, target: raw, model: model.Model()}
	items, err := reprocess.Plan(ctx, t.client, reprocess.PlanOptions{
		Registry: host, Repository: repository, Tag: f.tag, Model: model.Model(), Force: f.force, Concurrency: f.concurrency,
		Backfill: !f.dryRun,
	})
	if err != nil {
		return fail(err)
	}
	if f.all && len(items) == 0 {
		fmt.Fprintf(stderr, "regscribe reprocess: the catalog of %s lists no repository (a CNCF Distribution registry lists none unless its catalog.maxentries is above 0)\n", host)
	}
	if f.all {
		release, err := claim(reprocess.Repositories(items)...)
		if err != nil {
			return fail(err)
		}
		defer release()
	}
	switch {
	case f.force || f.retryFailed:
	case js == nil:
		fmt.Fprintf(stderr, "regscribe reprocess: %v; photos that failed before count as to queue\n", natsErr)
	default:
		dead, err := queue.DeadLetters(ctx, js)
		if err != nil {
			return fail(err)
		}
		reprocess.ExcludeFailed(items, dead)
	}
	if f.dryRun {
		return out.dryRun(items)
	}

	if f.local {
		stop, err := startLocalWorkers(ctx, cfg, conn, t.client, model, stderr, log)
		if err != nil {
			return fail(err)
		}
		defer stop()
	}
	out.batch = batch
	out.wait = f.wait
	out.bar = f.format != formatJSON && f.wait && (f.progress || isTerminal(stderr))
	runErr := reprocess.Run(ctx, js, items, reprocess.RunOptions{
		Batch: out.batch, Wait: f.wait, Referrer: cfg.Mode == string(worker.ModeReferrer), OnProgress: out.progress,
	})
	out.finishBar()
	return out.summary(items, f.wait, runErr)
}

// reprocessTarget splits REGISTRY/REPOSITORY (or REGISTRY, with --all).
func reprocessTarget(raw string, all bool) (host, repository string, err error) {
	host, repository, _ = strings.Cut(raw, "/")
	switch {
	case host == "":
		return "", "", fmt.Errorf("%q names no registry", raw)
	case all && repository != "":
		return "", "", fmt.Errorf("--all takes a registry (host[:port]), not %q", raw)
	case !all && repository == "":
		return "", "", fmt.Errorf("%q names no repository: REGISTRY/REPOSITORY, or --all REGISTRY", raw)
	case strings.ContainsAny(repository, ":@"):
		return "", "", fmt.Errorf("%q names a tag or digest: reprocess takes a repository (use --tag GLOB)", raw)
	}
	return host, repository, nil
}

// natsConn is the NATS connection of a run, and the embedded server when
// --local started one.
type natsConn struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	embedded *embedded.NATS
	dir      string
}

func (c *natsConn) replicas(cfg config.Config) int {
	if c.embedded != nil {
		return 1
	}
	return cfg.Replicas
}

func (c *natsConn) close() {
	c.nc.Close()
	if c.embedded != nil {
		c.embedded.Stop()
		_ = os.RemoveAll(c.dir)
	}
}

// reprocessNATS connects to REGSCRIBE_NATS_URL, failing fast (reprocess is
// a one-off command, not a service that waits for NATS). With local, a
// NATS that is not there is replaced by an embedded one in a temporary
// directory, in process only: nothing else is running, so the run is alone.
func reprocessNATS(cfg config.Config, local bool) (*natsConn, error) {
	nc, err := nats.Connect(cfg.NATSURL, nats.Name("regscribe reprocess"), nats.Timeout(3*time.Second))
	if err == nil {
		js, err := jetstream.New(nc)
		if err != nil {
			nc.Close()
			return nil, err
		}
		return &natsConn{nc: nc, js: js}, nil
	}
	if !local {
		return nil, fmt.Errorf("no NATS at %s (%v): start 'regscribe up', or use --local to run workers in this process", cfg.NATSURL, err)
	}
	dir, derr := os.MkdirTemp("", "regscribe-reprocess-")
	if derr != nil {
		return nil, derr
	}
	ns, serr := embedded.StartNATS(embedded.NATSOptions{StoreDir: dir, Listen: "off", ServerName: "regscribe-reprocess"})
	if serr != nil {
		_ = os.RemoveAll(dir)
		return nil, serr
	}
	nc, err = nats.Connect("", nats.InProcessServer(ns), nats.Name("regscribe reprocess"))
	if err == nil {
		var js jetstream.JetStream
		if js, err = jetstream.New(nc); err == nil {
			return &natsConn{nc: nc, js: js, embedded: ns, dir: dir}, nil
		}
		nc.Close()
	}
	ns.Stop()
	_ = os.RemoveAll(dir)
	return nil, fmt.Errorf("embedded nats: %w", err)
}

// startLocalWorkers runs a worker pool in this process on conn's queue
// (joining the other workers, if NATS is shared) until stop is called.
func startLocalWorkers(ctx context.Context, cfg config.Config, conn *natsConn, client *regclient.Client, model describer, stderr io.Writer, log *slog.Logger) (stop func(), err error) {
	if err := checkModel(ctx, cfg, model, log); err != nil {
		return nil, err
	}
	replicas := conn.replicas(cfg)
	cons, err := queue.EnsureConsumer(ctx, conn.js, queue.ConsumerOptions{AckWait: cfg.AckWait})
	if err != nil {
		return nil, err
	}
	shared, err := worker.OpenShared(ctx, conn.js, replicas)
	if err != nil {
		return nil, err
	}
	// Job by job logging would run through the progress bar: warnings and
	// errors only, unless debugging.
	level := cfg.LogLevel
	if level != "debug" && level != "error" {
		level = "warn"
	}
	opts := workerOptions(cfg, newLogger(stderr, level, cfg.LogFormat))
	shared.Use(&opts)
	w := worker.New(client, model, shared.Memory, opts)
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = w.Run(wctx, cons)
	}()
	return func() {
		cancel()
		<-done
	}, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// reprocessOutput prints a run: a progress bar on stderr, and text or JSON
// lines on stdout.
type reprocessOutput struct {
	stdout, stderr io.Writer
	json           bool
	target, model  string
	batch          string
	wait, bar      bool
	pb             *progressbar.ProgressBar
	total          int
}

// The JSON lines of --json, "type" first.
type (
	jsonQueued struct {
		Type   string `json:"type"`
		Batch  string `json:"batch"`
		Queued int    `json:"queued"`
	}
	jsonPhoto struct {
		Type  string          `json:"type"`
		Done  int             `json:"done,omitempty"`
		Total int             `json:"total,omitempty"`
		Item  *reprocess.Item `json:"item"`
	}
	jsonSummary struct {
		Type     string           `json:"type"`
		Batch    string           `json:"batch,omitempty"`
		DryRun   bool             `json:"dryRun,omitempty"`
		Waited   bool             `json:"waited"`
		Counts   reprocess.Counts `json:"counts"`
		Failures []reprocess.Item `json:"failures"`
		Error    string           `json:"error,omitempty"`
	}
)

func (o *reprocessOutput) emit(v any) { writeJSON(o.stdout, v) }

// progress is Run's callback: the first call follows queueing, the others
// each photo that ended.
func (o *reprocessOutput) progress(p reprocess.Progress) {
	if p.Item == nil {
		o.total = p.Queued
		if o.json {
			o.emit(jsonQueued{Type: "queued", Batch: o.batch, Queued: p.Queued})
		} else if o.wait && p.Queued > 0 {
			fmt.Fprintf(o.stderr, "queued %d photo(s) as batch %s; waiting for the workers (Ctrl-C stops waiting, the jobs stay queued)\n", p.Queued, o.batch)
		}
		if o.bar && p.Queued > 0 {
			o.pb = progressbar.NewOptions64(int64(p.Queued),
				progressbar.OptionSetWriter(o.stderr),
				progressbar.OptionSetDescription(barText(p)),
				progressbar.OptionShowCount(),
				progressbar.OptionShowIts(),
				progressbar.OptionSetItsString("photos"),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionSetElapsedTime(true),
				progressbar.OptionSetWidth(24),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionSetRenderBlankState(true),
			)
		}
		return
	}
	if o.json {
		o.emit(jsonPhoto{Type: "photo", Done: p.Done(), Total: o.total, Item: p.Item})
	}
	if o.pb != nil {
		o.pb.Describe(barText(p))
		_ = o.pb.Set(p.Done())
	}
}

func barText(p reprocess.Progress) string {
	return fmt.Sprintf("described %d · skipped %d · failed %d", p.Described, p.Skipped, p.Failed)
}

func (o *reprocessOutput) finishBar() {
	if o.pb == nil {
		return
	}
	if o.pb.State().CurrentNum >= o.pb.GetMax64() {
		_ = o.pb.Finish()
	} else {
		_ = o.pb.Exit()
	}
	fmt.Fprintln(o.stderr)
}

// dryRun prints the plan.
func (o *reprocessOutput) dryRun(items []reprocess.Item) int {
	c := reprocess.Summarize(items)
	if o.json {
		for i := range items {
			o.emit(jsonPhoto{Type: "item", Item: &items[i]})
		}
		o.emit(jsonSummary{Type: "summary", DryRun: true, Counts: c, Failures: nonNil(reprocess.Failures(items))})
		return 0
	}
	fmt.Fprintf(o.stdout, "dry run: %s, model %s: nothing was queued\n\n", o.target, o.model)
	o.counts(c, false)
	o.list("would queue", items, func(it reprocess.Item) (bool, string) { return it.Status == reprocess.ToQueue, it.Reason })
	o.list("failed before, not queued again (--retry-failed queues them)", items, func(it reprocess.Item) (bool, string) {
		return it.Status == reprocess.FailedBefore, it.Reason
	})
	o.list("could not be read", items, func(it reprocess.Item) (bool, string) { return it.Status == reprocess.Unchecked, it.Reason })
	if c.Errors > 0 {
		return 1
	}
	return 0
}

// summary prints the end of a run and returns the exit status.
func (o *reprocessOutput) summary(items []reprocess.Item, waited bool, runErr error) int {
	c := reprocess.Summarize(items)
	code := 0
	if c.Failed > 0 || c.Errors > 0 || c.ToQueue > 0 || runErr != nil || (waited && c.Pending > 0) {
		code = 1
	}
	if o.json {
		s := jsonSummary{Type: "summary", Batch: o.batch, Waited: waited, Counts: c, Failures: nonNil(reprocess.Failures(items))}
		if runErr != nil {
			s.Error = runErr.Error()
		}
		o.emit(s)
		return code
	}
	fmt.Fprintf(o.stdout, "reprocess %s, model %s, batch %s\n\n", o.target, o.model, o.batch)
	o.counts(c, waited)
	o.list("failed", items, func(it reprocess.Item) (bool, string) {
		if it.Status == reprocess.Unchecked {
			return true, "could not be read: " + it.Reason
		}
		return it.Outcome == queue.Failed, it.Result
	})
	o.list("failed before, not queued again (--retry-failed queues them)", items, func(it reprocess.Item) (bool, string) {
		return it.Status == reprocess.FailedBefore, it.Reason
	})
	switch {
	case runErr != nil && errors.Is(runErr, context.Canceled):
		fmt.Fprintf(o.stdout, "\nstopped waiting: %d photo(s) still queued or running; the workers finish them\n", c.Pending)
	case runErr != nil:
		fmt.Fprintf(o.stdout, "\nregscribe reprocess: %v\n", runErr)
	case !waited && c.Queued > 0:
		fmt.Fprintf(o.stdout, "\nnot waiting for the results (--wait follows them); they are published on %s\n", queue.ResultSubject(o.batch))
	}
	return code
}

func nonNil(items []reprocess.Item) []reprocess.Item {
	if items == nil {
		return []reprocess.Item{}
	}
	return items
}

func (o *reprocessOutput) counts(c reprocess.Counts, waited bool) {
	tw := tabwriter.NewWriter(o.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	row := func(name string, n int) { fmt.Fprintf(tw, "  %s\t%d\t\n", name, n) }
	row("tags listed", c.Tags)
	row("distinct manifests", c.Manifests)
	row("not photos", c.NotPhotos)
	row("already described", c.AlreadyDescribed)
	if o.batch != "" {
		// Not in a dry run, which publishes nothing.
		row("indexed", c.Indexed)
	}
	row("failed before", c.FailedBefore)
	if c.Gone > 0 {
		row("tags gone meanwhile", c.Gone)
	}
	if c.Errors > 0 {
		row("could not be read", c.Errors)
	}
	if c.ToQueue > 0 {
		row("to queue", c.ToQueue)
	}
	if c.Queued+c.AlreadyQueued > 0 || c.ToQueue == 0 {
		row("queued", c.Queued)
		row("already queued", c.AlreadyQueued)
	}
	if waited {
		row("described", c.Described)
		row("skipped", c.Skipped)
		row("failed", c.Failed)
		if c.Pending > 0 {
			row("still running", c.Pending)
		}
		row("model calls", c.ModelCalls)
	}
	_ = tw.Flush()
}

// list prints the items pick selects, each with its tags and reason.
func (o *reprocessOutput) list(title string, items []reprocess.Item, pick func(reprocess.Item) (bool, string)) {
	var lines []string
	for _, it := range items {
		ok, why := pick(it)
		if !ok {
			continue
		}
		line := "  " + it.Ref()
		if len(it.Tags) > 0 && it.Digest != "" {
			line += " (" + strings.Join(it.Tags, ", ") + ")"
		}
		if why != "" {
			line += "\n      " + why
		}
		lines = append(lines, line)
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(o.stdout, "\n%s (%d):\n%s\n", title, len(lines), strings.Join(lines, "\n"))
}
