#!/usr/bin/python3
"""Builds formats/font/DanganSans.ttf, the font dangan embeds in certificates.

Latin from DejaVu Sans (scaled to 256 units per em) and CJK from Droid Sans Fallback, without
hinting or layout tables. Needs Debian's fonttools, fonts-dejavu-core and fonts-droid-fallback.
"""
from fontTools import subset
from fontTools.merge import Merger
from fontTools.ttLib import TTFont
from fontTools.ttLib.scaleUpem import scale_upem

DROP = ['GSUB', 'GPOS', 'GDEF', 'vhea', 'vmtx', 'kern', 'gasp', 'cvt ', 'fpgm', 'prep', 'hdmx',
        'LTSH', 'VDMX', 'DSIG', 'FFTM', 'MATH']


def sub(src, unicodes):
    opts = subset.Options()
    opts.hinting = False
    opts.desubroutinize = True
    opts.name_IDs = ['*']
    opts.drop_tables += DROP
    opts.layout_features = []
    opts.notdef_outline = True
    f = TTFont(src)
    s = subset.Subsetter(opts)
    s.populate(unicodes=unicodes)
    s.subset(f)
    for t in DROP:
        if t in f:
            del f[t]
    return f


def r(a, b):
    return list(range(a, b + 1))


latin = r(0x21, 0x7e) + r(0xa0, 0xff) + [0x2013, 0x2014, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2026, 0x2116, 0x2103]
cjk = [0x20] + r(0x2000, 0x206F) + r(0x2100, 0x214F) + r(0x2160, 0x217F) + r(0x2460, 0x24FF) + \
    r(0x25A0, 0x25FF) + r(0x3000, 0x303F) + r(0x4E00, 0x9FFF) + r(0xF900, 0xFAFF) + r(0xFF00, 0xFFEF)
lat = sub('/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', latin)
scale_upem(lat, 256)
lat.save('/tmp/dangan-latin.ttf')
sub('/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf', cjk).save('/tmp/dangan-cjk.ttf')
m = Merger().merge(['/tmp/dangan-latin.ttf', '/tmp/dangan-cjk.ttf'])
for nid in (1, 4, 6):
    m['name'].setName('DanganSans', nid, 3, 1, 0x409)
m.save('formats/font/DanganSans.ttf')
