package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/modeltest"
	"github.com/regscribe/regscribe/internal/stacktest"
)

// TestOrasDefaultMediaType: the real oras CLI pushes files without a media
// type (oras's default, application/vnd.oci.image.layer.v1.tar). A JPEG is
// described, the model gets it byte for byte, and `regscribe show` prints
// it under its title, alone or among its repository's photos; a text file
// is refused visibly (`regscribe show` of the repository lists it, and why): `regscribe show` says it is not an image and why, `regscribe
// status` and the gallery's front page count it, and the log says it once.
// A photo whose job failed is shown with the dead letter's error.
func TestOrasDefaultMediaType(t *testing.T) {
	t.Parallel()
	model := modeltest.NewOllama(stacktest.Model)
	t.Cleanup(model.Close)
	regAddr, natsAddr, webAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	_, regPort, _ := net.SplitHostPort(regAddr)
	p := startUp(t, upEnv(t,
		"REGSCRIBE_REGISTRY_ADDR="+regAddr,
		"OLLAMA_HOST="+model.URL,
		"REGSCRIBE_MODEL="+stacktest.Model,
		"REGSCRIBE_NATS_LISTEN="+natsAddr,
		"REGSCRIBE_WEB_LISTEN="+webAddr,
	)...)
	p.WaitLog(t, "model ready")
	work := t.TempDir()
	photo := stacktest.JPEG(t, 640, 480, 81)
	require.NoError(t, os.WriteFile(filepath.Join(work, "dune.jpg"), photo, 0o644))
	text := "Dune is a 1965 novel by Frank Herbert.\n"
	require.NoError(t, os.WriteFile(filepath.Join(work, "dune.txt"), []byte(text), 0o644))
	photoRef := "localhost:" + regPort + "/photos/misc:x"
	textRef := "localhost:" + regPort + "/photos/misc:notes"
	oras(t, work, "push", photoRef, "dune.jpg")
	oras(t, work, "push", textRef, "dune.txt")
	var pushed struct {
		Digest string `json:"digest"`
	}
	require.NoError(t, json.Unmarshal([]byte(oras(t, work, "manifest", "fetch", "--descriptor", textRef)), &pushed))

	var manifest struct {
		Layers []struct {
			MediaType string `json:"mediaType"`
		} `json:"layers"`
		Annotations map[string]string `json:"annotations"`
	}
	require.Eventually(t, func() bool {
		require.NoError(t, json.Unmarshal([]byte(oras(t, work, "manifest", "fetch", photoRef)), &manifest))
		return manifest.Annotations["io.regscribe.description"] != ""
	}, 30*time.Second, 100*time.Millisecond)
	require.Equal(t, "A test photo "+modeltest.Digest(photo)[:19]+".", manifest.Annotations["io.regscribe.description"])
	require.Equal(t, "application/vnd.oci.image.layer.v1.tar", manifest.Layers[0].MediaType, "the layer stays as pushed")
	require.Len(t, model.Calls(), 1, "the text file is no model call")
	require.Equal(t, photo, model.Calls()[0].Images[0])
	p.WaitLog(t, "not an image; nothing described")

	client := append(os.Environ(), "REGSCRIBE_NATS_URL=nats://"+natsAddr)
	reason := `not an image: "dune.txt" (application/vnd.oci.image.layer.v1.tar) holds text (text/plain; charset=utf-8), not a photo regscribe can describe`
	var out []byte
	require.Eventually(t, func() bool {
		cmd := exec.Command(binary, "show", textRef)
		cmd.Env = client
		out, _ = cmd.CombinedOutput()
		return strings.Contains(string(out), "not an image")
	}, 30*time.Second, 100*time.Millisecond, "regscribe show never said why")
	require.Equal(t, textRef+" ("+pushed.Digest+"): "+reason+"\n", string(out))
	cmd := exec.Command(binary, "show", textRef, "--json")
	cmd.Env = client
	out, err := cmd.Output()
	require.Error(t, err, "no description: exit status 1")
	var shown struct {
		Digest  string `json:"digest"`
		Refused string `json:"refused"`
	}
	require.NoError(t, json.Unmarshal(out, &shown))
	require.Equal(t, pushed.Digest, shown.Digest)
	require.Equal(t, reason, shown.Refused)
	// A photo whose job failed: show says with what.
	require.NoError(t, os.WriteFile(filepath.Join(work, "x.png"), []byte("<!doctype html><p>not a PNG"), 0o644))
	brokenRef := "localhost:" + regPort + "/photos/misc:broken"
	oras(t, work, "push", brokenRef, "x.png:image/png")
	require.Eventually(t, func() bool {
		cmd := exec.Command(binary, "show", brokenRef)
		cmd.Env = client
		out, _ = cmd.CombinedOutput()
		return strings.Contains(string(out), "its job failed")
	}, 30*time.Second, 100*time.Millisecond, "regscribe show never said the job failed")
	require.Contains(t, string(out), "unrecognised format")

	cmd = exec.Command(binary, "show", photoRef)
	cmd.Env = client
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "\n  dune.jpg\n    "+manifest.Annotations["io.regscribe.description"]+"\n", "the photo under its title")
	// The repository: the photo is among its photos, read as a worker reads it.
	cmd = exec.Command(binary, "show", "localhost:"+regPort+"/photos/misc")
	cmd.Env = client
	out, _ = cmd.CombinedOutput()
	require.Contains(t, string(out), "\n  dune.jpg\n    "+manifest.Annotations["io.regscribe.description"]+"\n", "%s", out)
	require.Contains(t, string(out), "localhost:"+regPort+"/photos/misc@"+pushed.Digest+" (notes) ("+pushed.Digest+"): "+reason+"\n", "the text file, and why")

	cmd = exec.Command(binary, "status", "--json")
	cmd.Env = client
	out, err = cmd.Output()
	require.NoError(t, err, "%s", out)
	var st struct {
		Refused int `json:"refused"`
	}
	require.NoError(t, json.Unmarshal(out, &st))
	require.Equal(t, 1, st.Refused)
	cmd = exec.Command(binary, "status")
	cmd.Env = client
	out, err = cmd.Output()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "not images           1")

	var page string
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + webAddr + "/")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		page = string(b)
		return strings.Contains(page, `<li class="tile" data-state="refused"`)
	}, 30*time.Second, 100*time.Millisecond, "the gallery never showed it")
	require.Contains(t, page, `<a href="/jobs#refused">1 not an image</a>`)
	require.Equal(t, 1, strings.Count(p.Log(), `"msg":"not an image; nothing described"`), "said once")
	p.Stop(t)
}
