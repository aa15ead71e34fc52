package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/regscribe/regscribe/internal/embedded"
	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/memo"
	"github.com/regscribe/regscribe/internal/modeltest"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/stacktest"
	"github.com/regscribe/regscribe/internal/vision"
	"github.com/regscribe/regscribe/worker"
)

// registries are the two in-process registries every write-back case runs
// against: CNCF Distribution has no referrers API (oras-go falls back to the
// sha256-<hex> index tag); go-containerregistry's has one.
var registries = []struct {
	name  string
	start func(t *testing.T) string
}{
	{"distribution", func(t *testing.T) string {
		r, err := embedded.StartRegistry(context.Background(), embedded.RegistryOptions{Listen: "127.0.0.1:0"})
		require.NoError(t, err)
		t.Cleanup(func() { _ = r.Stop(context.Background()) })
		return r.Addr()
	}},
	{"ggcr-referrers", func(t *testing.T) string {
		srv := httptest.NewServer(ggcr.New(ggcr.WithReferrersSupport(true), ggcr.Logger(log.New(io.Discard, "", 0))))
		t.Cleanup(srv.Close)
		return strings.TrimPrefix(srv.URL, "http://")
	}},
}

// rig is one registry, one fake model and a way to make workers for them.
type rig struct {
	host   string
	model  *modeltest.Ollama
	memory *memo.Local
}

func newRig(t *testing.T, host string) *rig {
	m := modeltest.NewOllama(stacktest.Model)
	t.Cleanup(m.Close)
	return &rig{host: host, model: m, memory: memo.NewLocal()}
}

// worker returns a worker with its own registry client, as another process would have.
func (r *rig) worker(t *testing.T, opts worker.Options, model ...string) *worker.Worker {
	name := stacktest.Model
	if len(model) > 0 {
		name = model[0]
		r.model.AddModel(name)
	}
	client, err := registry.New([]registry.Endpoint{{Host: r.host, PlainHTTP: true}}, registry.Options{Credentials: credentials.NewMemoryStore()})
	require.NoError(t, err)
	base, _ := url.Parse(r.model.URL)
	d := vision.NewOllama(vision.OllamaOptions{BaseURL: base, Model: name, Timeout: 10 * time.Second})
	opts.Logger = stacktest.Logger(t)
	return worker.New(client, d, r.memory, opts)
}

func (r *rig) repo(t *testing.T, name string) *remote.Repository {
	repo, err := remote.NewRepository(r.host + "/" + name)
	require.NoError(t, err)
	repo.PlainHTTP = true
	return repo
}

// push pushes a photo artifact as oras push does, tagged.
func (r *rig) push(t *testing.T, repoName, tag string, ann map[string]string, photos ...[]byte) ocispec.Descriptor {
	ctx := context.Background()
	repo := r.repo(t, repoName)
	var layers []ocispec.Descriptor
	for i, p := range photos {
		d := content.NewDescriptorFromBytes("image/jpeg", p)
		d.Annotations = map[string]string{ocispec.AnnotationTitle: fmt.Sprintf("photo-%d.jpg", i)}
		require.NoError(t, repo.Push(ctx, d, strings.NewReader(string(p))))
		layers = append(layers, d)
	}
	if ann == nil {
		ann = map[string]string{}
	}
	ann[ocispec.AnnotationCreated] = "2026-11-27T20:00:00Z"
	desc, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "application/vnd.example.photo", oras.PackManifestOptions{Layers: layers, ManifestAnnotations: ann})
	require.NoError(t, err)
	require.NoError(t, repo.Tag(ctx, desc, tag))
	return desc
}

// attach attaches a referrer of another kind (a signature, say) to subject.
func (r *rig) attach(t *testing.T, repoName string, subject ocispec.Descriptor, artifactType string) ocispec.Descriptor {
	desc, err := oras.PackManifest(context.Background(), r.repo(t, repoName), oras.PackManifestVersion1_1, artifactType,
		oras.PackManifestOptions{Subject: &subject, ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: time.Now().Format(time.RFC3339Nano)}})
	require.NoError(t, err)
	return desc
}

