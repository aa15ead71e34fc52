package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"oras.land/oras-go/v2/registry"

	"github.com/regscribe/regscribe/internal/config"
	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/memo"
	"github.com/regscribe/regscribe/internal/photo"
	"github.com/regscribe/regscribe/internal/queue"
	regclient "github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/reprocess"
	"github.com/regscribe/regscribe/worker"
)

// target is a photo reference named on the command line, and a registry
// client allowed to reach its registry (a person naming a registry on their
// own command line is configuration, unlike a host in an event body).
type target struct {
	ref    registry.Reference
	client *regclient.Client
}

func parseTarget(cfg config.Config, raw string, plainHTTP bool) (target, error) {
	ref, err := registry.ParseReference(raw)
	if err != nil {
		return target{}, fmt.Errorf("%q is not a reference like localhost:5000/photos/pineapple:latest: %w", raw, err)
	}
	client, err := clientFor(cfg, ref.Registry, plainHTTP)
	if err != nil {
		return target{}, err
	}
	return target{ref: ref, client: client}, nil
}

// clientFor returns a registry client that may reach the configured
// registries and host, named on the command line: over plain HTTP when
// REGSCRIBE_REGISTRIES says so, for loopback hosts, or with --plain-http.
func clientFor(cfg config.Config, host string, plainHTTP bool) (*regclient.Client, error) {
	endpoints, err := registryEndpoints(cfg)
	if err != nil {
		return nil, err
	}
	names, err := regclient.NewNames(endpoints)
	if err != nil {
		return nil, err
	}
	if _, ok := names.Endpoint(host); !ok {
		host = strings.ToLower(host)
		endpoints = append(endpoints, regclient.Endpoint{Host: host, PlainHTTP: plainHTTP || isLoopback(host)})
	}
	return regclient.New(endpoints, regclient.Options{UserAgent: "regscribe/" + buildVersion()})
}

// registryEndpoints are the registries of REGSCRIBE_REGISTRIES with their
// REGSCRIBE_REGISTRY_ALIASES, as the registry client takes them.
func registryEndpoints(cfg config.Config) ([]regclient.Endpoint, error) {
	regs, err := cfg.RegistryEndpoints()
	if err != nil {
		return nil, err
	}
	aliases, err := cfg.Aliases()
	if err != nil {
		return nil, err
	}
	out := make([]regclient.Endpoint, len(regs))
	for i, r := range regs {
		out[i] = regclient.Endpoint{Host: r.Host, PlainHTTP: r.PlainHTTP}
	}
	for _, a := range aliases {
		i := slices.IndexFunc(out, func(e regclient.Endpoint) bool { return regclient.Key(e.Host) == regclient.Key(a.Registry) })
		if i < 0 {
			return nil, fmt.Errorf("REGSCRIBE_REGISTRY_ALIASES: %s is not in REGSCRIBE_REGISTRIES", a.Registry)
		}
		out[i].Aliases = append(out[i].Aliases, a.Name)
	}
	return out, nil
}

// registryNames are the names of the configured registries ([regclient.Names]).
func registryNames(cfg config.Config) (*regclient.Names, error) {
	endpoints, err := registryEndpoints(cfg)
	if err != nil {
		return nil, err
	}
	return regclient.NewNames(endpoints)
}

// isLoopback is true for localhost and loopback addresses, which oras also
// reaches over plain HTTP.
func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c *cli) showCmd() *cobra.Command {
	var format outputFormat
	var plain bool
	cmd := &cobra.Command{
		Use:   "show REF|REPOSITORY...",
		Short: "Show the descriptions of photos, wherever they are stored (annotation or referrer)",
		Long: `Shows the descriptions of each photo named: a reference
(REGISTRY/REPOSITORY:TAG or @DIGEST) is one photo, a repository
(REGISTRY/REPOSITORY) is every photo its tags point at, and every manifest of
files that holds no photo, with why ("refused"). Descriptions are read from
the manifest's annotations and from description referrers.

With --format json, each photo is one JSON object on a line of its own:
{"reference", "digest", "tags", "descriptions": [{"storedAs": "annotation" or
"referrer", "referrer" (its descriptor), "record": {"subject", "model",
"promptDigest", "created", "photos": [{"layer", "title", "description",
"alt", "keywords", "text"}]}}], "error", "refused", "failed"} ("text" is the
text visible in the photo, when there is some; "error" only when the photo
could not be read). A photo without a description says why when the workers
know (it joins REGSCRIBE_NATS_URL): "refused" is why a manifest holds no photo
regscribe describes (a text file pushed with oras's default media type: "not
an image: …"), "failed" the error its job was given up with.
Exit status: 0 when every photo has a description, 1 otherwise.`,
		Example: `  regscribe show localhost:5000/photos/pineapple:latest
  regscribe show localhost:5000/photos/pineapple:latest --format json
  regscribe show localhost:5000/photos/pineapple:latest localhost:5000/photos/storm:latest
  regscribe show localhost:5000/photos --json | jq -r '.descriptions[].record.photos[].description'`,
		GroupID:           groupTools,
		Args:              argsBetween(1, -1, "one or more REGISTRY/REPOSITORY[:TAG|@DIGEST]"),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: c.tool(func(ctx context.Context, cfg config.Config, args []string) int {
			return show(ctx, cfg, args, plain, format, c.stdout, c.stderr)
		}),
	}
	addFormatFlags(cmd, cmd.Flags(), &format, "one object per photo and line")
	cmd.Flags().BoolVar(&plain, "plain-http", false, "reach the registry over plain HTTP")
	return cmd
}

