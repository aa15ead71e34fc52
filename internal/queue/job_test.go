package queue_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/queue"
)

func TestJob(t *testing.T) {
	t.Parallel()
	j := queue.Job{Version: queue.JobVersion, Registry: "127.0.0.1:5000", Repository: "photos/pineapple",
		Digest: "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
		Tag:    "latest", Source: "distribution", Received: time.Date(2026, 11, 27, 20, 0, 0, 0, time.UTC)}
	data, err := j.Marshal()
	require.NoError(t, err)
	back, err := queue.ParseJob(data)
	require.NoError(t, err)
	require.Equal(t, j, back)
	require.Equal(t, "127.0.0.1:5000/photos/pineapple:latest@"+j.Digest, j.Ref())

	// The same push has the same id whatever else differs; tag, force and
	// photo change it.
	later := j
	later.Received, later.Source = later.Received.Add(time.Hour), "harbor"
	require.Equal(t, j.ID(), later.ID())
	// A job without an event (reprocess; jobs written before events were
	// named) keeps the id it always had, so reprocess runs still dedupe.
	require.Equal(t, "b546a9f404336ea5831f19ab63c82e19", j.ID())
	old, err := queue.ParseJob([]byte(`{"v":1,"registry":"127.0.0.1:5000","repository":"photos/pineapple","digest":"` + j.Digest + `","tag":"latest","source":"distribution"}`))
	require.NoError(t, err)
	require.Equal(t, j.ID(), old.ID())

	// The same announcement delivered again has the same id; another
	// announcement of the same push (a second push of the tag, a revert)
	// does not.
	announced := j
	announced.Event = "id:6f1b2c3d-89cdc86c"
	again := announced
	again.Received = again.Received.Add(time.Second)
	require.Equal(t, announced.ID(), again.ID())
	next := announced
	next.Event = "id:6f1b2c3d-0second"
	require.NotEqual(t, announced.ID(), next.ID())
	data, err = announced.Marshal()
	require.NoError(t, err)
	require.Contains(t, string(data), `"event":"id:6f1b2c3d-89cdc86c"`)
	back, err = queue.ParseJob(data)
	require.NoError(t, err)
	require.Equal(t, announced, back)

	for _, other := range []queue.Job{
		announced,
		next,
		{Version: 1, Registry: j.Registry, Repository: j.Repository, Digest: j.Digest, Tag: "v2"},
		{Version: 1, Registry: j.Registry, Repository: j.Repository, Digest: j.Digest, Tag: j.Tag, Force: true},
		{Version: 1, Registry: j.Registry, Repository: j.Repository, Digest: j.Digest, Tag: j.Tag, Replace: true},
		{Version: 1, Registry: j.Registry, Repository: "photos/other", Digest: j.Digest, Tag: j.Tag},
	} {
		require.NotEqual(t, j.ID(), other.ID())
	}

	for _, bad := range []string{
		`{`,
		`{"v":2,"registry":"r","repository":"x","digest":"sha256:1"}`,
		`{"v":1,"repository":"x","digest":"sha256:1"}`,
		`{"v":1,"registry":"r","digest":"sha256:1"}`,
		`{"v":1,"registry":"r","repository":"x"}`,
	} {
		_, err := queue.ParseJob([]byte(bad))
		require.Error(t, err, bad)
	}
}
