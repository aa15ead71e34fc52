package jpegdec

import (
	"bytes"
	"fmt"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestCjpegNearStdlib encodes one picture with libjpeg's cjpeg (Debian's
// libjpeg-turbo-progs; skipped without it) in every sampling, at several
// qualities, with and without restart intervals, baseline and
// progressive, and decodes each at full size: within 1 of image/jpeg, as
// TestFixturesNearStdlib. Where image/jpeg refuses the file (progressive
// with restarts in subsampled one-component scans), the reference is its
// baseline twin by jpegtran, decoded by this package: the same to the
// sample at every scale.
func TestCjpegNearStdlib(t *testing.T) {
	if _, err := exec.LookPath("cjpeg"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("cjpeg not on PATH (apt-get install libjpeg-turbo-progs): the decoder's reference files must be made in CI")
		}
		t.Skip("cjpeg not on PATH (apt-get install libjpeg-turbo-progs)")
	}
	if testing.Short() {
		t.Skip("runs cjpeg 120 times")
	}
	dir := t.TempDir()
	ppm, pgm := filepath.Join(dir, "in.ppm"), filepath.Join(dir, "in.pgm")
	writePNM(t, ppm, pgm, 157, 93)
	for _, sample := range []string{"1x1", "2x1", "2x2", "1x2", "4x1", "gray"} {
		for _, quality := range []string{"40", "90", "100"} {
			for _, restart := range []string{"", "1", "5B"} {
				for _, progressive := range []bool{false, true} {
					args := []string{"-quality", quality}
					in := ppm
					if sample == "gray" {
						args, in = append(args, "-grayscale"), pgm
					} else {
						args = append(args, "-sample", sample)
					}
					if restart != "" {
						args = append(args, "-restart", restart)
					}
					if progressive {
						args = append(args, "-progressive")
					}
					name := fmt.Sprint(args)
					data, err := exec.Command("cjpeg", append(args, in)...).Output()
					if err != nil {
						t.Fatalf("cjpeg %s: %v", name, err)
					}
					if _, err := jpeg.Decode(bytes.NewReader(data)); err == nil {
						nearStdlib(t, name, data, data)
						continue
					}
					cmd := exec.Command("jpegtran", "-copy", "none")
					cmd.Stdin = bytes.NewReader(data)
					base, err := cmd.Output()
					if err != nil {
						t.Fatalf("jpegtran %s: %v", name, err)
					}
					nearStdlib(t, name+" (baseline twin)", base, base)
					for shift := range uint(4) {
						got, err := DecodeScaled(data, shift)
						if err != nil {
							t.Fatalf("%s 1/%d: %v", name, 1<<shift, err)
						}
						want, err := DecodeScaled(base, shift)
						if err != nil {
							t.Fatal(err)
						}
						if differ, _, err := compare(got, want, 0); err != nil || differ > 0 {
							t.Errorf("%s 1/%d: %d samples differ from the baseline twin's: %v", name, 1<<shift, differ, err)
						}
					}
				}
			}
		}
	}
}

// writePNM writes a w×h colour and grey picture: gradients, hard edges and
// noise, as cjpeg reads them.
func writePNM(t *testing.T, ppm, pgm string, w, h int) {
	r := rand.New(rand.NewPCG(11, 12))
	rgb := make([]byte, 0, 3*w*h)
	for y := range h {
		for x := range w {
			edge := 0
			if (x/19+y/13)%2 == 1 {
				edge = 110
			}
			rgb = append(rgb, byte(x*255/w+edge+r.IntN(60)), byte(y*255/h+r.IntN(60)), byte((x+y)*2+edge+r.IntN(60)))
		}
	}
	gray := make([]byte, 0, w*h)
	for i := 0; i < len(rgb); i += 3 {
		gray = append(gray, rgb[i])
	}
	if err := os.WriteFile(ppm, append([]byte(fmt.Sprintf("P6\n%d %d\n255\n", w, h)), rgb...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pgm, append([]byte(fmt.Sprintf("P5\n%d %d\n255\n", w, h)), gray...), 0o600); err != nil {
		t.Fatal(err)
	}
}
