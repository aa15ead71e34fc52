import struct, zlib, sys
w,h=int(sys.argv[1]),int(sys.argv[2])
raw=b''.join(b'\x00'+bytes(v for x in range(w) for v in ((x*255)//w,(y*255)//h,128)) for y in range(h))
def chunk(t,d): return struct.pack('>I',len(d))+t+d+struct.pack('>I',zlib.crc32(t+d))
open(sys.argv[3],'wb').write(b'\x89PNG\r\n\x1a\n'+chunk(b'IHDR',struct.pack('>IIBBBBB',w,h,8,2,0,0,0))+chunk(b'IDAT',zlib.compress(raw))+chunk(b'IEND',b''))
