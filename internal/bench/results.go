package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/regscribe/regscribe/internal/queue"
)

// results follows the job results workers publish ([queue.Result] on
// regscribe.results.*, which internal/reprocess waits for too), with a
// plain subscription: a result's At is when the worker settled the job,
// after its write-back, on this process's clock.
type results struct {
	sub  *nats.Subscription
	ch   chan *nats.Msg
	quit chan struct{}

	mu      sync.Mutex
	counts  map[queue.Outcome]int
	done    map[string]queue.Result // the described (or failed) result per tag
	waiters map[string]chan queue.Result
	changed chan struct{}
	reason  string // why the first failed job failed
}

func watchResults(nc *nats.Conn) (*results, error) {
	r := &results{
		ch:      make(chan *nats.Msg, 1<<16),
		quit:    make(chan struct{}),
		counts:  map[queue.Outcome]int{},
		done:    map[string]queue.Result{},
		waiters: map[string]chan queue.Result{},
		changed: make(chan struct{}, 1),
	}
	var err error
	if r.sub, err = nc.ChanSubscribe(queue.ResultSubjectPrefix+">", r.ch); err != nil {
		return nil, fmt.Errorf("follow results: %w", err)
	}
	_ = r.sub.SetPendingLimits(-1, -1)
	if err := nc.Flush(); err != nil {
		return nil, err
	}
	go r.follow()
	return r, nil
}

func (r *results) follow() {
	for {
		var m *nats.Msg
		select {
		case m = <-r.ch:
		case <-r.quit:
			return
		}
		var res queue.Result
		if json.Unmarshal(m.Data, &res) != nil {
			continue
		}
		r.mu.Lock()
		r.counts[res.Outcome]++
		if res.Outcome == queue.Failed && r.reason == "" {
			r.reason = res.Reason
		}
		// A photo's own job is described (or failed); a job of its
		// write-back (none when the notifier knows the tag move) finds the
		// description there and is skipped.
		if res.Outcome != queue.Skipped {
			if _, seen := r.done[res.Job.Tag]; !seen {
				r.done[res.Job.Tag] = res
				if w := r.waiters[res.Job.Tag]; w != nil {
					w <- res
					delete(r.waiters, res.Job.Tag)
				}
			}
		}
		r.mu.Unlock()
		select {
		case r.changed <- struct{}{}:
		default:
		}
	}
}

func (r *results) stop() {
	_ = r.sub.Unsubscribe()
	close(r.quit)
}

// expect returns a channel that receives the result of tag's photo.
func (r *results) expect(tag string) <-chan queue.Result {
	ch := make(chan queue.Result, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if res, ok := r.done[tag]; ok {
		ch <- res
	} else {
		r.waiters[tag] = ch
	}
	return ch
}

// tally counts results by outcome.
type tally struct {
	Described int `json:"described"`
	Skipped   int `json:"skipped"`
	Failed    int `json:"failed"`
}

func (t tally) total() int { return t.Described + t.Skipped + t.Failed }

func (r *results) tally() tally {
	r.mu.Lock()
	defer r.mu.Unlock()
	return tally{Described: r.counts[queue.Described], Skipped: r.counts[queue.Skipped], Failed: r.counts[queue.Failed]}
}

// finished returns the results of photos' own jobs, by tag.
func (r *results) finished() map[string]queue.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]queue.Result, len(r.done))
	for k, v := range r.done {
		out[k] = v
	}
	return out
}

// waitFor waits until ok holds for the tally, or timeout passes.
func (r *results) waitFor(ctx context.Context, timeout time.Duration, ok func(tally) bool) (tally, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		t := r.tally()
		if ok(t) {
			return t, nil
		}
		select {
		case <-r.changed:
		case <-tick.C:
		case <-deadline.C:
			return t, fmt.Errorf("gave up waiting after %v: %d described, %d skipped, %d failed", timeout, t.Described, t.Skipped, t.Failed)
		case <-ctx.Done():
			return t, ctx.Err()
		}
	}
}

// settled waits until n photos' jobs ended (a write-back, pushed by the tag
// it moves, makes no job: the notifier knows regscribe's own tag moves). A
// photo's job failing is an error.
func (r *results) settled(ctx context.Context, n int, timeout time.Duration) (tally, error) {
	t, err := r.waitFor(ctx, timeout, func(t tally) bool { return t.Described+t.Failed >= n })
	if err != nil {
		return t, err
	}
	if t.Failed > 0 {
		r.mu.Lock()
		defer r.mu.Unlock()
		return t, fmt.Errorf("%d of %d photos failed, the first because: %s", t.Failed, n, r.reason)
	}
	return t, nil
}
