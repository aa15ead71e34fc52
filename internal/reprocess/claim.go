package reprocess

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/regscribe/regscribe/internal/lease"
	"github.com/regscribe/regscribe/internal/registry"
)

// Locker hands out leases held across processes (package lease): a run
// holds one per repository it reprocesses.
type Locker interface {
	TryLock(ctx context.Context, name, holder string) (held context.Context, unlock func(), err error)
}

var _ Locker = (*lease.Leases)(nil)

// Holder is the run that holds a repository's lease, as a second run is
// told of it.
type Holder struct {
	// Batch is the run's batch id; By says where it runs ("regscribe
	// reprocess on host (pid N)", "the gallery's jobs page on host").
	Batch   string    `json:"batch"`
	By      string    `json:"by"`
	Started time.Time `json:"started"`
}

// NewHolder is a run of batch started now, by what by says, on this host.
func NewHolder(batch, by string) Holder {
	host, _ := os.Hostname()
	return Holder{Batch: batch, By: fmt.Sprintf("%s on %s (pid %d)", by, cmp.Or(host, "this host"), os.Getpid()), Started: time.Now().UTC()}
}

// RunningError is [Claim]'s error when another run holds a repository.
type RunningError struct {
	Repository string // registry/repository
	Holder     Holder
}

func (e *RunningError) Error() string {
	return fmt.Sprintf("%s is being reprocessed already: batch %s, by %s, since %s; "+
		"one run per repository at a time: wait for it to end (its progress is on the jobs page of the gallery that started it, or in the terminal that did)",
		e.Repository, e.Holder.Batch, e.Holder.By, e.Holder.Started.Format(time.RFC3339))
}

// LeaseName is the lease a run holds on one repository: the registry by a
// key of its name that every loopback spelling shares ([registry.Key]).
func LeaseName(reg, repository string) string {
	return "reprocess " + registry.Key(reg) + "/" + repository
}

// Claim takes the lease on each repository of reg for the run h, so that
// one reprocess runs per repository at a time across processes: the
// returned context ends when ctx does or a lease is lost, and release
// gives every lease back. When another run holds one, Claim takes none
// and returns a [*RunningError] naming that run.
func Claim(ctx context.Context, locker Locker, reg string, repositories []string, h Holder) (held context.Context, release func(), err error) {
	holder, err := json.Marshal(h)
	if err != nil {
		return nil, nil, err
	}
	var unlocks []func()
	release = func() {
		for _, u := range slices.Backward(unlocks) {
			u()
		}
	}
	held = ctx
	for _, repo := range slices.Compact(slices.Sorted(slices.Values(repositories))) {
		next, unlock, err := locker.TryLock(held, LeaseName(reg, repo), string(holder))
		if err != nil {
			release()
			var taken *lease.HeldError
			if errors.As(err, &taken) {
				running := &RunningError{Repository: reg + "/" + repo}
				if json.Unmarshal([]byte(taken.Holder), &running.Holder) != nil {
					running.Holder.By = taken.Holder
				}
				return nil, nil, running
			}
			return nil, nil, fmt.Errorf("reprocess %s/%s: %w", reg, repo, err)
		}
		held, unlocks = next, append(unlocks, unlock)
	}
	return held, release, nil
}

// Repositories are the repositories of items, sorted, each once.
func Repositories(items []Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Repository)
	}
	return slices.Compact(slices.Sorted(slices.Values(out)))
}