// shown is one photo `regscribe show` found; --format json prints each as
// one line.
type shown struct {
	// Reference names the photo: as given, or registry/repository@digest
	// for a photo of a repository named.
	Reference string `json:"reference"`
	// Digest of the photo's manifest; empty when it could not be read.
	Digest string `json:"digest,omitempty"`
	// Tags point at the photo: the tag named, or those of a repository named.
	Tags []string `json:"tags,omitempty"`
	// Descriptions of the photo, wherever stored; empty when it has none.
	Descriptions []regclient.Found `json:"descriptions"`
	// Error says why the photo could not be read.
	Error string `json:"error,omitempty"`
	// Refused, for a manifest without descriptions, is why a worker found
	// no photo in it ("not an image: …"); Failed is the error its job was
	// given up with (regscribe failed list).
	Refused string `json:"refused,omitempty"`
	Failed  string `json:"failed,omitempty"`
}

// show prints the descriptions of each reference or repository in refs.
func show(ctx context.Context, cfg config.Config, refs []string, plain bool, format outputFormat, stdout, stderr io.Writer) int {
	targets := make([]target, len(refs))
	for i, raw := range refs {
		t, err := parseTarget(cfg, raw, plain)
		if err != nil {
			fmt.Fprintln(stderr, "regscribe show:", err)
			return 2
		}
		targets[i] = t
	}
	code, first := 0, true
	why := &reasons{cfg: cfg}
	defer why.Close()
	for i, t := range targets {
		photos, err := photosOf(ctx, t, refs[i])
		if err != nil {
			fmt.Fprintln(stderr, "regscribe show:", err)
			code = 1
			continue
		}
		if len(photos) == 0 {
			fmt.Fprintf(stderr, "regscribe show: %s holds no photo\n", refs[i])
			code = 1
		}
		for _, p := range photos {
			if p.Error == "" && p.Refused == "" {
				p.Descriptions, p.Error = describedAs(ctx, t, p.Digest)
			}
			if p.Error == "" && p.Refused == "" && len(p.Descriptions) == 0 {
				p.Refused, p.Failed = why.of(ctx, t, p.Digest)
			}
			if p.Error != "" || len(p.Descriptions) == 0 {
				code = 1
			}
			if p.Descriptions == nil {
				p.Descriptions = []regclient.Found{}
			}
			switch {
			case format == formatJSON:
				writeJSON(stdout, p)
			case p.Error != "":
				fmt.Fprintf(stderr, "regscribe show: %s: %s\n", p.Reference, p.Error)
			default:
				if !first {
					fmt.Fprintln(stdout)
				}
				first = false
				label := p.Reference
				if t.ref.Reference == "" && len(p.Tags) > 0 {
					label += " (" + strings.Join(p.Tags, ", ") + ")"
				}
				printFound(stdout, label, p)
			}
		}
	}
	return code
}

// photosOf is the photo t names, or, for a repository without a tag or
// digest, every photo its tags point at (by digest, with its tags) and
// every manifest of files that hold no photo, with why (Refused).
func photosOf(ctx context.Context, t target, raw string) ([]shown, error) {
	if t.ref.Reference != "" {
		p := shown{Reference: raw}
		if t.ref.ValidateReferenceAsDigest() != nil {
			p.Tags = []string{t.ref.Reference}
		}
		repo, err := t.client.Repository(t.ref.Registry, t.ref.Repository)
		if err != nil {
			return nil, err
		}
		m, err := t.client.FetchManifest(ctx, repo, t.ref.Reference)
		if err != nil {
			return nil, err
		}
		p.Digest = m.Descriptor.Digest.String()
		return []shown{p}, nil
	}
	items, err := reprocess.Plan(ctx, t.client, reprocess.PlanOptions{Registry: t.ref.Registry, Repository: t.ref.Repository, Force: true})
	if err != nil {
		return nil, err
	}
	var out []shown
	for _, it := range items {
		switch {
		case it.Refused:
			// A file that holds no photo: why, as for a reference named.
			out = append(out, shown{Reference: it.Ref(), Digest: it.Digest, Tags: it.Tags, Refused: it.Reason})
		case it.Status == reprocess.NotPhoto, it.Status == reprocess.Gone:
			continue
		case it.Status == reprocess.Unchecked:
			out = append(out, shown{Reference: it.Ref(), Tags: it.Tags, Error: it.Reason})
		default:
			out = append(out, shown{Reference: it.Ref(), Digest: it.Digest, Tags: it.Tags})
		}
	}
	return out, nil
}

