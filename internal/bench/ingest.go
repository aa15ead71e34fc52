package bench

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/regscribe/regscribe/internal/embedded"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/notifier"
)

// ingestClients is how many notifications are posted at once: many
// registries, or one with many replicas.
const ingestClients = 64

// ingest measures the notifier alone: Distribution envelopes posted over
// HTTP, each answered once embedded JetStream (file storage) stored its
// job, first 64 at a time, then one at a time as one Distribution
// notification endpoint sends them.
func (r *run) ingest(ctx context.Context) (*Ingest, error) {
	events := min(20000, max(100, 20*r.opts.Photos))
	sequential := max(10, events/10)
	r.progress("ingest: %d events, %d at a time; then %d, one at a time", events, ingestClients, sequential)
	dir, err := os.MkdirTemp("", "regscribe-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	js, stop, err := inProcessNATS(dir, "bench")
	if err != nil {
		return nil, err
	}
	defer stop()
	stream, err := queue.EnsureStream(ctx, js, queue.StreamOptions{})
	if err != nil {
		return nil, err
	}
	token := randomToken()
	n, err := notifier.New(queue.NewPublisher(js), notifier.Options{Token: token, Registry: "127.0.0.1:5000", Logger: discardLogger()})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: n, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	post := poster("http://"+ln.Addr().String()+"/v1/events", token)

	var seq atomic.Int64
	took, err := postAll(ctx, post, &seq, events, ingestClients)
	if err != nil {
		return nil, err
	}
	tookOne, err := postAll(ctx, post, &seq, sequential, 1)
	if err != nil {
		return nil, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, err
	}
	return &Ingest{
		Events: events, Clients: ingestClients, Seconds: took.Seconds(), PerSecond: float64(events) / took.Seconds(),
		SequentialEvents: sequential, SequentialPerSecond: float64(sequential) / tookOne.Seconds(),
		Stored: info.State.Msgs,
	}, nil
}

// postAll posts count events with clients at once, each a new manifest.
func postAll(ctx context.Context, post func(context.Context, int64) error, seq *atomic.Int64, count, clients int) (time.Duration, error) {
	var left atomic.Int64
	left.Store(int64(count))
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				if err := post(ctx, seq.Add(1)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	return took, <-errs
}

// poster returns a func that posts the notification of manifest push seq,
// as Distribution sends it, on keep-alive connections.
func poster(url, token string) func(context.Context, int64) error {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = ingestClients
	client := &http.Client{Transport: t}
	return func(ctx context.Context, seq int64) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(envelope(seq)))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", notifier.MediaTypeDistributionEvents)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("notifier answered %s", resp.Status)
		}
		return nil
	}
}

// envelope is a Distribution notification of one manifest push by tag, with
// every field Distribution v3 writes.
func envelope(seq int64) string {
	sum := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(seq)))
	digest := "sha256:" + hex.EncodeToString(sum[:])
	tag := tagOf(int(seq))
	now := time.Now().UTC().Format(time.RFC3339Nano)
	return `{"events":[{"id":"` + fmt.Sprintf("%016x", seq) + `","timestamp":"` + now + `","action":"push",` +
		`"target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + digest + `","size":612,` +
		`"length":612,"repository":"photos/ingest","url":"http://127.0.0.1:5000/v2/photos/ingest/manifests/` + digest + `",` +
		`"tag":"` + tag + `"},"request":{"id":"` + fmt.Sprintf("%032x", seq) + `","addr":"127.0.0.1:51234",` +
		`"host":"127.0.0.1:5000","method":"PUT","useragent":"oras/1.3.0"},"actor":{},` +
		`"source":{"addr":"bench:5000","instanceID":"00000000-0000-0000-0000-000000000000"}}]}`
}

// inProcessNATS starts a NATS server with JetStream on file storage under
// dir and connects to it in process; stop closes both.
func inProcessNATS(dir, name string, opts ...jetstream.JetStreamOpt) (jetstream.JetStream, func(), error) {
	ns, err := embedded.StartNATS(embedded.NATSOptions{StoreDir: filepath.Join(dir, "nats"), Listen: "off", ServerName: name})
	if err != nil {
		return nil, nil, err
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		ns.Stop()
		return nil, nil, err
	}
	stop := func() { nc.Close(); ns.Stop() }
	js, err := jetstream.New(nc, opts...)
	if err != nil {
		stop()
		return nil, nil, err
	}
	return js, stop, nil
}
