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

# The same coefficients without restart intervals: image/jpeg cannot decode
# a progressive JPEG with restarts whose one-component scans' blocks are not
# the MCUs'; the tests compare with its decode of this twin.
jpegtran -copy none progressive420-rst.jpg > progressive420-norst.ref
# Baseline twins of the other progressive ones (jpegtran writes baseline).
jpegtran -copy none progressive444.jpg > progressive444-baseline.ref
jpegtran -copy none progressive-gray.jpg > progressive-gray-baseline.ref
rm noisy.ppm noisy.pgm