// album pushes an index of children, tagged, as an album of photos.
func (r *rig) album(t *testing.T, repoName, tag string, ann map[string]string, children ...ocispec.Descriptor) ocispec.Descriptor {
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: children, Annotations: ann}
	raw, err := json.Marshal(idx)
	require.NoError(t, err)
	d, err := oras.TagBytes(context.Background(), r.repo(t, repoName), ocispec.MediaTypeImageIndex, raw, tag)
	require.NoError(t, err)
	return d
}

// immutableTags puts a proxy in front of the registry at backend that,
// like Harbor's immutable tags, refuses to move a tag once pushed, and
// returns its host.
func immutableTags(t *testing.T, backend string) string {
	target, _ := url.Parse("http://" + backend)
	proxy := httputil.NewSingleHostReverseProxy(target)
	tagged := sync.Map{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/manifests/") && !strings.Contains(req.URL.Path, "/manifests/sha256:") {
			if _, loaded := tagged.LoadOrStore(req.URL.Path, true); loaded {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusPreconditionFailed)
				_, _ = w.Write([]byte(`{"errors":[{"code":"DENIED","message":"the tag is immutable"}]}`))
				return
			}
		}
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func (r *rig) resolve(t *testing.T, repoName, ref string) ocispec.Descriptor {
	d, err := r.repo(t, repoName).Resolve(context.Background(), ref)
	require.NoError(t, err)
	return d
}

func (r *rig) referrers(t *testing.T, repoName string, subject ocispec.Descriptor, artifactType string) []ocispec.Descriptor {
	var out []ocispec.Descriptor
	require.NoError(t, r.repo(t, repoName).Referrers(context.Background(), subject, artifactType, func(refs []ocispec.Descriptor) error {
		out = append(out, refs...)
		return nil
	}))
	return out
}

func (r *rig) manifest(t *testing.T, repoName, ref string) ocispec.Manifest {
	_, raw, err := oras.FetchBytes(context.Background(), r.repo(t, repoName), ref, oras.DefaultFetchBytesOptions)
	require.NoError(t, err)
	var m ocispec.Manifest
	require.NoError(t, json.Unmarshal(raw, &m))
	return m
}

func job(host, repo string, d ocispec.Descriptor, tag string) queue.Job {
	return queue.Job{Version: 1, Registry: host, Repository: repo, Digest: d.Digest.String(), Tag: tag, Source: "test"}
}

func TestWriteBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, reg := range registries {
		t.Run(reg.name, func(t *testing.T) {
			t.Parallel()
			host := reg.start(t)
			cases := []struct {
				name string
				run  func(t *testing.T, r *rig, repo string)
			}{
				{"annotation mode re-pushes and moves the tag", func(t *testing.T, r *rig, repo string) {
					photo := stacktest.JPEG(t, 120, 80, 1)
					pushed := r.push(t, repo, "latest", nil, photo)
					res, err := r.worker(t, worker.Options{Mode: worker.ModeAnnotation}).Process(ctx, job(host, repo, pushed, "latest"))
					require.NoError(t, err)
					require.Equal(t, worker.ModeAnnotation, res.Mode)
					now := r.resolve(t, repo, "latest")
					require.Equal(t, res.Written.Descriptor.Digest, now.Digest)
					require.Equal(t, expectedText(photo), r.manifest(t, repo, "latest").Annotations[registry.AnnotationDescription])
				}},
				{"referrer mode leaves the photo untouched", func(t *testing.T, r *rig, repo string) {
					photo := stacktest.JPEG(t, 120, 80, 2)
					pushed := r.push(t, repo, "latest", nil, photo)
					res, err := r.worker(t, worker.Options{Mode: worker.ModeReferrer}).Process(ctx, job(host, repo, pushed, "latest"))
					require.NoError(t, err)
					require.Equal(t, worker.ModeReferrer, res.Mode)
					require.Equal(t, pushed.Digest, r.resolve(t, repo, "latest").Digest)
					refs := r.referrers(t, repo, pushed, registry.ArtifactTypeDescription)
					require.Len(t, refs, 1)
					require.Equal(t, expectedText(photo), refs[0].Annotations[registry.AnnotationDescription], "oras discover shows the description")
					require.Equal(t, "ollama/"+stacktest.Model, refs[0].Annotations[registry.AnnotationModel])
					rm := r.manifest(t, repo, refs[0].Digest.String())
					require.Equal(t, registry.ArtifactTypeDescription, rm.ArtifactType)
					require.Equal(t, pushed.Digest, rm.Subject.Digest)
					client, err := registry.New([]registry.Endpoint{{Host: host, PlainHTTP: true}}, registry.Options{Credentials: credentials.NewMemoryStore()})
					require.NoError(t, err)
					rr, err := client.Repository(host, repo)
					require.NoError(t, err)
					rec, err := client.FetchRecord(ctx, rr, refs[0])
					require.NoError(t, err)
					require.Equal(t, pushed.Digest.String(), rec.Subject)
					require.Len(t, rec.Photos, 1)
					require.Equal(t, expectedText(photo), rec.Photos[0].Description)
					require.Equal(t, "photo-0.jpg", rec.Photos[0].Title)
					require.Equal(t, vision.Prompt{}.Digest(), rec.PromptDigest)

					// Its own referrer, delivered as a job, is skipped.
					_, err = r.worker(t, worker.Options{Mode: worker.ModeReferrer}).Process(ctx, job(host, repo, refs[0], ""))
					require.True(t, fault.Is(err, fault.KindSkip), "%v", err)
				}},
				{"auto annotates a plain photo", func(t *testing.T, r *rig, repo string) {
					pushed := r.push(t, repo, "latest", nil, stacktest.JPEG(t, 120, 80, 3))
					res, err := r.worker(t, worker.Options{}).Process(ctx, job(host, repo, pushed, "latest"))
					require.NoError(t, err)
					require.Equal(t, worker.ModeAnnotation, res.Mode)
					require.NotEqual(t, pushed.Digest, r.resolve(t, repo, "latest").Digest)
				}},
				{"auto keeps a photo with referrers, and its referrers", func(t *testing.T, r *rig, repo string) {
					pushed := r.push(t, repo, "latest", nil, stacktest.JPEG(t, 120, 80, 4))
					sig := r.attach(t, repo, pushed, "application/vnd.example.signature")
					res, err := r.worker(t, worker.Options{}).Process(ctx, job(host, repo, pushed, "latest"))
					require.NoError(t, err)
					require.Equal(t, worker.ModeReferrer, res.Mode)
					require.Equal(t, pushed.Digest, r.resolve(t, repo, "latest").Digest, "the photo keeps its digest")
					refs := r.referrers(t, repo, pushed, "")
					require.Len(t, refs, 2)
					var digests []string
					for _, d := range refs {
						digests = append(digests, d.Digest.String())
					}
					require.Contains(t, digests, sig.Digest.String())
					require.Contains(t, digests, res.Written.Descriptor.Digest.String())
				}},
				{"already described: no model call", func(t *testing.T, r *rig, repo string) {
					pushed := r.push(t, repo, "latest", nil, stacktest.JPEG(t, 120, 80, 5))
					w := r.worker(t, worker.Options{Mode: worker.ModeReferrer})
					_, err := w.Process(ctx, job(host, repo, pushed, "latest"))
					require.NoError(t, err)
					calls := len(r.model.Calls())
					// A new worker (nothing remembered in-process) finds the referrer.
					r.memory = memo.NewLocal()
					_, err = r.worker(t, worker.Options{Mode: worker.ModeReferrer}).Process(ctx, job(host, repo, pushed, "latest"))
					require.True(t, fault.Is(err, fault.KindSkip), "%v", err)
					require.Equal(t, calls, len(r.model.Calls()))
				}},
				{"five deliveries over three workers write one description", func(t *testing.T, r *rig, repo string) {
					for i, mode := range []worker.Mode{worker.ModeReferrer, worker.ModeAnnotation} {
						// A photo of its own per mode: the referrer describes the first for any mode.
						pushed := r.push(t, repo, string(mode), nil, stacktest.JPEG(t, 120, 80, uint64(40+i)))
						r.model.Latency = 50 * time.Millisecond
						workers := []*worker.Worker{r.worker(t, worker.Options{Mode: mode}), r.worker(t, worker.Options{Mode: mode}), r.worker(t, worker.Options{Mode: mode})}
						var wg sync.WaitGroup
						written := make(chan string, 5)
						for i := range 5 {
							wg.Add(1)
							go func() {
								defer wg.Done()
								res, err := workers[i%3].Process(ctx, job(host, repo, pushed, string(mode)))
								if err == nil {
									written <- res.Written.Descriptor.Digest.String()
								} else if !fault.Is(err, fault.KindSkip) {
									t.Errorf("delivery %d: %v", i, err)
								}
							}()
						}
						wg.Wait()
						close(written)
						distinct := map[string]bool{}
						for d := range written {
							distinct[d] = true
						}
						require.Len(t, distinct, 1, "%s: one description", mode)
						if mode == worker.ModeReferrer {
							require.Len(t, r.referrers(t, repo, pushed, registry.ArtifactTypeDescription), 1)
						} else {
							require.True(t, distinct[r.resolve(t, repo, string(mode)).Digest.String()])
						}
					}
				}},
				{"force describes again and prune removes the older referrer", func(t *testing.T, r *rig, repo string) {
					pushed := r.push(t, repo, "latest", nil, stacktest.JPEG(t, 120, 80, 7))
					_, err := r.worker(t, worker.Options{Mode: worker.ModeReferrer}).Process(ctx, job(host, repo, pushed, "latest"))
					require.NoError(t, err)
					old := r.referrers(t, repo, pushed, registry.ArtifactTypeDescription)
					require.Len(t, old, 1)
					// A better model, without prune: both stay.
					_, err = r.worker(t, worker.Options{Mode: worker.ModeReferrer, Force: true}, "gemma3:4b").Process(ctx, job(host, repo, pushed, "latest"))
					require.NoError(t, err)
					require.Len(t, r.referrers(t, repo, pushed, registry.ArtifactTypeDescription), 2)
					// Another, with prune: only its own stays.
					res, err := r.worker(t, worker.Options{Mode: worker.ModeReferrer, Force: true, Prune: true}, "llava:7b").Process(ctx, job(host, repo, pushed, "latest"))
					require.NoError(t, err)
					require.Len(t, res.Pruned, 2)
					refs := r.referrers(t, repo, pushed, registry.ArtifactTypeDescription)
					require.Len(t, refs, 1)
					require.Equal(t, "ollama/llava:7b", refs[0].Annotations[registry.AnnotationModel])
				}},
				{"a person's description is kept unless a job is forced, and never pruned", func(t *testing.T, r *rig, repo string) {
					pushed := r.push(t, repo, "latest", nil, stacktest.JPEG(t, 120, 80, 54))
					// A person's correction, written as regscribe writes a referrer.
					client, err := registry.New([]registry.Endpoint{{Host: host, PlainHTTP: true}}, registry.Options{Credentials: credentials.NewMemoryStore()})
					require.NoError(t, err)
					rr, err := client.Repository(host, repo)
					require.NoError(t, err)
					mine, err := client.WriteReferrer(ctx, rr, pushed, registry.Record{Subject: pushed.Digest.String(), Model: "person:alice",
						Photos: []registry.PhotoRecord{{Description: "Our dog on the beach."}}},
						map[string]string{registry.AnnotationDescription: "Our dog on the beach.", registry.AnnotationModel: "person:alice"})
					require.NoError(t, err)
					_, err = r.worker(t, worker.Options{Mode: worker.ModeReferrer, Force: true, Prune: true}).Process(ctx, job(host, repo, pushed, "latest"))
					require.True(t, fault.Is(err, fault.KindSkip), "REGSCRIBE_FORCE keeps a person's description: %v", err)
					forced := job(host, repo, pushed, "latest")
					forced.Force = true
					res, err := r.worker(t, worker.Options{Mode: worker.ModeReferrer, Prune: true}).Process(ctx, forced)
					require.NoError(t, err)
					require.Empty(t, res.Pruned)
					var digests []string
					for _, d := range r.referrers(t, repo, pushed, registry.ArtifactTypeDescription) {
						digests = append(digests, d.Digest.String())
					}
					require.ElementsMatch(t, []string{mine.Descriptor.Digest.String(), res.Written.Descriptor.Digest.String()}, digests)
				}},
				{"force in annotation mode does not loop on its own write", func(t *testing.T, r *rig, repo string) {
					pushed := r.push(t, repo, "latest", nil, stacktest.JPEG(t, 120, 80, 8))
					w := r.worker(t, worker.Options{Mode: worker.ModeAnnotation, Force: true})
					res, err := w.Process(ctx, job(host, repo, pushed, "latest"))
					require.NoError(t, err)
					_, err = w.Process(ctx, job(host, repo, res.Written.Descriptor, "latest"))
					require.True(t, fault.Is(err, fault.KindSkip), "%v", err)
				}},
				{"opt-in selection", func(t *testing.T, r *rig, repo string) {
					sel := worker.Selection{OptIn: true}
					plain := r.push(t, repo, "plain", nil, stacktest.JPEG(t, 120, 80, 9))
					_, err := r.worker(t, worker.Options{Mode: worker.ModeAnnotation, Select: sel}).Process(ctx, job(host, repo, plain, "plain"))
					require.True(t, fault.Is(err, fault.KindSkip), "%v", err)
					opted := r.push(t, repo, "opted", map[string]string{"io.regscribe.describe": "true", "keep": "me"}, stacktest.JPEG(t, 120, 80, 10))
					_, err = r.worker(t, worker.Options{Mode: worker.ModeAnnotation, Select: sel}).Process(ctx, job(host, repo, opted, "opted"))
					require.NoError(t, err)
					m := r.manifest(t, repo, "opted")
					require.NotEmpty(t, m.Annotations[registry.AnnotationDescription])
					require.NotContains(t, m.Annotations, "io.regscribe.describe", "the opt-in annotation is removed")
					require.Equal(t, "me", m.Annotations["keep"])
				}},
				{"repository and artifact type selection", func(t *testing.T, r *rig, repo string) {
					pushed := r.push(t, repo, "latest", nil, stacktest.JPEG(t, 120, 80, 11))
					for _, sel := range []worker.Selection{
						{ExcludeRepositories: []string{"**"}},
						{Repositories: []string{"nothing/*"}},
						{ArtifactTypes: []string{"application/vnd.example.other"}},
					} {
						_, err := r.worker(t, worker.Options{Select: sel}).Process(ctx, job(host, repo, pushed, "latest"))
						require.True(t, fault.Is(err, fault.KindSkip), "%+v: %v", sel, err)
					}
					_, err := r.worker(t, worker.Options{Select: worker.Selection{Repositories: []string{"**"}, ArtifactTypes: []string{"application/vnd.example.photo"}}}).Process(ctx, job(host, repo, pushed, "latest"))
					require.NoError(t, err)
				}},
				{"an album index: each child described", func(t *testing.T, r *rig, repo string) {
					for _, mode := range []worker.Mode{worker.ModeAnnotation, worker.ModeReferrer} {
						a := r.push(t, repo, "a-"+string(mode), nil, stacktest.JPEG(t, 60, 40, 12))
						b := r.push(t, repo, "b-"+string(mode), nil, stacktest.JPEG(t, 60, 40, 13))
						idxDesc := r.album(t, repo, "album-"+string(mode), map[string]string{"album": string(mode)}, a, b)
						res, err := r.worker(t, worker.Options{Mode: mode}).Process(ctx, job(host, repo, idxDesc, "album-"+string(mode)))
						require.NoError(t, err)
						require.Len(t, res.Descriptions, 2)
						now := r.resolve(t, repo, "album-"+string(mode))
						if mode == worker.ModeReferrer {
							require.Equal(t, idxDesc.Digest, now.Digest)
							require.Len(t, r.referrers(t, repo, a, registry.ArtifactTypeDescription), 1)
							require.Len(t, r.referrers(t, repo, b, registry.ArtifactTypeDescription), 1)
							continue
						}
						require.NotEqual(t, idxDesc.Digest, now.Digest)
						_, raw, err := oras.FetchBytes(ctx, r.repo(t, repo), "album-"+string(mode), oras.DefaultFetchBytesOptions)
						require.NoError(t, err)
						var got ocispec.Index
						require.NoError(t, json.Unmarshal(raw, &got))
						require.Equal(t, string(mode), got.Annotations["album"])
						for _, child := range got.Manifests {
							require.NotEmpty(t, r.manifest(t, repo, child.Digest.String()).Annotations[registry.AnnotationDescription])
						}
					}
				}},
				{"auto: an album with a signed child gets referrers, its children untouched", func(t *testing.T, r *rig, repo string) {
					a := r.push(t, repo, "a", nil, stacktest.JPEG(t, 60, 40, 50))
					b := r.push(t, repo, "b", nil, stacktest.JPEG(t, 60, 40, 51))
					sig := r.attach(t, repo, a, "application/vnd.example.signature")
					idxDesc := r.album(t, repo, "album", nil, a, b)
					res, err := r.worker(t, worker.Options{}).Process(ctx, job(r.host, repo, idxDesc, "album"))
					require.NoError(t, err)
					require.Equal(t, worker.ModeReferrer, res.Mode)
					require.Len(t, res.Descriptions, 2)
					require.Equal(t, idxDesc.Digest, r.resolve(t, repo, "album").Digest, "the index is untouched")
					for tag, child := range map[string]ocispec.Descriptor{"a": a, "b": b} {
						require.Equal(t, child.Digest, r.resolve(t, repo, tag).Digest, "child %s is untouched", tag)
						require.Len(t, r.referrers(t, repo, child, registry.ArtifactTypeDescription), 1, "child %s", tag)
					}
					var signs []string
					for _, d := range r.referrers(t, repo, a, "") {
						signs = append(signs, d.Digest.String())
					}
					require.Contains(t, signs, sig.Digest.String(), "the signature still signs the child")
				}},
				{"auto: an album under an immutable tag gets referrers", func(t *testing.T, r *rig, repo string) {
					im := newRig(t, immutableTags(t, r.host))
					a := im.push(t, repo, "a", nil, stacktest.JPEG(t, 60, 40, 52))
					b := im.push(t, repo, "b", nil, stacktest.JPEG(t, 60, 40, 53))
					idxDesc := im.album(t, repo, "album", nil, a, b)
					res, err := im.worker(t, worker.Options{}).Process(ctx, job(im.host, repo, idxDesc, "album"))
					require.NoError(t, err)
					require.Equal(t, worker.ModeReferrer, res.Mode)
					require.Equal(t, 2, res.ModelCalls, "the referrers carry the descriptions already made")
					require.Len(t, im.model.Calls(), 2)
					require.Equal(t, idxDesc.Digest, im.resolve(t, repo, "album").Digest)
					for tag, child := range map[string]ocispec.Descriptor{"a": a, "b": b} {
						require.Equal(t, child.Digest, im.resolve(t, repo, tag).Digest, "child %s is untouched", tag)
						refs := im.referrers(t, repo, child, registry.ArtifactTypeDescription)
						require.Len(t, refs, 1, "child %s", tag)
						require.NotEmpty(t, refs[0].Annotations[registry.AnnotationDescription])
					}
					require.Empty(t, im.model.Problems())
				}},
			}
			for i, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					r := newRig(t, host)
					tc.run(t, r, fmt.Sprintf("photos/case%d", i))
					require.Empty(t, r.model.Problems())
				})
			}
		})
	}
}

