package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"

	"oras.land/oras-go/v2/registry"

	"github.com/regscribe/regscribe/internal/config"
	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/memo"
	"github.com/regscribe/regscribe/internal/photo"
	"github.com/regscribe/regscribe/internal/queue"
	regclient "github.com/regscribe/regscribe/internal/registry"
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
	host = strings.ToLower(host)
	if !slices.ContainsFunc(endpoints, func(e regclient.Endpoint) bool { return e.Host == host }) {
		endpoints = append(endpoints, regclient.Endpoint{Host: host, PlainHTTP: plainHTTP || isLoopback(host)})
	}
	return regclient.New(endpoints, regclient.Options{UserAgent: "regscribe/" + buildVersion()})
}

// registryEndpoints are the registries of REGSCRIBE_REGISTRIES, as the
// registry client takes them.
func registryEndpoints(cfg config.Config) ([]regclient.Endpoint, error) {
	regs, err := cfg.RegistryEndpoints()
	if err != nil {
		return nil, err
	}
	out := make([]regclient.Endpoint, len(regs))
	for i, r := range regs {
		out[i] = regclient.Endpoint{Host: r.Host, PlainHTTP: r.PlainHTTP}
	}
	return out, nil
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

func show(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer, _ *slog.Logger) int {
	fs := flag.NewFlagSet("regscribe show", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the description records as JSON")
	plain := fs.Bool("plain-http", false, "reach the registry over plain HTTP")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: regscribe show [--json] [--plain-http] REGISTRY/REPOSITORY[:TAG|@DIGEST]")
		fs.PrintDefaults()
	}
	if done, code := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	t, err := parseTarget(cfg, fs.Arg(0), *plain)
	if err != nil {
		fmt.Fprintln(stderr, "regscribe show:", err)
		return 2
	}
	repo, err := t.client.Repository(t.ref.Registry, t.ref.Repository)
	if err != nil {
		fmt.Fprintln(stderr, "regscribe show:", err)
		return 1
	}
	m, err := t.client.FetchManifest(ctx, repo, t.ref.ReferenceOrDefault())
	if err != nil {
		fmt.Fprintln(stderr, "regscribe show:", err)
		return 1
	}
	found, err := t.client.Descriptions(ctx, repo, m, photo.MediaTypes)
	if err != nil {
		fmt.Fprintln(stderr, "regscribe show:", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if found == nil {
			found = []regclient.Found{}
		}
		_ = enc.Encode(found)
	} else {
		printFound(stdout, fs.Arg(0), m.Descriptor.Digest.String(), found)
	}
	if len(found) == 0 {
		return 1
	}
	return 0
}

func printFound(w io.Writer, ref, digest string, found []regclient.Found) {
	if len(found) == 0 {
		fmt.Fprintf(w, "%s (%s) has no description yet\n", ref, digest)
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
		}
	}
}

func describe(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer, log *slog.Logger) int {
	fs := flag.NewFlagSet("regscribe describe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mode := fs.String("mode", cfg.Mode, "write-back: annotation, referrer or auto")
	force := fs.Bool("force", cfg.Force, "describe again even if described")
	plain := fs.Bool("plain-http", false, "reach the registry over plain HTTP")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: regscribe describe [--mode annotation|referrer|auto] [--force] [--plain-http] REGISTRY/REPOSITORY[:TAG|@DIGEST]")
		fs.PrintDefaults()
	}
	if done, code := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	cfg.Mode, cfg.Force = *mode, *force
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, "regscribe describe:", err)
		return 2
	}
	t, err := parseTarget(cfg, fs.Arg(0), *plain)
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
	job := queue.Job{Version: queue.JobVersion, Registry: strings.ToLower(t.ref.Registry), Repository: t.ref.Repository, Source: "cli", Force: *force}
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
	fmt.Fprintf(stdout, "described %s as %s %s (%d model call(s))\n", fs.Arg(0), res.Mode, res.Written.Descriptor.Digest, res.ModelCalls)
	for _, d := range res.Descriptions {
		fmt.Fprintf(stdout, "  %s\n", d.Text)
	}
	return 0
}
