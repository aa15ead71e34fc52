package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
	orasgo "oras.land/oras-go/v2"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/regscribe/regscribe/internal/embedded"
	"github.com/regscribe/regscribe/internal/modeltest"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/stacktest"
)

// TestWorkerKilledMidModelCall: a `regscribe worker` process killed with
// SIGKILL while its model call runs; JetStream delivers the job again to
// another worker process, which finishes it: one description.
func TestWorkerKilledMidModelCall(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns, js := startQueue(t)
	reg := startRegistry(t)

	var calls atomic.Int32
	model := modeltest.NewOllama(stacktest.Model)
	model.Answer = func(c modeltest.Call) modeltest.Reply {
		if calls.Add(1) == 1 {
			return modeltest.Hang() // the first worker dies in here
		}
		return modeltest.DescribeByDigest(c)
	}
	t.Cleanup(model.Close)

	// A photo in the registry, and its job on the queue.
	repo := openRepo(t, reg.Addr(), "photos/killed")
	photo := stacktest.JPEG(t, 200, 150, 77)
	desc := pushPhoto(t, repo, "latest", photo)
	require.NoError(t, queue.NewPublisher(js).Publish(ctx, queue.Job{Version: 1, Registry: reg.Addr(), Repository: "photos/killed",
		Digest: desc.Digest.String(), Tag: "latest", Source: "test", Received: time.Now()}))

	env := append(os.Environ(),
		"REGSCRIBE_NATS_URL="+ns.ClientURL(),
		"REGSCRIBE_REGISTRIES=http://"+reg.Addr(),
		"OLLAMA_HOST="+model.URL,
		"REGSCRIBE_MODEL="+stacktest.Model,
		"REGSCRIBE_ACK_WAIT=2s",
		"REGSCRIBE_METRICS_LISTEN=off",
	)
	first := exec.Command(binary, "worker")
	first.Env = env
	require.NoError(t, first.Start())
	require.Eventually(t, func() bool { return calls.Load() == 1 }, 30*time.Second, 10*time.Millisecond, "the first worker never called the model")
	require.NoError(t, first.Process.Kill()) // SIGKILL, mid model call
	_ = first.Wait()

	second := exec.Command(binary, "worker")
	second.Env = env
	require.NoError(t, second.Start())
	t.Cleanup(func() { _ = second.Process.Kill(); _ = second.Wait() })

	require.Eventually(t, func() bool { return description(repo, "latest") != "" }, 30*time.Second, 50*time.Millisecond)
	require.Equal(t, "A test photo "+modeltest.Digest(photo)[:19]+".", description(repo, "latest"))

	// Finished once: one result, described, on its second delivery.
	var results []queue.Result
	require.Eventually(t, func() bool {
		st, err := js.Stream(ctx, queue.ResultStream)
		if err != nil {
			return false
		}
		info, err := st.Info(ctx)
		if err != nil || info.State.Msgs == 0 {
			return false
		}
		results = nil
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
			m, err := st.GetMsg(ctx, seq)
			require.NoError(t, err)
			var r queue.Result
			require.NoError(t, json.Unmarshal(m.Data, &r))
			if r.Job.Digest == desc.Digest.String() {
				results = append(results, r)
			}
		}
		return len(results) > 0
	}, 10*time.Second, 50*time.Millisecond)
	require.Len(t, results, 1)
	require.Equal(t, queue.Described, results[0].Outcome)
	require.Equal(t, 2, results[0].Attempts)
	require.Equal(t, int32(2), calls.Load())
}