// On the fallback index, a description written while another referrer of
// the same photo is attached in the same process loses neither.
func TestFallbackIndexLosesNoReferrer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	host := registries[0].start(t)
	r := newRig(t, host)
	client, err := registry.New([]registry.Endpoint{{Host: host, PlainHTTP: true}}, registry.Options{Credentials: credentials.NewMemoryStore()})
	require.NoError(t, err)
	base, _ := url.Parse(r.model.URL)
	w := worker.New(client, vision.NewOllama(vision.OllamaOptions{BaseURL: base, Model: stacktest.Model}), r.memory,
		worker.Options{Mode: worker.ModeReferrer, Logger: stacktest.Logger(t)})
	repo, err := client.Repository(host, "photos/race")
	require.NoError(t, err)
	for i := range 10 {
		pushed := r.push(t, "photos/race", fmt.Sprint(i), nil, stacktest.JPEG(t, 40, 30, uint64(100+i)))
		var sig ocispec.Descriptor
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := w.Process(ctx, job(host, "photos/race", pushed, ""))
			require.NoError(t, err)
		}()
		go func() {
			defer wg.Done()
			var err error
			sig, err = oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "application/vnd.example.signature",
				oras.PackManifestOptions{Subject: &pushed, ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: "2026-01-01T00:00:00Z"}})
			require.NoError(t, err)
		}()
		wg.Wait()
		refs := r.referrers(t, "photos/race", pushed, "")
		require.Len(t, refs, 2, "round %d: both referrers are in the fallback index", i)
		require.Contains(t, []string{refs[0].Digest.String(), refs[1].Digest.String()}, sig.Digest.String())
	}
}

