package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/modeltest"
	"github.com/regscribe/regscribe/internal/photo"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/stacktest"
	"github.com/regscribe/regscribe/worker"
)

// A person's correction of one photo of two is written back as a model's
// description is, naming the person, with no model call; the other photo
// keeps its model's description; automatic runs (a push's job, reprocess
// --missing) keep the correction; a correction naming no photo of the
// manifest is a dead letter.
func TestCorrection(t *testing.T) {
	t.Parallel()
	for _, mode := range []worker.Mode{worker.ModeAnnotation, worker.ModeReferrer} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			s := stacktest.Start(t, stacktest.Options{ReferrersAPI: true, Worker: worker.Options{Mode: mode, Prune: true}})
			ctx := context.Background()
			model := "ollama/" + stacktest.Model
			a, b := stacktest.JPEG(t, 90, 60, 820), stacktest.JPEG(t, 60, 90, 821)
			pushed := s.Push(t, "photos/dogs", "latest",
				stacktest.File{Name: "a.jpg", MediaType: "image/jpeg", Data: a},
				stacktest.File{Name: "b.jpg", MediaType: "image/jpeg", Data: b})
			queueJob(t, s, queue.Job{Repository: "photos/dogs", Digest: pushed.Digest.String(), Tag: "latest"})
			res := resultOf(t, s, "the model's description", func(r queue.Result) bool { return r.Job.Correction == nil })
			require.Equal(t, queue.Described, res.Outcome, res.Reason)
			require.Len(t, s.Model.Calls(), 2)
			described, _ := s.Manifest(t, "photos/dogs", "latest")

			at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
			queueJob(t, s, queue.Job{Repository: "photos/dogs", Digest: described.Digest.String(), Tag: "latest",
				Correction: &queue.Correction{Layer: modeltest.Digest(b), Description: "Our dog Rex\u202e on the beach.  He is wet.",
					Keywords: []string{"Dog", "beach", "dog"}, Text: "REX", By: "ann", At: at}})
			res = resultOf(t, s, "the correction", func(r queue.Result) bool { return r.Job.Correction != nil })
			require.Equal(t, queue.Described, res.Outcome, res.Reason)
			require.Zero(t, res.ModelCalls)
			require.Len(t, s.Model.Calls(), 2, "the model received no request for a correction")

			person := photo.PersonModel("ann")
			e := waitEvent(t, s, "the correction's event", func(e feed.Event) bool { return e.By == person })
			require.Equal(t, feed.JobID(res.JobSeq, 0), e.ID)
			require.Len(t, e.Photos, 2, "the event carries every photo of the manifest")
			require.Equal(t, expectedText(a), e.Photos[0].Description, "the other photo keeps its description")
			require.Equal(t, model, e.Photos[0].Model)
			rex := e.Photos[1]
			require.Equal(t, modeltest.Digest(b), rex.Layer)
			require.Equal(t, "Our dog Rex on the beach. He is wet.", rex.Description, "cleaned, not rewritten")
			require.Equal(t, "Our dog Rex on the beach.", rex.Alt)
			require.Equal(t, []string{"dog", "beach"}, rex.Keywords)
			require.Equal(t, "REX", rex.Text)
			require.Equal(t, person, rex.Model)
			require.Equal(t, at, rex.Created)

			repo, err := s.Client.Repository(s.RegistryHost, "photos/dogs")
			require.NoError(t, err)
			corrected, m := s.Manifest(t, "photos/dogs", "latest")
			if mode == worker.ModeAnnotation {
				require.Equal(t, corrected.Digest.String(), e.Digest)
				require.Equal(t, described.Digest.String(), e.Replaces)
				require.Equal(t, person, m.Annotations[registry.AnnotationModel])
				require.Equal(t, "Our dog Rex on the beach. He is wet.", m.Layers[1].Annotations[registry.AnnotationDescription])
				require.Equal(t, "REX", m.Layers[1].Annotations[registry.AnnotationText])
				require.Equal(t, expectedText(a), m.Layers[0].Annotations[registry.AnnotationDescription])
				require.Equal(t, model, m.Layers[0].Annotations[registry.AnnotationModel], "the other photo still names its model")
			} else {
				require.Equal(t, pushed.Digest, corrected.Digest, "the photo is untouched")
				refs, err := s.Client.Referrers(ctx, repo, pushed, registry.ArtifactTypeDescription)
				require.NoError(t, err)
				require.Len(t, refs, 2, "the model's referrer stays beside the person's (never pruned by a correction)")
				var rec registry.Record
				for _, r := range refs {
					if r.Annotations[registry.AnnotationModel] == person {
						rec, err = s.Client.FetchRecord(ctx, repo, r)
						require.NoError(t, err)
						require.Equal(t, "referrer "+r.Digest.String(), rex.Stored)
					}
				}
				require.Equal(t, person, rec.Model)
				require.Empty(t, rec.PromptDigest, "a person's record names no prompt")
				require.Equal(t, "REX", rec.Photos[1].Text)
				require.Equal(t, model, rec.Photos[0].Model)
			}

			// Automatic runs keep it: a push's job and reprocess --missing.
			queueJob(t, s, queue.Job{Repository: "photos/dogs", Digest: corrected.Digest.String(), Tag: "latest", Event: "push-again"})
			queueJob(t, s, queue.Job{Repository: "photos/dogs", Digest: corrected.Digest.String(), Tag: "latest", Replace: true, Batch: "missing"})
			for _, replace := range []bool{false, true} {
				r := resultOf(t, s, "an automatic run", func(r queue.Result) bool {
					return (replace && r.Job.Replace) || (!replace && r.Job.Event == "push-again")
				})
				require.Equal(t, queue.Skipped, r.Outcome)
				require.Contains(t, r.Reason, "described by "+person)
			}
			now, _ := s.Manifest(t, "photos/dogs", "latest")
			require.Equal(t, corrected.Digest, now.Digest)
			require.Len(t, s.Model.Calls(), 2)

			// A correction naming no photo of the manifest is given up.
			queueJob(t, s, queue.Job{Repository: "photos/dogs", Digest: corrected.Digest.String(),
				Correction: &queue.Correction{Layer: modeltest.Digest([]byte("no such photo")), Description: "A cat.", At: at}})
			dead := waitDead(t, s, 1)
			require.Contains(t, dead[0].Error, "which is no photo of")
			require.Equal(t, 1, dead[0].Attempts, "a permanent failure")
			s.WaitIdle(t)
			require.Len(t, s.Model.Calls(), 2)
		})
	}
}

