package memo

import (
	"context"
	"sync"

	"github.com/regscribe/regscribe/internal/vision"
)

// Local is a description memory in this process only, for one-off runs
// (`regscribe describe`) that have no NATS server.
type Local struct {
	mu sync.Mutex
	m  map[string]vision.Description
}

// NewLocal returns an empty Local memory.
func NewLocal() *Local { return &Local{m: map[string]vision.Description{}} }

// Get returns the remembered description and true, or false when there is none.
func (l *Local) Get(_ context.Context, k Key) (vision.Description, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d, ok := l.m[k.String()]
	return d, ok, nil
}

// Remember stores d unless a description is stored already, and returns the one stored.
func (l *Local) Remember(_ context.Context, k Key, d vision.Description) (vision.Description, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if stored, ok := l.m[k.String()]; ok {
		return stored, nil
	}
	l.m[k.String()] = d
	return d, nil
}

// Replace stores d whatever was there.
func (l *Local) Replace(_ context.Context, k Key, d vision.Description) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m[k.String()] = d
	return nil
}
