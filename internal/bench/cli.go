package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

// Main runs `regscribe bench` with its flags in args and returns the exit
// status. self is the command that runs it again (the executable and the
// subcommand, e.g. {"/usr/bin/regscribe", "bench"}): the fake model and the
// memory section run in child processes started with it. Nil keeps
// everything in this process.
func Main(ctx context.Context, self, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("regscribe bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		n           = fs.Int("n", 1000, "photos of the throughput section (the others push at most 200, 12 MP ones at most 2 per job in flight)")
		latency     = fs.Duration("latency", 200*time.Millisecond, "L: the fake model's time per photo")
		concurrency = fs.Int("concurrency", 16, "C: photos the fake model takes at once (the rest wait in line)")
		workers     = fs.Int("workers", 0, "the workers' jobs in flight (default C+8)")
		photos      = fs.String("photos", "1mp", "photos pushed: 1mp, 12mp, png or mixed (unless given, the cpu section measures 1mp, png and 12mp, and the memory section 12mp)")
		only        = fs.String("only", "", "comma-separated sections to run: throughput, latency, cpu, memory, ingest, demo, search (default all)")
		pushers     = fs.Int("pushers", 16, "photos pushed at once")
		storage     = fs.String("registry", "memory", "storage of the embedded registry: memory (the registry's own cost shrinks to its HTTP handling) or fs (as regscribe up keeps it: Distribution fsyncs every file it writes); the memory section always uses fs")
		demoN       = fs.Int("demo-n", 50, "photos of the demo section (it takes demo-n × L at least)")
		searchN     = fs.Int("search-n", 100_000, "descriptions the search section indexes and queries")
		asJSON      = fs.Bool("json", false, "print the report as JSON")
		cpuProfile  = fs.String("cpuprofile", "", "write a CPU profile of the sections to `file`")
		memProfile  = fs.String("memprofile", "", "write a heap profile at the end to `file`")
		modelURL    = fs.String("model-url", "", "use this running benchmark fake model (regscribe bench -serve-model) instead of starting one")
		serveModel  = fs.Bool("serve-model", false, "only serve the fake model (with -latency and -concurrency) until stdin closes")
		fresh       = fs.Bool("fresh", false, "this process was started for -only memory (the benchmark starts it)")
	)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: regscribe bench [flags]

Starts regscribe's real parts in this process, wired as regscribe up wires
them (NATS with JetStream on file storage, a CNCF Distribution registry, the
notifier, workers with the description memory, the attempts ledger, the
description stream, leases and results, and the search index) with a fake
model that answers after -latency and takes -concurrency photos at once,
pushes generated photos and prints throughput, added latency, CPU time per
photo, peak memory, the notifier's ingest rate, and the same photos
described by the conference demo's design for comparison; then the search
index: descriptions indexed from the description stream, text and hybrid
query latency, memory and disk, against a naive scan.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "regscribe bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *serveModel {
		if err := ServeModel(ctx, *latency, *concurrency, os.Stdin, stdout); err != nil {
			fmt.Fprintf(stderr, "regscribe bench: %v\n", err)
			return 1
		}
		return 0
	}

	opts := Options{
		Photos: *n, Latency: *latency, Concurrency: *concurrency, Workers: *workers, Pushers: *pushers,
		DemoPhotos: *demoN, SearchPhotos: *searchN, ModelURL: *modelURL, Self: self, Fresh: *fresh, Progress: stderr,
	}
	var err error
	if opts.Only, err = ParseSections(*only); err != nil {
		return usageError(stderr, err)
	}
	if opts.Kind, err = ParseKind(*photos); err != nil {
		return usageError(stderr, err)
	}
	if opts.Storage, err = ParseStorage(*storage); err != nil {
		return usageError(stderr, err)
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "photos" {
			opts.CPUKinds, opts.MemoryKind = []Kind{opts.Kind}, opts.Kind
		}
	})
	for _, p := range []struct {
		file string
		w    *io.Writer
	}{{*cpuProfile, &opts.CPUProfile}, {*memProfile, &opts.MemProfile}} {
		if p.file == "" {
			continue
		}
		f, err := os.Create(p.file)
		if err != nil {
			fmt.Fprintf(stderr, "regscribe bench: %v\n", err)
			return 1
		}
		defer f.Close()
		*p.w = f
	}

	rep, err := Run(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "regscribe bench: %v\n", err)
		return 1
	}
	if *asJSON {
		out := struct {
			Report
			Targets []Target `json:"targets,omitempty"`
		}{rep, rep.Targets()}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(out)
	} else {
		err = WriteTable(stdout, rep)
	}
	if err != nil {
		fmt.Fprintf(stderr, "regscribe bench: %v\n", err)
		return 1
	}
	return 0
}

func usageError(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "regscribe bench: %v\n", err)
	return 2
}