// TestWorkerShutdown: on SIGTERM a worker stops taking jobs and lets the
// job in flight finish; with a short REGSCRIBE_SHUTDOWN_TIMEOUT it hands
// the job back at once instead, and the next worker takes it right away.
func TestWorkerShutdown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns, js := startQueue(t)
	reg := startRegistry(t)
	var calls atomic.Int32
	var slow atomic.Bool
	model := modeltest.NewOllama(stacktest.Model)
	model.Answer = func(c modeltest.Call) modeltest.Reply {
		calls.Add(1)
		if slow.Load() {
			time.Sleep(1500 * time.Millisecond)
		} else {
			return modeltest.Hang()
		}
		return modeltest.DescribeByDigest(c)
	}
	t.Cleanup(model.Close)
	repo := openRepo(t, reg.Addr(), "photos/shutdown")
	queuePhoto := func(tag string, seed uint64) {
		desc := pushPhoto(t, repo, tag, stacktest.JPEG(t, 100, 80, seed))
		require.NoError(t, queue.NewPublisher(js).Publish(ctx, queue.Job{Version: 1, Registry: reg.Addr(), Repository: "photos/shutdown",
			Digest: desc.Digest.String(), Tag: tag, Source: "test", Received: time.Now()}))
	}
	described := func(tag string) bool { return description(repo, tag) != "" }
	start := func(timeout string) *exec.Cmd {
		cmd := exec.Command(binary, "worker")
		cmd.Env = append(os.Environ(), "REGSCRIBE_NATS_URL="+ns.ClientURL(), "REGSCRIBE_REGISTRIES=http://"+reg.Addr(),
			"OLLAMA_HOST="+model.URL, "REGSCRIBE_MODEL="+stacktest.Model, "REGSCRIBE_ACK_WAIT=60s",
			"REGSCRIBE_METRICS_LISTEN=off", "REGSCRIBE_SHUTDOWN_TIMEOUT="+timeout)
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}

	// 1. The job in flight finishes within the shutdown timeout.
	slow.Store(true)
	w := start("30s")
	queuePhoto("finishes", 1)
	require.Eventually(t, func() bool { return calls.Load() == 1 }, 30*time.Second, 10*time.Millisecond)
	require.NoError(t, w.Process.Signal(os.Interrupt))
	require.NoError(t, w.Wait(), "a clean exit")
	require.True(t, described("finishes"), "the job in flight was finished before exit")

	// 2. A job that cannot finish in time is handed back, not left to its 60 s ack wait.
	slow.Store(false)
	w = start("300ms")
	queuePhoto("handed-back", 2)
	require.Eventually(t, func() bool { return calls.Load() == 2 }, 30*time.Second, 10*time.Millisecond)
	require.NoError(t, w.Process.Signal(os.Interrupt))
	require.NoError(t, w.Wait())
	slow.Store(true)
	start("30s")
	require.Eventually(t, func() bool { return described("handed-back") }, 20*time.Second, 50*time.Millisecond,
		"the next worker took the handed-back job well before the 60 s ack wait")
}

// TestZotNATSSink: zot publishes CloudEvents with core NATS on a subject;
// `regscribe up` captures that subject in its job stream and its workers
// turn the events into jobs, with no HTTP hop. A malformed event becomes a
// dead letter that keeps the raw event.
func TestZotNATSSink(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := startRegistry(t) // stands in for zot: no notifications
	model := modeltest.NewOllama(stacktest.Model)
	t.Cleanup(model.Close)
	natsAddr := freeAddr(t)
	p := startUp(t,
		"REGSCRIBE_DATA_DIR="+t.TempDir(),
		"REGSCRIBE_LISTEN="+freeAddr(t),
		"REGSCRIBE_NATS_LISTEN="+natsAddr,
		"REGSCRIBE_REGISTRY_ADDR=off",
		"REGSCRIBE_REGISTRIES=http://"+reg.Addr(),
		"REGSCRIBE_NOTIFY_TOKEN=t0ken",
		"REGSCRIBE_ZOT_SUBJECT=zot.events",
		"REGSCRIBE_ZOT_REGISTRY="+reg.Addr(),
		"OLLAMA_HOST="+model.URL,
		"REGSCRIBE_MODEL="+stacktest.Model,
	)
	p.WaitLog(t, "taking zot events from NATS")

	repo := openRepo(t, reg.Addr(), "photos/kumquat")
	desc := pushPhoto(t, repo, "v2", stacktest.JPEG(t, 120, 90, 88))

	// As zot's nats sink publishes: core NATS, structured CloudEvent, no ack.
	nc, err := nats.Connect("nats://" + natsAddr)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	event := fmt.Sprintf(`{"specversion":"1.0","id":"e1","source":"zotregistry.dev","type":"zotregistry.image.updated","datacontenttype":"application/json",
		"data":{"name":"photos/kumquat","reference":"v2","digest":%q,"mediaType":"application/vnd.oci.image.manifest.v1+json"}}`, desc.Digest)
	require.NoError(t, nc.Publish("zot.events", []byte(event)))
	require.NoError(t, nc.Publish("zot.events", []byte(`{"specversion":"1.0","type":"zotregistry.image.updated","data":{"name":"../x"}}`)))
	require.NoError(t, nc.Flush())

	require.Eventually(t, func() bool { return description(repo, "v2") != "" }, 30*time.Second, 50*time.Millisecond)

	js, err := jetstream.New(nc)
	require.NoError(t, err)
	var dead []queue.DeadLetter
	require.Eventually(t, func() bool {
		dead, err = queue.DeadLetters(ctx, js)
		return err == nil && len(dead) == 1
	}, 10*time.Second, 50*time.Millisecond)
	require.Contains(t, dead[0].Error, "malformed event on zot.events")
	require.Contains(t, dead[0].Error, `"name":"../x"`, "the raw event is kept")
	p.Stop(t)
}

