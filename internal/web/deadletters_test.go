package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/stacktest"
)

var (
	failedRef = regexp.MustCompile(`<code>127\.0\.0\.1:5000/photos/r(\d{3})@`)
	olderLink = regexp.MustCompile(`href="(/jobs\?before=\d+#failed)"`)
)

// TestDeadLettersRetainedAndPaged: the dead-letter stream past its
// retention drops the oldest; the jobs page lists them a window at a time,
// newest first, each window read with about as many requests as it shows;
// "retry" queues a window, or all of them, a bounded batch per request.
func TestDeadLettersRetainedAndPaged(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	raw := stacktest.JetStream(t)
	_, err := queue.EnsureStream(ctx, raw, queue.StreamOptions{DeadLetterMaxCount: 250})
	require.NoError(t, err)
	for i := range 300 {
		d := queue.DeadLetter{Version: 1, Job: queue.Job{Version: queue.JobVersion, Registry: "127.0.0.1:5000", Repository: fmt.Sprintf("photos/r%03d", i),
			Digest: fmt.Sprintf("sha256:%064x", i), Source: "web", Event: fmt.Sprint(i)}, Error: "model down", Attempts: 5, FailedAt: time.Now().UTC()}
		data, err := json.Marshal(d)
		require.NoError(t, err)
		_, err = raw.Publish(ctx, queue.DeadSubjectPrefix+"web", data)
		require.NoError(t, err)
	}
	js := &countingJS{JetStream: raw, gets: map[string]*atomic.Int64{queue.DeadStream: {}}}
	base := reviewServer(t, js)
	gets := js.gets[queue.DeadStream]

	// Three windows, newest first: r299 … r050; r000 … r049 were dropped.
	var shown []string
	path := "/jobs"
	var pages []string
	for path != "" {
		gets.Store(0)
		resp, page := request(t, http.MethodGet, base+path, nil, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		require.LessOrEqual(t, gets.Load(), int64(101), "%s reads one window", path)
		require.Less(t, len(page), 120_000, "%s is one window", path)
		n := 0
		for _, m := range failedRef.FindAllStringSubmatch(page, -1) {
			shown = append(shown, m[1])
			n++
		}
		require.LessOrEqual(t, n, 100)
		require.Contains(t, page, "of 250")
		pages = append(pages, page)
		path = ""
		if m := olderLink.FindStringSubmatch(page); m != nil {
			path = m[1]
		}
	}
	require.Len(t, pages, 3)
	require.Len(t, shown, 250)
	require.Equal(t, "299", shown[0])
	require.Equal(t, "050", shown[249])
	for i := 1; i < len(shown); i++ {
		require.Greater(t, shown[i-1], shown[i], "newest first, each once")
	}

	post := func(form url.Values) string {
		_, page := request(t, http.MethodGet, base+"/jobs", nil, nil)
		m := csrfField.FindStringSubmatch(page)
		require.NotNil(t, m)
		form.Set("csrf", m[1])
		resp, _ := request(t, http.MethodPost, base+"/jobs/retry", form, http.Header{"Origin": {base}})
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		return resp.Header.Get("Location")
	}
	left := func() uint64 {
		st, err := queue.ReadStatus(ctx, raw)
		require.NoError(t, err)
		return st.Dead
	}
	// "Retry these" on the second window queues those 100 again.
	from := regexp.MustCompile(`name="from" value="(\d+)"`).FindStringSubmatch(pages[1])
	to := regexp.MustCompile(`name="to" value="(\d+)"`).FindStringSubmatch(pages[1])
	require.NotNil(t, from)
	require.NotNil(t, to)
	require.Contains(t, pages[1], "Retry these 100")
	require.Equal(t, "/jobs?flash=retried-shown", post(url.Values{"from": {from[1]}, "to": {to[1]}}))
	require.EqualValues(t, 150, left())
	// "Retry all" goes a batch at a time.
	require.Equal(t, "/jobs?flash=retried-batch", post(url.Values{"all": {"1"}}))
	require.EqualValues(t, 50, left())
	_, page := request(t, http.MethodGet, base+"/jobs", nil, nil)
	require.Contains(t, page, "Retry all 50")
	require.Equal(t, "/jobs?flash=retried-all", post(url.Values{"all": {"1"}}))
	require.Zero(t, left())
	st, err := queue.ReadStatus(ctx, raw)
	require.NoError(t, err)
	require.EqualValues(t, 250, st.Messages, "every one is a job again")

	for _, bad := range []string{"/jobs?before=x", "/jobs?after=-1"} {
		resp, _ := request(t, http.MethodGet, base+bad, nil, nil)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, bad)
	}
	m := csrfField.FindStringSubmatch(page)
	resp, _ := request(t, http.MethodPost, base+"/jobs/retry", url.Values{"csrf": {m[1]}, "from": {"1"}, "to": {"x"}}, http.Header{"Origin": {base}})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
}
