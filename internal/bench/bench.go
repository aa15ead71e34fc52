package bench

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"
)

// Section is one measurement of a run.
type Section string

// The sections, in the order a run measures them.
const (
	SectionIngest     Section = "ingest"
	SectionThroughput Section = "throughput"
	SectionLatency    Section = "latency"
	SectionCPU        Section = "cpu"
	SectionMemory     Section = "memory"
	SectionDemo       Section = "demo"
	SectionSearch     Section = "search"
)

// Sections lists every section in run order.
var Sections = []Section{SectionIngest, SectionThroughput, SectionLatency, SectionCPU, SectionMemory, SectionDemo, SectionSearch}

// ParseSections parses a comma-separated list of sections; empty is all.
func ParseSections(s string) ([]Section, error) {
	if strings.TrimSpace(s) == "" {
		return Sections, nil
	}
	var out []Section
	for f := range strings.SplitSeq(s, ",") {
		sec := Section(strings.ToLower(strings.TrimSpace(f)))
		if !slices.Contains(Sections, sec) {
			return nil, fmt.Errorf("section %q: want throughput, latency, cpu, memory, ingest, demo or search", f)
		}
		out = append(out, sec)
	}
	return out, nil
}

// Storage is where the embedded registry keeps what is pushed.
type Storage string

// The registry storages.
const (
	// FileSystem is what `regscribe up` uses: Distribution's filesystem
	// driver, which fsyncs every file and directory it writes.
	FileSystem Storage = "fs"
	// InMemory is Distribution's inmemory driver: the registry's own cost
	// shrinks to its HTTP handling, so what remains is regscribe's.
	InMemory Storage = "memory"
)

// ParseStorage parses fs or memory.
func ParseStorage(s string) (Storage, error) {
	switch st := Storage(strings.ToLower(s)); st {
	case FileSystem, InMemory:
		return st, nil
	}
	return "", fmt.Errorf("registry storage %q: want fs or memory", s)
}

// Options configure [Run]. The zero value runs everything with the issue's
// settings: 1,000 one-megapixel photos, L = 200 ms, C = 16.
type Options struct {
	// Photos is N, the photos of the throughput section; the other sections
	// push fewer (see each). If zero, 1000.
	Photos int
	// Latency is L, how long the fake model takes for each photo. If zero,
	// 200 ms.
	Latency time.Duration
	// Concurrency is C, the requests the fake model serves at once (the
	// rest wait in line). If zero, 16.
	Concurrency int
	// Workers is the worker pool's Concurrency (jobs in flight). It must
	// exceed C for the model to always find a request waiting. If zero, C+8.
	Workers int
	// Kind of photos of the throughput, latency and demo sections. If
	// empty, OneMP.
	Kind Kind
	// CPUKinds are the kinds the cpu section measures. If nil, OneMP, PNG
	// and TwelveMP.
	CPUKinds []Kind
	// MemoryKind is the kind the memory section describes. If empty,
	// TwelveMP.
	MemoryKind Kind
	// Only lists the sections to run. If nil, all.
	Only []Section
	// Storage of the embedded registry in every section but memory (which
	// always uses FileSystem, so the photos stored are not counted as
	// regscribe's memory). If empty, InMemory: what the registry spends
	// storing photos is the registry's cost, not regscribe's.
	Storage Storage
	// Pushers is how many photos are pushed at once. If zero, 16.
	Pushers int
	// DemoPhotos is how many photos the demo's design describes (it takes
	// DemoPhotos·L at least). If zero, 50.
	DemoPhotos int
	// SearchPhotos is how many descriptions the search section indexes. If
	// zero, 100,000.
	SearchPhotos int
	// ModelURL is a running benchmark fake model (see [ServeModel]) to use
	// instead of starting one.
	ModelURL string
	// Self is the command that runs this benchmark again (the executable
	// and its subcommand, as [Main] takes arguments). With it, the fake
	// model runs in a process of its own, and the memory section in a fresh
	// one. Without it, both run in this process, and the report says so.
	Self []string
	// Fresh says this process was started for the memory section alone.
	Fresh bool
	// CPUProfile, if set, receives a CPU profile of the sections (not of
	// generating the photos).
	CPUProfile io.Writer
	// MemProfile, if set, receives a heap profile (allocations and what is
	// in use) at the end of the run.
	MemProfile io.Writer
	// Progress, if set, receives a line as each step starts.
	Progress io.Writer
}

