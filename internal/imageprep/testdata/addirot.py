# addirot.py IN OUT ANGLE: gives the primary item of a HEIF file an irot
# property (rotation anticlockwise by 90°·ANGLE), shifting iloc offsets.
import struct, sys
src, dst, angle = sys.argv[1], sys.argv[2], int(sys.argv[3])
d = bytearray(open(src, 'rb').read())
def boxes(b, off):
    i = 0
    while i + 8 <= len(b):
        sz, = struct.unpack('>I', b[i:i+4]); yield b[i+4:i+8].decode('latin1'), off + i, sz; i += sz
top = {t: (o, s) for t, o, s in boxes(d, 0)}
mo, ms = top['meta']
meta = {t: (o, s) for t, o, s in boxes(d[mo+12:mo+ms], mo+12)}
pitm_o, _ = meta['pitm']; pv = d[pitm_o+8]
primary = struct.unpack('>H', d[pitm_o+12:pitm_o+14])[0] if pv == 0 else struct.unpack('>I', d[pitm_o+12:pitm_o+16])[0]
io_, is_ = meta['iprp']
iprp = {t: (o, s) for t, o, s in boxes(d[io_+8:io_+is_], io_+8)}
co, cs = iprp['ipco']
nprops = sum(1 for _ in boxes(d[co+8:co+cs], 0))
ao, as_ = iprp['ipma']
# rebuild ipma
v, flags = d[ao+8], int.from_bytes(d[ao+9:ao+12], 'big')
p = ao + 12; cnt, = struct.unpack('>I', d[p:p+4]); p += 4
out = bytearray(d[ao+8:ao+16])
for _ in range(cnt):
    idn = 2 if v < 1 else 4
    iid = int.from_bytes(d[p:p+idn], 'big'); p += idn
    n = d[p]; p += 1
    esz = 2 if flags & 1 else 1
    ents = d[p:p+n*esz]; p += n*esz
    if iid == primary:
        n += 1; ents += (nprops+1).to_bytes(esz, 'big')
    out += iid.to_bytes(idn, 'big') + bytes([n]) + ents
ipma = struct.pack('>I', 8+len(out)) + b'ipma' + out
irot = struct.pack('>I', 9) + b'irot' + bytes([angle & 3])
delta = len(irot) + len(ipma) - as_
# shift iloc method-0 offsets (mdat follows meta)
lo, ls = meta['iloc']
v = d[lo+8]; q = lo + 12
sizes = int.from_bytes(d[q:q+2], 'big'); q += 2
offs, lens, bases, idxs = sizes >> 12, (sizes >> 8) & 15, (sizes >> 4) & 15, (sizes & 15) if v in (1, 2) else 0
cnt = int.from_bytes(d[q:q+(2 if v < 2 else 4)], 'big'); q += 2 if v < 2 else 4
for _ in range(cnt):
    q += 2 if v < 2 else 4
    method = 0
    if v in (1, 2): method = int.from_bytes(d[q:q+2], 'big') & 15; q += 2
    q += 2
    if bases:
        if method == 0:
            b = int.from_bytes(d[q:q+bases], 'big'); d[q:q+bases] = (b+delta).to_bytes(bases, 'big')
        q += bases
    ext = int.from_bytes(d[q:q+2], 'big'); q += 2
    for _ in range(ext):
        q += idxs
        if offs and not bases and method == 0:
            b = int.from_bytes(d[q:q+offs], 'big'); d[q:q+offs] = (b+delta).to_bytes(offs, 'big')
        q += offs + lens
new = d[:co+cs] + irot + d[co+cs:ao] + ipma + d[ao+as_:]
def grow(buf, at, by): 
    s, = struct.unpack('>I', buf[at:at+4]); buf[at:at+4] = struct.pack('>I', s+by)
grow(new, co, len(irot)); grow(new, io_, delta); grow(new, mo, delta)
open(dst, 'wb').write(new)
