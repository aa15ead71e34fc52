package worker

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// gate holds jobs while the model is unavailable: slots stop taking new
// jobs, jobs in flight wait (without spending an attempt) and a single probe
// watches for the model to come back.
type gate struct {
	log     *slog.Logger
	model   Describer
	outages Outages // nil: not reported

	mu   sync.Mutex
	open chan struct{} // closed while the model is usable
}

func newGate(log *slog.Logger, model Describer, outages Outages) *gate {
	g := &gate{log: log, model: model, outages: outages, open: make(chan struct{})}
	close(g.open)
	return g
}

// Wait returns nil once the model is usable, or ctx's error.
func (g *gate) Wait(ctx context.Context) error {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	select {
	case <-open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Down closes the gate after a job met an unavailable model, and starts the
// probe that reopens it. Repeated calls while closed do nothing.
func (g *gate) Down(cause error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
	default:
		return // already down
	}
	g.open = make(chan struct{})
	g.log.Error("model unavailable; jobs wait in the queue until it is back", "err", cause)
	g.report(cause)
	go g.probe(g.open)
}

// report tells the outage board (if any) that the model is unreachable
// (cause not nil) or reachable again.
func (g *gate) report(cause error) {
	if g.outages == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	if cause != nil {
		err = g.outages.Down(ctx, g.model.Model(), cause)
	} else {
		err = g.outages.Up(ctx, g.model.Model())
	}
	if err != nil {
		g.log.Warn("could not report the model's state to the gallery and `regscribe status`", "err", err)
	}
}

func (g *gate) probe(open chan struct{}) {
	delay := time.Second
	for {
		time.Sleep(delay)
		if delay < 30*time.Second {
			delay *= 2
		}
		if c, ok := g.model.(Checker); ok {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := c.Check(ctx)
			cancel()
			if err != nil {
				g.log.Debug("model still unavailable", "err", err)
				g.report(err)
				continue
			}
		}
		g.log.Info("model is available again; resuming")
		g.report(nil)
		g.mu.Lock()
		close(open)
		g.mu.Unlock()
		return
	}
}