// A registry that refuses to move tags (immutable tags) in auto mode gets a referrer.
func TestImmutableTagFallsBackToReferrer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	host := immutableTags(t, registries[0].start(t))
	r := newRig(t, host)
	pushed := r.push(t, "photos/immutable", "v1", nil, stacktest.JPEG(t, 80, 60, 20))
	res, err := r.worker(t, worker.Options{}).Process(ctx, job(host, "photos/immutable", pushed, "v1"))
	require.NoError(t, err)
	require.Equal(t, worker.ModeReferrer, res.Mode)
	require.Equal(t, pushed.Digest, r.resolve(t, "photos/immutable", "v1").Digest)
	require.Len(t, r.referrers(t, "photos/immutable", pushed, registry.ArtifactTypeDescription), 1)
}

// Across worker processes (each with its own registry client), referrer
// writes to one photo on a fallback index are serialised by a lease: three
// workers with three models describing one photo at once leave three
// referrers, every time.
func TestFallbackIndexAcrossProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := stacktest.Start(t, stacktest.Options{Workers: -1})
	models := []string{"qwen2.5vl:3b", "gemma3:4b", "llava:7b"}
	s.Model.AddModel(models...)
	base, _ := url.Parse(s.Model.URL)
	var workers []*worker.Worker
	for _, m := range models {
		client, err := registry.New([]registry.Endpoint{{Host: s.RegistryHost, PlainHTTP: true}}, registry.Options{Credentials: credentials.NewMemoryStore()})
		require.NoError(t, err)
		workers = append(workers, worker.New(client, vision.NewOllama(vision.OllamaOptions{BaseURL: base, Model: m}), s.Memory,
			worker.Options{Mode: worker.ModeReferrer, Locker: s.Leases, Logger: stacktest.Logger(t)}))
	}
	for round := range 8 {
		pushed := s.Push(t, "photos/shared", fmt.Sprint(round), stacktest.File{Name: "p.jpg", MediaType: "image/jpeg", Data: stacktest.JPEG(t, 40, 30, uint64(600+round))})
		var wg sync.WaitGroup
		for _, w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := w.Process(ctx, job(s.RegistryHost, "photos/shared", pushed, ""))
				require.NoError(t, err)
			}()
		}
		wg.Wait()
		repo := s.Repository(t, "photos/shared")
		var refs []ocispec.Descriptor
		require.NoError(t, repo.Referrers(ctx, pushed, registry.ArtifactTypeDescription, func(r []ocispec.Descriptor) error {
			refs = append(refs, r...)
			return nil
		}))
		require.Len(t, refs, 3, "round %d: a referrer was lost", round)
	}
}

// Jobs for one photo at once (zot's one event per tag, an album's children)
// share one model call: exactly one of them counts it.
func TestConcurrentJobsCountTheModelCallOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRig(t, registries[0].start(t))
	r.model.Latency = 300 * time.Millisecond
	pushed := r.push(t, "photos/together", "latest", nil, stacktest.JPEG(t, 80, 60, 30))
	w := r.worker(t, worker.Options{Mode: worker.ModeReferrer})
	const jobs = 6
	calls := make(chan int, jobs)
	var wg sync.WaitGroup
	for range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := w.Process(ctx, job(r.host, "photos/together", pushed, "latest"))
			if err != nil && !fault.Is(err, fault.KindSkip) {
				t.Errorf("process: %v", err)
			}
			calls <- res.ModelCalls
		}()
	}
	wg.Wait()
	close(calls)
	sum := 0
	for n := range calls {
		sum += n
	}
	require.Len(t, r.model.Calls(), 1)
	require.Equal(t, 1, sum, "the job whose call it was counts it, and only that job")
}