// describedAs returns the descriptions of the manifest digest of t's
// repository, or why they could not be read.
func describedAs(ctx context.Context, t target, digest string) ([]regclient.Found, string) {
	repo, err := t.client.Repository(t.ref.Registry, t.ref.Repository)
	if err != nil {
		return nil, err.Error()
	}
	m, err := t.client.FetchManifest(ctx, repo, digest)
	if err != nil {
		return nil, err.Error()
	}
	found, err := t.client.Descriptions(ctx, repo, m, func(im ocispec.Manifest) []int { return photo.ReadBack(im, nil) })
	if err != nil {
		return nil, err.Error()
	}
	return found, ""
}

func printFound(w io.Writer, ref string, p shown) {
	found := p.Descriptions
	switch {
	case len(found) > 0:
	case p.Refused != "":
		fmt.Fprintf(w, "%s (%s): %s\n", ref, p.Digest, p.Refused)
		return
	case p.Failed != "":
		fmt.Fprintf(w, "%s (%s) has no description: its job failed: %s (regscribe failed list)\n", ref, p.Digest, p.Failed)
		return
	default:
		fmt.Fprintf(w, "%s (%s) has no description yet\n", ref, p.Digest)
		return
	}
	for i, f := range found {
		if i > 0 {
			fmt.Fprintln(w)
		}
		where := "annotation on " + f.Record.Subject
		if f.Referrer != nil {
			where = "referrer " + f.Referrer.Digest.String() + " of " + f.Record.Subject
		}
		fmt.Fprintf(w, "%s\n  stored as: %s\n  model:     %s, %s\n", ref, where, f.Record.Model, f.Record.Created.Format("2006-01-02 15:04:05 MST"))
		for _, p := range f.Record.Photos {
			if p.Title != "" {
				fmt.Fprintf(w, "  %s\n", p.Title)
			}
			fmt.Fprintf(w, "    %s\n", p.Description)
			if p.Alt != "" {
				fmt.Fprintf(w, "    alt: %s\n", p.Alt)
			}
			if len(p.Keywords) > 0 {
				fmt.Fprintf(w, "    keywords: %s\n", strings.Join(p.Keywords, ", "))
			}
			if p.Text != "" {
				fmt.Fprintf(w, "    text: %s\n", p.Text)
			}
		}
	}
}

// reasons says why a photo has no description, from what the workers
// keep beside the queue (REGSCRIBE_NATS_URL): the refusal of a manifest
// that holds no photo (the description stream), or the dead letter of a
// job given up. It connects on first use; without NATS it knows nothing,
// and show says only that there is no description yet.
type reasons struct {
	cfg   config.Config
	js    jetstream.JetStream
	close func()
	tried bool
	// dead are the dead letters, read once.
	dead []queue.DeadLetter
}

