#!/usr/bin/env python3
"""Writes noisy.ppm and noisy.pgm: a 203x157 gradient with noise and a few
hard edges, so that the JPEGs made from it have long Huffman codes, large
coefficients and blocks cut by the image's edges. Deterministic."""
import random

W, H = 203, 157
rnd = random.Random(15)
rgb = bytearray()
for y in range(H):
    for x in range(W):
        edge = 120 if (x // 23 + y // 17) % 2 else 0
        r = (x * 255 // W + edge + rnd.randint(-40, 40)) % 256
        g = (y * 255 // H + rnd.randint(-40, 40)) % 256
        b = ((x + y) * 2 + edge + rnd.randint(-40, 40)) % 256
        rgb += bytes((r, g, b))
with open("noisy.ppm", "wb") as f:
    f.write(b"P6\n%d %d\n255\n" % (W, H) + bytes(rgb))
with open("noisy.pgm", "wb") as f:
    f.write(b"P5\n%d %d\n255\n" % (W, H) + bytes(rgb[0::3]))
