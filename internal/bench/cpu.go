package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// cpuPhotos is how many photos of kind k the cpu and memory sections push:
// of 12 MP (and mixed) photos two per job in flight, enough to keep every
// worker slot busy; of the others up to 200.
func (r *run) cpuPhotos(k Kind) int {
	if k == TwelveMP || k == Mixed {
		return r.photosFor(2 * r.opts.Workers)
	}
	return r.photosFor(200)
}

// prepushed is a stack holding n photos of kind k, pushed and queued, with
// its workers not started yet.
type prepushed struct {
	*stack
	pushCPU time.Duration
}

// prepush starts a stack and pushes n photos of kind k into it with the
// workers stopped, measuring the CPU time that takes.
func (r *run) prepush(ctx context.Context, k Kind, n int, repository string, storage Storage) (*prepushed, error) {
	photos := r.album.photos(k, 0, n)
	s, err := startStack(ctx, stackOptions{modelURL: r.model, workers: r.opts.Workers, storage: storage})
	if err != nil {
		return nil, err
	}
	p, err := newPusher(s.registry.Addr(), repository, r.opts.Pushers)
	if err != nil {
		s.close()
		return nil, err
	}
	defer p.close()
	cpu0 := cpuTime()
	if _, err := p.pushAll(ctx, photos, 0, r.opts.Pushers); err != nil {
		s.close()
		return nil, err
	}
	if err := waitQueued(ctx, s, n); err != nil {
		s.close()
		return nil, err
	}
	return &prepushed{stack: s, pushCPU: cpuTime() - cpu0}, nil
}

// waitQueued waits until n jobs are queued (notifications are sent
// asynchronously, after the push returned).
func waitQueued(ctx context.Context, s *stack, n int) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		q, err := s.queued(ctx)
		if err == nil && q >= uint64(n) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d jobs queued after a minute (%v)", q, n, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// cpu measures the process's CPU time per photo of kind k: pushing with the
// workers stopped, then describing (all jobs settled).
func (r *run) cpu(ctx context.Context, k Kind) (*CPU, error) {
	n := r.cpuPhotos(k)
	r.progress("cpu: %d × %s, pushed first, then described", n, k.Describe())
	s, err := r.prepush(ctx, k, n, "photos/cpu-"+string(k), r.opts.Storage)
	if err != nil {
		return nil, err
	}
	defer s.close()
	cpu0, wall0, load := cpuTime(), time.Now(), r.measureLoad()
	s.startWorkers()
	jobs, err := s.results.settled(ctx, n, r.expected(n, 60*time.Second))
	if err != nil {
		return nil, err
	}
	describe, wall, used := cpuTime()-cpu0, time.Since(wall0), load()
	c := &CPU{
		Kind: k, Photos: n,
		PushMs: ms(s.pushCPU) / float64(n), DescribeMs: ms(describe) / float64(n),
		DescribeSeconds: wall.Seconds(), DescribePerSecond: float64(n) / wall.Seconds(), Jobs: jobs, Load: used,
	}
	c.TotalMs = c.PushMs + c.DescribeMs
	return c, nil
}

// memory measures the resident set while 12 MP photos (MemoryKind), pushed
// before, are described with every worker slot busy: in a fresh process
// when it can.
func (r *run) memory(ctx context.Context) (*Memory, error) {
	if r.opts.Self != nil && !r.opts.Fresh {
		return r.memoryInChild(ctx)
	}
	k := r.opts.MemoryKind
	n := r.cpuPhotos(k)
	r.progress("memory: %d × %s, pushed first, then described %d at a time", n, k.Describe(), r.opts.Workers)
	s, err := r.prepush(ctx, k, n, "photos/memory", FileSystem)
	if err != nil {
		return nil, err
	}
	defer s.close()
	_, wholeRun := memoryStatus()
	// What the pushing client used is handed back to the OS, then the
	// high-water mark starts again from here.
	runtime.GC()
	debug.FreeOSMemory()
	reset := resetPeakRSS()
	baseline, _ := memoryStatus()

	heap := sampleHeap(10 * time.Millisecond)
	s.startWorkers()
	_, err = s.results.settled(ctx, n, r.expected(n, 60*time.Second))
	peakHeap := heap()
	if err != nil {
		return nil, err
	}
	_, peak := memoryStatus()
	m := &Memory{
		Kind: k, Photos: n, Workers: r.opts.Workers,
		PeakRSSMB: mb(peak), BaselineRSSMB: mb(baseline), PeakHeapMB: mb(peakHeap),
		WholeRunPeakRSSMB: mb(max(wholeRun, peak)), FreshProcess: r.opts.Fresh,
	}
	if !reset {
		// Without clear_refs the high-water mark covers the whole run.
		m.PeakRSSMB = m.WholeRunPeakRSSMB
	}
	return m, nil
}

// memoryInChild runs the memory section in a fresh process of this binary,
// with the same settings and the same fake model.
func (r *run) memoryInChild(ctx context.Context) (*Memory, error) {
	o := r.opts
	args := append(append([]string(nil), o.Self[1:]...), "-only", string(SectionMemory), "-json", "-fresh",
		"-n", fmt.Sprint(o.Photos), "-latency", o.Latency.String(), "-concurrency", fmt.Sprint(o.Concurrency),
		"-workers", fmt.Sprint(o.Workers), "-pushers", fmt.Sprint(o.Pushers), "-registry", string(o.Storage),
		"-photos", string(o.MemoryKind), "-model-url", r.model)
	cmd := exec.CommandContext(ctx, o.Self[0], args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	r.progress("memory: in a fresh process")
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("fresh process for the memory section: %w", err)
	}
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep.Memory == nil {
		return nil, fmt.Errorf("fresh process for the memory section: no report in %q (%v)", out.String(), err)
	}
	return rep.Memory, nil
}

// sampleHeap samples the Go heap in use every interval; the returned func
// stops sampling and returns the most it saw.
func sampleHeap(interval time.Duration) func() uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(stop)
		<-done
		return peak
	}
}

func mb[T int64 | uint64](b T) float64 { return float64(b) / 1e6 }