// TestSourcesFile: a Harbor source from REGSCRIBE_SOURCES_FILE, with its own
// path and token; an event naming another registry is refused.
func TestSourcesFile(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t) // stands in for Harbor
	model := modeltest.NewOllama(stacktest.Model)
	t.Cleanup(model.Close)
	sources := filepath.Join(t.TempDir(), "sources.yaml")
	require.NoError(t, os.WriteFile(sources, []byte(fmt.Sprintf(`sources:
  - name: harbor
    format: harbor
    registry: %s
    aliases: [harbor.example.com]
    auth: {bearer: "harbor-s3cret"}
`, reg.Addr())), 0o600))
	listen := freeAddr(t)
	p := startUp(t,
		"REGSCRIBE_DATA_DIR="+t.TempDir(),
		"REGSCRIBE_LISTEN="+listen,
		"REGSCRIBE_NATS_LISTEN="+freeAddr(t),
		"REGSCRIBE_REGISTRY_ADDR=off",
		"REGSCRIBE_REGISTRIES=http://"+reg.Addr(),
		"REGSCRIBE_SOURCES_FILE="+sources,
		"OLLAMA_HOST="+model.URL,
		"REGSCRIBE_MODEL="+stacktest.Model,
	)
	p.WaitLog(t, "model ready")

	repo := openRepo(t, reg.Addr(), "team/photos")
	desc := pushPhoto(t, repo, "v1", stacktest.JPEG(t, 120, 90, 89))

	post := func(token, host string) int {
		body := fmt.Sprintf(`{"type":"PUSH_ARTIFACT","occur_at":1764275000,"operator":"alice","event_data":{"resources":[{"digest":%q,"tag":"v1","resource_url":"%s/team/photos:v1"}],"repository":{"name":"photos","namespace":"team","repo_full_name":"team/photos","repo_type":"private"}}}`, desc.Digest, host)
		req, err := http.NewRequest(http.MethodPost, "http://"+listen+"/v1/events/harbor", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusUnauthorized, post("wrong", "harbor.example.com"))
	require.Equal(t, http.StatusForbidden, post("harbor-s3cret", "evil.example.com"), "an event naming another registry is refused")
	require.Equal(t, http.StatusOK, post("harbor-s3cret", "harbor.example.com"))

	require.Eventually(t, func() bool { return description(repo, "v1") != "" }, 30*time.Second, 50*time.Millisecond)
	require.NotContains(t, p.Log(), "harbor-s3cret")
	p.Stop(t)
}

// startRegistry starts a Distribution registry without notifications.
func startRegistry(t *testing.T) *embedded.Registry {
	t.Helper()
	reg, err := embedded.StartRegistry(context.Background(), embedded.RegistryOptions{Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg.Stop(context.Background()) })
	return reg
}

// startQueue starts a NATS server with regscribe's streams, for worker
// processes to join.
func startQueue(t *testing.T) (*embedded.NATS, jetstream.JetStream) {
	t.Helper()
	ns, err := embedded.StartNATS(embedded.NATSOptions{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	t.Cleanup(ns.Stop)
	nc, err := nats.Connect(ns.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = queue.EnsureStream(context.Background(), js, queue.StreamOptions{})
	require.NoError(t, err)
	return ns, js
}

// openRepo returns a plain-HTTP handle on host/name.
func openRepo(t *testing.T, host, name string) *remote.Repository {
	t.Helper()
	repo, err := remote.NewRepository(host + "/" + name)
	require.NoError(t, err)
	repo.PlainHTTP = true
	repo.Client = stacktest.UserClient
	return repo
}

// pushPhoto pushes a one-photo artifact and tags it.
func pushPhoto(t *testing.T, repo *remote.Repository, tag string, photo []byte) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	layer, err := orasgo.PushBytes(ctx, repo, "image/jpeg", photo)
	require.NoError(t, err)
	desc, err := orasgo.PackManifest(ctx, repo, orasgo.PackManifestVersion1_1, "application/vnd.example.photo", orasgo.PackManifestOptions{Layers: []ocispec.Descriptor{layer}})
	require.NoError(t, err)
	require.NoError(t, repo.Tag(ctx, desc, tag))
	return desc
}

// description is the io.regscribe.description of the manifest at reference ("" if none).
func description(repo *remote.Repository, reference string) string {
	_, raw, err := orasgo.FetchBytes(context.Background(), repo, reference, orasgo.DefaultFetchBytesOptions)
	var m struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err != nil || json.Unmarshal(raw, &m) != nil {
		return ""
	}
	return m.Annotations["io.regscribe.description"]
}
