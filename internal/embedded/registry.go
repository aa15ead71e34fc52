package embedded

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	storagemiddleware "github.com/distribution/distribution/v3/registry/storage/driver/middleware"
	"github.com/sirupsen/logrus"

	// Storage drivers register themselves; NewApp panics without one.
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
)

// RegistryOptions configure [StartRegistry].
type RegistryOptions struct {
	// RootDir holds the registry's blobs and manifests. Empty means in memory.
	RootDir string
	// Listen is host:port; "host:0" picks a free port.
	Listen string
	// NotifyURL, if set, receives the registry's notifications.
	NotifyURL string
	// NotifyToken is sent as "Authorization: Bearer <token>" to NotifyURL.
	NotifyToken string
	// Storage, if set, wraps the registry's storage driver (tests: storage
	// that is slow to write some paths).
	Storage func(storagedriver.StorageDriver) storagedriver.StorageDriver
	// Debug logs the registry's own lines (requests at info level, after
	// start-up, whose info lines would print the token). By default the
	// registry logs nothing.
	Debug bool
}

// Registry is a running CNCF Distribution registry.
type Registry struct {
	app    *handlers.App
	server *http.Server
	ln     net.Listener
	done   chan error
}

// StartRegistry starts a Distribution registry with delete enabled (regscribe
// and oras prune fallback referrer indexes) and, when NotifyURL is set, a
// notification endpoint that ignores blob events, pulls and mounts, as the
// config in deploy/distribution does.
func StartRegistry(ctx context.Context, opts RegistryOptions) (*Registry, error) {
	cfg := &configuration.Configuration{}
	if opts.RootDir != "" {
		cfg.Storage = configuration.Storage{"filesystem": configuration.Parameters{"rootdirectory": opts.RootDir}}
	} else {
		cfg.Storage = configuration.Storage{"inmemory": configuration.Parameters{}}
	}
	cfg.Storage["delete"] = configuration.Parameters{"enabled": true}
	if opts.Storage != nil {
		if err := registerStorage(); err != nil {
			return nil, err
		}
		cfg.Middleware = map[string][]configuration.Middleware{"storage": {{Name: storageWrap, Options: configuration.Parameters{"wrap": opts.Storage}}}}
	}
	cfg.HTTP.Addr = opts.Listen
	// The catalog API lists repositories (`regscribe reprocess --all`); its
	// page size is 0, so empty, unless set.
	cfg.Catalog.MaxEntries = 1000
	cfg.Log.AccessLog.Disabled = true
	if opts.NotifyURL != "" {
		cfg.Notifications.Endpoints = []configuration.Endpoint{{
			Name:              "regscribe",
			URL:               opts.NotifyURL,
			Headers:           http.Header{"Authorization": []string{"Bearer " + opts.NotifyToken}},
			Timeout:           5 * time.Second,
			Threshold:         3,
			Backoff:           time.Second,
			IgnoredMediaTypes: []string{"application/octet-stream"},
			Ignore:            configuration.Ignore{Actions: []string{"pull", "mount"}},
		}}
	}
	// The registry logs through the global logrus logger. Its start-up
	// lines at info level print the endpoint's headers, and so the token:
	// it starts at warning level, and logs at info afterwards only with
	// Debug. Without Debug nothing is formatted at all (every 404 is an
	// "error" line).
	logrus.SetLevel(logrus.WarnLevel)
	if !opts.Debug {
		logrus.SetLevel(logrus.ErrorLevel)
		logrus.SetOutput(io.Discard)
	}

	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded registry: listen on %s: %w", opts.Listen, err)
	}
	app, err := newApp(ctx, cfg)
	if err != nil {
		ln.Close()
		return nil, err
	}
	if opts.Debug {
		logrus.SetLevel(logrus.InfoLevel)
	}
	r := &Registry{
		app:    app,
		server: &http.Server{Handler: app, ReadHeaderTimeout: 10 * time.Second},
		ln:     ln,
		done:   make(chan error, 1),
	}
	go func() { r.done <- r.server.Serve(ln) }()
	return r, nil
}

// storageWrap is the storage middleware that applies RegistryOptions.Storage.
const storageWrap = "regscribe-storage"

// registerStorage registers the storage middleware, once per process.
var registerStorage = sync.OnceValue(func() error {
	return storagemiddleware.Register(storageWrap, func(_ context.Context, d storagedriver.StorageDriver, options map[string]any) (storagedriver.StorageDriver, error) {
		wrap, ok := options["wrap"].(func(storagedriver.StorageDriver) storagedriver.StorageDriver)
		if !ok {
			return nil, fmt.Errorf("storage middleware %s: no wrap function", storageWrap)
		}
		return wrap(d), nil
	})
})

// newApp turns the registry's configuration panics into errors.
func newApp(ctx context.Context, cfg *configuration.Configuration) (app *handlers.App, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("embedded registry: %v", p)
		}
	}()
	return handlers.NewApp(ctx, cfg), nil
}

// Addr is the host:port the registry listens on.
func (r *Registry) Addr() string { return r.ln.Addr().String() }

// Stop stops serving and waits for requests in flight (up to ctx).
func (r *Registry) Stop(ctx context.Context) error {
	err := r.server.Shutdown(ctx)
	if serveErr := <-r.done; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	r.app.Shutdown()
	return err
}
