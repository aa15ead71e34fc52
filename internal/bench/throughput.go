package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regscribe/regscribe/internal/queue"
)

// throughput pushes N photos, Pushers at a time, into a running stack and
// times them from the start of the first push to the last photo's result
// (its description written back): the pushes, the registry's
// notifications, the queue and the write-backs' own jobs all happen inside
// that time, as they would in use.
func (r *run) throughput(ctx context.Context) (*Throughput, error) {
	n := r.opts.Photos
	photos := r.album.photos(r.opts.Kind, 0, n)
	r.progress("throughput: %d × %s, %d pushers, L = %v, C = %d, %d jobs in flight",
		n, r.opts.Kind.Describe(), r.opts.Pushers, r.opts.Latency, r.opts.Concurrency, r.opts.Workers)
	s, err := startStack(ctx, stackOptions{modelURL: r.model, workers: r.opts.Workers, storage: r.opts.Storage})
	if err != nil {
		return nil, err
	}
	defer s.close()
	p, err := newPusher(s.registry.Addr(), "photos/throughput", r.opts.Pushers)
	if err != nil {
		return nil, err
	}
	defer p.close()
	before, err := r.modelStats(ctx)
	if err != nil {
		return nil, err
	}
	s.startWorkers()

	load := r.measureLoad()
	start := time.Now()
	pushed, err := p.pushAll(ctx, photos, 0, r.opts.Pushers)
	if err != nil {
		return nil, err
	}
	pushEnd := start
	for _, t := range pushed.done {
		pushEnd = later(pushEnd, t)
	}
	jobs, err := s.results.settled(ctx, n, r.expected(n, 60*time.Second))
	if err != nil {
		return nil, err
	}
	used := load()
	end := start
	var notify []time.Duration
	for tag, res := range s.results.finished() {
		end = later(end, res.At)
		notify = append(notify, res.Job.Received.Sub(pushed.done[tag]))
	}
	slices.Sort(notify)
	after, err := r.modelStats(ctx)
	if err != nil {
		return nil, err
	}
	if len(after.Problems) > 0 {
		return nil, fmt.Errorf("the fake model saw protocol problems: %v", after.Problems[0])
	}
	t := &Throughput{
		Photos: n, Kind: r.opts.Kind, Pushers: r.opts.Pushers,
		Seconds: end.Sub(start).Seconds(), PushSeconds: pushEnd.Sub(start).Seconds(),
		NotifyP50Ms: ms(percentile(notify, 50)), NotifyP95Ms: ms(percentile(notify, 95)),
		ModelCalls: after.Calls - before.Calls, MaxServed: after.MaxServed, Jobs: jobs, Load: used,
	}
	t.PerSecond = float64(n) / t.Seconds
	t.Ratio = t.PerSecond / r.report.Settings.Ceiling
	return t, nil
}

// latency pushes photos C/2 at a time, each pusher waiting for its photo's
// description before pushing the next, so the model always has a free slot
// and nothing waits in a queue: what remains is regscribe's own time.
func (r *run) latency(ctx context.Context) (*Latency, error) {
	n := r.photosFor(200)
	atOnce := max(1, r.opts.Concurrency/2)
	photos := r.album.photos(r.opts.Kind, 0, n)
	r.progress("latency: %d × %s, %d at a time", n, r.opts.Kind.Describe(), atOnce)
	s, err := startStack(ctx, stackOptions{modelURL: r.model, workers: r.opts.Workers, storage: r.opts.Storage})
	if err != nil {
		return nil, err
	}
	defer s.close()
	p, err := newPusher(s.registry.Addr(), "photos/latency", atOnce)
	if err != nil {
		return nil, err
	}
	defer p.close()
	s.startWorkers()

	before, err := r.modelStats(ctx)
	if err != nil {
		return nil, err
	}
	load := r.measureLoad()
	var (
		mu            sync.Mutex
		added, notify []time.Duration
		next          atomic.Int64
		wg            sync.WaitGroup
	)
	errs := make(chan error, atOnce)
	for range atOnce {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				tag := tagOf(i)
				done := s.results.expect(tag)
				if _, err := p.push(ctx, tag, photos[i]); err != nil {
					errs <- err
					return
				}
				pushedAt := time.Now()
				select {
				case res := <-done:
					if res.Outcome != queue.Described {
						errs <- fmt.Errorf("photo %s: %s: %s", tag, res.Outcome, res.Reason)
						return
					}
					mu.Lock()
					added = append(added, res.At.Sub(pushedAt)-r.opts.Latency)
					notify = append(notify, res.Job.Received.Sub(pushedAt))
					mu.Unlock()
				case <-time.After(60 * time.Second):
					errs <- errors.New("photo " + tag + " not described within a minute")
					return
				case <-ctx.Done():
					errs <- ctx.Err()
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	used := load()
	after, err := r.modelStats(ctx)
	if err != nil {
		return nil, err
	}
	slices.Sort(added)
	slices.Sort(notify)
	l := &Latency{
		Photos: n, Kind: r.opts.Kind, AtOnce: atOnce,
		P50Ms: ms(percentile(added, 50)), P95Ms: ms(percentile(added, 95)), P99Ms: ms(percentile(added, 99)), MaxMs: ms(added[len(added)-1]),
		NotifyP50Ms: ms(percentile(notify, 50)), NotifyP95Ms: ms(percentile(notify, 95)),
		StageMs: map[string]float64{}, Load: used,
	}
	if calls := after.Calls - before.Calls; calls > 0 {
		l.ModelServerMs = (after.ChatSeconds-before.ChatSeconds)*1000/float64(calls) - ms(r.opts.Latency)
	}
	l.OwnP50Ms, l.OwnP95Ms = l.P50Ms-max(0, l.ModelServerMs), l.P95Ms-max(0, l.ModelServerMs)
	for stage, d := range s.stageMeans() {
		l.StageMs[stage] = ms(d)
	}
	return l, nil
}

// percentile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (p*len(sorted)+99)/100 - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// expected is a generous bound on describing n photos: three times what the
// model needs, plus a quarter second of CPU each (a 12 MP photo takes that
// to prepare), plus slack. It only bounds a run that went wrong.
func (r *run) expected(n int, slack time.Duration) time.Duration {
	waves := (n + r.opts.Concurrency - 1) / r.opts.Concurrency
	return 3*time.Duration(waves)*r.opts.Latency + time.Duration(n)*250*time.Millisecond + slack
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