// A correction of a photo a person described before replaces it; a
// single-photo manifest needs no layer named; a forced job then replaces
// the correction (only a forced job does).
func TestCorrectionReplacesAPersonsAndForceReplacesIt(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{ReferrersAPI: true, Worker: worker.Options{Mode: worker.ModeAnnotation}})
	photoBytes := stacktest.JPEG(t, 90, 60, 822)
	pushed := s.Push(t, "photos/one", "latest", stacktest.File{Name: "one.jpg", MediaType: "image/jpeg", Data: photoBytes})
	queueJob(t, s, queue.Job{Repository: "photos/one", Digest: pushed.Digest.String(), Tag: "latest",
		Correction: &queue.Correction{Description: "A heron.", By: "ann", At: time.Now()}})
	_, m := s.WaitDescribed(t, "photos/one", "latest")
	require.Equal(t, "A heron.", m.Annotations[registry.AnnotationDescription])
	require.Equal(t, "person:ann", m.Annotations[registry.AnnotationModel])
	require.Empty(t, s.Model.Calls())

	first, _ := s.Manifest(t, "photos/one", "latest")
	queueJob(t, s, queue.Job{Repository: "photos/one", Digest: first.Digest.String(), Tag: "latest",
		Correction: &queue.Correction{Description: "A grey heron.", At: time.Now()}})
	require.Eventually(t, func() bool {
		_, m = s.Manifest(t, "photos/one", "latest")
		return m.Annotations[registry.AnnotationDescription] == "A grey heron."
	}, 20*time.Second, 20*time.Millisecond)
	require.Equal(t, "person", m.Annotations[registry.AnnotationModel], "a person not named")

	second, _ := s.Manifest(t, "photos/one", "latest")
	queueJob(t, s, queue.Job{Repository: "photos/one", Digest: second.Digest.String(), Tag: "latest", Force: true})
	require.Eventually(t, func() bool {
		_, m = s.Manifest(t, "photos/one", "latest")
		return m.Annotations[registry.AnnotationDescription] == expectedText(photoBytes)
	}, 20*time.Second, 20*time.Millisecond, "a forced job replaces the correction")
	require.Len(t, s.Model.Calls(), 1)
}
