#!/bin/sh
# Makes the JPEG fixtures of the decoder tests (Debian's libjpeg-turbo-progs).
set -eu
python3 noisy.py
cjpeg -quality 90 -sample 2x2 noisy.ppm > baseline420.jpg
cjpeg -quality 90 -sample 1x1 -restart 3B noisy.ppm > baseline444-rst.jpg
cjpeg -quality 95 -sample 2x1 -optimize noisy.ppm > baseline422-opt.jpg
cjpeg -quality 90 -sample 1x2 noisy.ppm > baseline440.jpg
cjpeg -quality 85 -grayscale -restart 1 noisy.pgm > gray-rst.jpg
cjpeg -quality 90 -sample 2x2 -progressive -restart 2B noisy.ppm > progressive420-rst.jpg
cjpeg -quality 98 -sample 1x1 -progressive noisy.ppm > progressive444.jpg
cjpeg -quality 80 -grayscale -progressive noisy.pgm > progressive-gray.jpg

# The same coefficients without restart intervals: image/jpeg (and the
# decoder this package's was checked against) cannot decode a progressive
# JPEG with restarts whose non-interleaved scans' blocks are not the MCUs'.
jpegtran -copy none progressive420-rst.jpg > progressive420-norst.ref
rm noisy.ppm noisy.pgm

# reference.sums holds, per fixture, mode and scale, the pixelDigest
# (digest_test.go) of the output of the decoder the current one replaced, a
# fork of image/jpeg reading one byte at a time (commit 639c0e2 of this
# repository); progressive420-rst.jpg's are of progressive420-norst.ref.