// of returns the refusal of the manifest digest of t's repository, else
// the error of the newest dead letter of a job for it.
func (r *reasons) of(ctx context.Context, t target, digest string) (refused, failed string) {
	if !r.tried {
		r.tried = true
		if js, closeNATS, err := connectJetStream(r.cfg, "regscribe show"); err == nil {
			r.js, r.close = js, closeNATS
		}
	}
	if r.js == nil {
		return "", ""
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// The workers name the registry as configured; the command line may
	// spell a loopback registry another way.
	hosts := regclient.Spellings(strings.ToLower(t.ref.Registry))
	for _, h := range hosts {
		if e, ok, err := feed.Refusal(ctx, r.js, h, t.ref.Repository, digest); err == nil && ok {
			return e.Reason, ""
		}
	}
	if r.dead == nil {
		r.dead, _ = queue.DeadLetters(ctx, r.js)
	}
	for i := len(r.dead) - 1; i >= 0; i-- {
		j := r.dead[i].Job
		if j.Digest == digest && j.Repository == t.ref.Repository && slices.Contains(hosts, strings.ToLower(j.Registry)) {
			return "", r.dead[i].Error
		}
	}
	return "", ""
}

// Close lets go of the NATS connection, if one was made.
func (r *reasons) Close() {
	if r.close != nil {
		r.close()
	}
}

func (c *cli) describeCmd() *cobra.Command {
	var mode string
	var force, plain bool
	var cmd *cobra.Command
	cmd = &cobra.Command{
		Use:   "describe REF",
		Short: "Describe one photo now, without the queue: to try a prompt or a model",
		Long: `Describes one photo now, in this process, without the queue, and writes the
description back: to try a prompt or a model. The model and the other
settings come from the environment, as for a worker.`,
		Example: `  regscribe describe localhost:5000/photos/pineapple:latest
  regscribe describe localhost:5000/photos/pineapple:latest --mode referrer --force
  REGSCRIBE_LANGUAGE=de regscribe describe localhost:5000/photos/pineapple:latest --force`,
		GroupID:           groupTools,
		Args:              argsBetween(1, 1, "one REGISTRY/REPOSITORY[:TAG|@DIGEST]"),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: c.tool(func(ctx context.Context, cfg config.Config, args []string) int {
			if !cmd.Flags().Changed("mode") {
				mode = cfg.Mode
			}
			if !cmd.Flags().Changed("force") {
				force = cfg.Force
			}
			return describe(ctx, cfg, args[0], mode, force, plain, c.stdout, c.stderr, c.log)
		}),
	}
	cmd.Flags().StringVar(&mode, "mode", "", "write-back: annotation, referrer or auto (default REGSCRIBE_MODE)")
	cmd.Flags().BoolVar(&force, "force", false, "describe again even if described (default REGSCRIBE_FORCE)")
	cmd.Flags().BoolVar(&plain, "plain-http", false, "reach the registry over plain HTTP")
	_ = cmd.RegisterFlagCompletionFunc("mode", cobra.FixedCompletions([]string{"annotation", "referrer", "auto"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// describe describes the photo raw names with the worker, in this process.
func describe(ctx context.Context, cfg config.Config, raw, mode string, force, plain bool, stdout, stderr io.Writer, log *slog.Logger) int {
	cfg.Mode, cfg.Force = mode, force
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, "regscribe describe:", err)
		return 2
	}
	t, err := parseTarget(cfg, raw, plain)
	if err != nil {
		fmt.Fprintln(stderr, "regscribe describe:", err)
		return 2
	}
	model, err := newDescriber(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "regscribe describe:", err)
		return 2
	}
	if err := checkModel(ctx, cfg, model, log); err != nil {
		fmt.Fprintln(stderr, "regscribe describe:", err)
		return 1
	}
	job := queue.Job{Version: queue.JobVersion, Registry: t.client.Canonical(t.ref.Registry), Repository: t.ref.Repository, Source: "cli", Force: force}
	if err := t.ref.ValidateReferenceAsDigest(); err == nil {
		job.Digest = t.ref.Reference
	} else {
		job.Tag = t.ref.ReferenceOrDefault()
	}
	w := worker.New(t.client, model, memo.NewLocal(), workerOptions(cfg, log))
	res, err := w.Process(ctx, job)
	if fault.Is(err, fault.KindSkip) {
		fmt.Fprintf(stdout, "nothing to do: %v\n", err)
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "regscribe describe:", err)
		return 1
	}
	fmt.Fprintf(stdout, "described %s as %s %s (%d model call(s))\n", raw, res.Mode, res.Written.Descriptor.Digest, res.ModelCalls)
	for _, d := range res.Descriptions {
		fmt.Fprintf(stdout, "  %s\n", d.Text)
	}
	if err := announce(ctx, cfg, res.Events); err != nil {
		fmt.Fprintf(stderr, "regscribe describe: written, but search does not know yet (%v); `regscribe reprocess %s/%s` tells it\n", err, job.Registry, job.Repository)
	}
	return 0
}

// announce puts what describe wrote on the description stream of the NATS
// at REGSCRIBE_NATS_URL, as a worker would, so search finds it at once.
func announce(ctx context.Context, cfg config.Config, events []feed.Event) error {
	if len(events) == 0 {
		return nil
	}
	js, closeNATS, err := connectJetStream(cfg, "regscribe describe")
	if err != nil {
		return err
	}
	defer closeNATS()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := feed.EnsureStream(ctx, js, cfg.Replicas); err != nil {
		return err
	}
	pub := feed.NewPublisher(js)
	for _, e := range events {
		if _, err := pub.Publish(ctx, e, ""); err != nil {
			return err
		}
	}
	return nil
}