func (o *Options) defaults() {
	if o.Photos <= 0 {
		o.Photos = 1000
	}
	if o.Latency <= 0 {
		o.Latency = 200 * time.Millisecond
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.Workers <= 0 {
		o.Workers = o.Concurrency + 8
	}
	if o.Kind == "" {
		o.Kind = OneMP
	}
	if o.CPUKinds == nil {
		o.CPUKinds = []Kind{OneMP, PNG, TwelveMP}
	}
	if o.MemoryKind == "" {
		o.MemoryKind = TwelveMP
	}
	if o.Only == nil {
		o.Only = Sections
	}
	if o.Storage == "" {
		o.Storage = InMemory
	}
	if o.Pushers <= 0 {
		o.Pushers = 16
	}
	if o.DemoPhotos <= 0 {
		o.DemoPhotos = 50
	}
	if o.SearchPhotos <= 0 {
		o.SearchPhotos = 100_000
	}
}

// Report is what a run measured. A section that did not run is nil.
type Report struct {
	Machine    Machine     `json:"machine"`
	Settings   Settings    `json:"settings"`
	Ingest     *Ingest     `json:"ingest,omitempty"`
	Throughput *Throughput `json:"throughput,omitempty"`
	Latency    *Latency    `json:"latency,omitempty"`
	CPU        []CPU       `json:"cpu,omitempty"`
	Memory     *Memory     `json:"memory,omitempty"`
	Demo       *Demo       `json:"demo,omitempty"`
	Search     *Search     `json:"search,omitempty"`
	// Seconds is the wall time of the whole run.
	Seconds float64 `json:"seconds"`
}

// Machine is where the figures come from.
type Machine struct {
	CPU        string `json:"cpu"`
	Cores      int    `json:"cores"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	MemoryGiB  int64  `json:"memoryGiB"`
	OS         string `json:"os"`
	Go         string `json:"go"`
	// LoadAverage is the 1, 5 and 15 minute load average as the run
	// started: other work on the machine makes every timing worse.
	LoadAverage string `json:"loadAverage"`
}

// Settings are the run's parameters.
type Settings struct {
	LatencyMs   float64 `json:"latencyMs"`
	Concurrency int     `json:"concurrency"`
	Workers     int     `json:"workers"`
	// Ceiling is C/L, the photos per second the model can take at most.
	Ceiling float64 `json:"ceilingPerSecond"`
	Pushers int     `json:"pushers"`
	// Storage of the registry (the memory section always uses fs).
	Storage Storage `json:"storage"`
	// Model says where the fake model ran.
	Model string `json:"model"`
}

// Throughput is the live run: N photos pushed Pushers at a time while the
// workers describe them.
type Throughput struct {
	Photos  int  `json:"photos"`
	Kind    Kind `json:"kind"`
	Pushers int  `json:"pushers"`
	// Seconds is from the start of the first push to the last photo's
	// description written back (its job's result).
	Seconds float64 `json:"seconds"`
	// PushSeconds is from the start of the first push to the end of the last.
	PushSeconds float64 `json:"pushSeconds"`
	PerSecond   float64 `json:"perSecond"`
	// Ratio is PerSecond / (C/L).
	Ratio float64 `json:"ratio"`
	// NotifyP50Ms and NotifyP95Ms are from a push's completion to its job
	// being queued: how far the registry's notifications lag. They can be
	// negative: the registry may notify before its answer reaches the
	// pushing client.
	NotifyP50Ms float64 `json:"notifyP50Ms"`
	NotifyP95Ms float64 `json:"notifyP95Ms"`
	// ModelCalls counted by the fake model: one per photo when nothing is
	// described twice.
	ModelCalls int `json:"modelCalls"`
	// MaxServed is the most requests the model served at once (C when it
	// was kept full).
	MaxServed int `json:"maxServed"`
	// Jobs by outcome: each photo's own job is described; its write-back
	// (the annotated manifest pushed by its tag) makes no job.
	Jobs tally `json:"jobs"`
	Load Load  `json:"load"`
}

// Load is how much of the machine's CPU was in use during a section, in
// cores: by this process, by the fake model's process, and by everything
// else (other programs, and time the hypervisor took). Timings of a section
// with Other well above zero are worse than the machine can do.
type Load struct {
	Bench float64 `json:"bench"`
	Model float64 `json:"model"`
	Other float64 `json:"other"`
}

// measureLoad starts measuring the machine's load; the returned func ends it.
func (r *run) measureLoad() func() Load {
	start, busy0, self0, model0 := time.Now(), machineBusy(), cpuTime(), processCPU(r.modelPid)
	return func() Load {
		wall := time.Since(start).Seconds()
		self, model := (cpuTime() - self0).Seconds(), (processCPU(r.modelPid) - model0).Seconds()
		other := (machineBusy() - busy0).Seconds() - self - model
		return Load{Bench: self / wall, Model: model / wall, Other: max(other/wall, 0)}
	}
}

// Latency is what regscribe adds to the model's time for one photo, with
// the model never full: AtOnce photos are pushed at a time, each after the
// previous one's description.
type Latency struct {
	Photos int  `json:"photos"`
	Kind   Kind `json:"kind"`
	AtOnce int  `json:"atOnce"`
	// Percentiles of (job result time − push completion − L).
	P50Ms float64 `json:"p50Ms"`
	P95Ms float64 `json:"p95Ms"`
	P99Ms float64 `json:"p99Ms"`
	MaxMs float64 `json:"maxMs"`
	// NotifyP50Ms and NotifyP95Ms are the part from the push's completion
	// to the notifier queueing the job (the job's received time): the
	// registry's notification (negative when it came before the client
	// had the registry's answer).
	NotifyP50Ms float64 `json:"notifyP50Ms"`
	NotifyP95Ms float64 `json:"notifyP95Ms"`
	// ModelServerMs is the fake model's own mean time per call beyond L
	// (reading and decoding the request, writing the answer): the model
	// server's, included in the figures above.
	ModelServerMs float64 `json:"modelServerMs"`
	// OwnP50Ms and OwnP95Ms are the percentiles above less ModelServerMs:
	// what regscribe itself adds, the figure the target is about.
	OwnP50Ms float64 `json:"ownP50Ms"`
	OwnP95Ms float64 `json:"ownP95Ms"`
	// StageMs are the worker's mean stage latencies (its metrics): fetch
	// (of a manifest or blob), prepare, model (including L), write.
	StageMs map[string]float64 `json:"stageMs"`
	Load    Load               `json:"load"`
}

// CPU is the CPU time of the whole process per photo: pushed with the
// workers stopped, then described.
type CPU struct {
	Kind   Kind `json:"kind"`
	Photos int  `json:"photos"`
	// PushMs per photo: the pushing client, the registry storing the blob
	// and manifest, its notification, the notifier, JetStream storing the job.
	PushMs float64 `json:"pushMs"`
	// DescribeMs per photo: the photo's job (fetch, prepare, the model
	// client's encoding, memory, write-back) and the job its write-back
	// makes, with the registry and NATS serving them.
	DescribeMs float64 `json:"describeMs"`
	TotalMs    float64 `json:"totalMs"`
	// DescribeSeconds is the wall time of describing them all;
	// DescribePerSecond the photos per second it makes.
	DescribeSeconds   float64 `json:"describeSeconds"`
	DescribePerSecond float64 `json:"describePerSecond"`
	Jobs              tally   `json:"jobs"`
	// Load while describing.
	Load Load `json:"load"`
}

// Memory is the resident set size while the workers describe photos that
// were pushed before (so the pushing client's memory is not counted), with
// the registry on the file system (so the photos it stores are not either).
type Memory struct {
	Kind    Kind `json:"kind"`
	Photos  int  `json:"photos"`
	Workers int  `json:"workers"`
	// PeakRSSMB is the high-water mark of the resident set while
	// describing (MB = 10^6 bytes).
	PeakRSSMB float64 `json:"peakRSSMB"`
	// BaselineRSSMB is the resident set as describing started.
	BaselineRSSMB float64 `json:"baselineRSSMB"`
	// PeakHeapMB is the most Go heap in use (sampled every 10 ms).
	PeakHeapMB float64 `json:"peakHeapMB"`
	// WholeRunPeakRSSMB includes generating and pushing the photos.
	WholeRunPeakRSSMB float64 `json:"wholeRunPeakRSSMB"`
	// FreshProcess is true when measured in a process started for it.
	FreshProcess bool `json:"freshProcess"`
}

// Ingest is the notifier alone: Distribution envelopes of one manifest push
// each, posted over HTTP, each answered once JetStream (file storage)
// stored its job.
type Ingest struct {
	Events    int     `json:"events"`
	Clients   int     `json:"clients"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"perSecond"`
	// Sequential is one client posting one event at a time, as one
	// Distribution notification endpoint does.
	SequentialEvents    int     `json:"sequentialEvents"`
	SequentialPerSecond float64 `json:"sequentialPerSecond"`
	// Stored is the jobs the stream holds afterwards (all of them).
	Stored uint64 `json:"stored"`
}

// Demo is the conference demo's design: the notification request itself
// fetches the photo, asks the model and writes the description back, one
// photo at a time.
type Demo struct {
	Photos     int     `json:"photos"`
	Kind       Kind    `json:"kind"`
	Seconds    float64 `json:"seconds"`
	PerSecond  float64 `json:"perSecond"`
	ModelCalls int     `json:"modelCalls"`
	// Speedup is regscribe's throughput over the demo's (when the
	// throughput section ran).
	Speedup float64 `json:"speedup,omitempty"`
}

// run is one benchmark run.
type run struct {
	opts     Options
	started  time.Time
	album    *album
	model    string // URL of the fake model
	modelPid int    // its process, if it has one
	report   Report
}

// Run measures the sections of opts and returns their figures. Timings are
// measured, never judged: see [WriteTable] for the targets.
func Run(ctx context.Context, opts Options) (Report, error) {
	opts.defaults()
	started := time.Now()
	r := &run{opts: opts, started: started}
	r.report.Machine = machine()
	r.report.Settings = Settings{
		LatencyMs: ms(opts.Latency), Concurrency: opts.Concurrency, Workers: opts.Workers,
		Ceiling: float64(opts.Concurrency) / opts.Latency.Seconds(), Pushers: opts.Pushers,
		Storage: opts.Storage,
	}

	var kinds []Kind
	for _, s := range opts.Only {
		switch s {
		case SectionThroughput, SectionLatency, SectionDemo:
			kinds = append(kinds, opts.Kind)
		case SectionCPU:
			kinds = append(kinds, opts.CPUKinds...)
		case SectionMemory:
			if opts.Self == nil || opts.Fresh {
				kinds = append(kinds, opts.MemoryKind)
			}
		}
	}
	r.progress("generating photos: %v", kinds)
	var err error
	if r.album, err = newAlbum(kinds...); err != nil {
		return r.report, err
	}

	r.model = opts.ModelURL
	r.report.Settings.Model = "at " + opts.ModelURL
	needsModel := slices.ContainsFunc(opts.Only, func(s Section) bool { return s != SectionIngest && s != SectionSearch })
	if r.model == "" && !needsModel {
		r.report.Settings.Model = "not started (no section needs it)"
	} else if r.model == "" {
		m, err := startModel(ctx, opts.Self, opts.Latency, opts.Concurrency)
		if err != nil {
			return r.report, err
		}
		defer m.close()
		r.model, r.modelPid = m.url, m.pid
		r.report.Settings.Model = m.where
	}

	if opts.CPUProfile != nil {
		if err := pprof.StartCPUProfile(opts.CPUProfile); err != nil {
			return r.report, err
		}
		defer pprof.StopCPUProfile()
	}
	for _, s := range Sections {
		if !slices.Contains(opts.Only, s) {
			continue
		}
		if err := r.section(ctx, s); err != nil {
			return r.report, fmt.Errorf("%s: %w", s, err)
		}
	}
	if d := r.report.Demo; d != nil && r.report.Throughput != nil && d.PerSecond > 0 {
		d.Speedup = r.report.Throughput.PerSecond / d.PerSecond
	}
	if opts.MemProfile != nil {
		runtime.GC()
		if err := pprof.Lookup("heap").WriteTo(opts.MemProfile, 0); err != nil {
			return r.report, err
		}
	}
	r.report.Seconds = time.Since(started).Seconds()
	return r.report, nil
}

func (r *run) section(ctx context.Context, s Section) error {
	var err error
	switch s {
	case SectionIngest:
		r.report.Ingest, err = r.ingest(ctx)
	case SectionThroughput:
		r.report.Throughput, err = r.throughput(ctx)
	case SectionLatency:
		r.report.Latency, err = r.latency(ctx)
	case SectionCPU:
		for _, k := range r.opts.CPUKinds {
			var c *CPU
			if c, err = r.cpu(ctx, k); err != nil {
				break
			}
			r.report.CPU = append(r.report.CPU, *c)
		}
	case SectionMemory:
		r.report.Memory, err = r.memory(ctx)
	case SectionDemo:
		r.report.Demo, err = r.demo(ctx)
	case SectionSearch:
		r.report.Search, err = r.search(ctx)
	}
	return err
}

func (r *run) progress(format string, args ...any) {
	if r.opts.Progress != nil {
		fmt.Fprintf(r.opts.Progress, "bench: %5.1fs "+format+"\n", append([]any{time.Since(r.started).Seconds()}, args...)...)
	}
}

// modelStats is what the fake model served so far.
func (r *run) modelStats(ctx context.Context) (modelStats, error) { return stats(ctx, r.model) }

// photosFor is how many photos a section pushes: n, at most most.
func (r *run) photosFor(most int) int { return max(1, min(r.opts.Photos, most)) }

func machine() Machine {
	cpu, mem, load := machineInfo()
	return Machine{
		CPU: cpu, Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), MemoryGiB: (mem + 1<<29) >> 30,
		OS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version(), LoadAverage: load,
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
