package signing

import (
	"encoding/asn1"
	"errors"
	"math/big"
)

// Brainpool curves (RFC 5639), which European signers use and Go's crypto/ecdsa does not
// know. Only verification is needed, so the arithmetic is plain affine math/big: it is
// neither fast nor constant-time, and a signature check has no secret to leak.

// Curve is a short Weierstrass curve y² = x³ + ax + b over GF(p), of order n.
type Curve struct {
	Name          string
	OID           asn1.ObjectIdentifier
	P, A, B, N    *big.Int
	Gx, Gy        *big.Int
	byteLen, bits int
}

// ECKey is a public key on a Curve.
type ECKey struct {
	Curve *Curve
	X, Y  *big.Int
}

func hexInt(s string) *big.Int {
	v, ok := new(big.Int).SetString(s, 16)
	if !ok {
		panic("signing: bad curve constant " + s)
	}
	return v
}

func newCurve(name string, oid asn1.ObjectIdentifier, p, a, b, g, n string, bits int) *Curve {
	c := &Curve{Name: name, OID: oid, P: hexInt(p), A: hexInt(a), B: hexInt(b), N: hexInt(n), bits: bits, byteLen: (bits + 7) / 8}
	c.Gx, c.Gy = hexInt(g[:len(g)/2]), hexInt(g[len(g)/2:])
	return c
}

// The parameters are OpenSSL's (`openssl ecparam -name brainpoolP384r1 -param_enc explicit`).
var brainpoolCurves = []*Curve{
	newCurve("brainpoolP256r1", asn1.ObjectIdentifier{1, 3, 36, 3, 3, 2, 8, 1, 1, 7},
		"a9fb57dba1eea9bc3e660a909d838d726e3bf623d52620282013481d1f6e5377",
		"7d5a0975fc2c3057eef67530417affe7fb8055c126dc5c6ce94a4b44f330b5d9",
		"26dc5c6ce94a4b44f330b5d9bbd77cbf958416295cf7e1ce6bccdc18ff8c07b6",
		"8bd2aeb9cb7e57cb2c4b482ffc81b7afb9de27e1e3bd23c23a4453bd9ace3262547ef835c3dac4fd97f8461a14611dc9c27745132ded8e545c1d54c72f046997",
		"a9fb57dba1eea9bc3e660a909d838d718c397aa3b561a6f7901e0e82974856a7", 256),
	newCurve("brainpoolP384r1", asn1.ObjectIdentifier{1, 3, 36, 3, 3, 2, 8, 1, 1, 11},
		"8cb91e82a3386d280f5d6f7e50e641df152f7109ed5456b412b1da197fb71123acd3a729901d1a71874700133107ec53",
		"7bc382c63d8c150c3c72080ace05afa0c2bea28e4fb22787139165efba91f90f8aa5814a503ad4eb04a8c7dd22ce2826",
		"04a8c7dd22ce28268b39b55416f0447c2fb77de107dcd2a62e880ea53eeb62d57cb4390295dbc9943ab78696fa504c11",
		"1d1c64f068cf45ffa2a63a81b7c13f6b8847a3e77ef14fe3db7fcafe0cbd10e8e826e03436d646aaef87b2e247d4af1e8abe1d7520f9c2a45cb1eb8e95cfd55262b70b29feec5864e19c054ff99129280e4646217791811142820341263c5315",
		"8cb91e82a3386d280f5d6f7e50e641df152f7109ed5456b31f166e6cac0425a7cf3ab6af6b7fc3103b883202e9046565", 384),
	newCurve("brainpoolP512r1", asn1.ObjectIdentifier{1, 3, 36, 3, 3, 2, 8, 1, 1, 13},
		"aadd9db8dbe9c48b3fd4e6ae33c9fc07cb308db3b3c9d20ed6639cca703308717d4d9b009bc66842aecda12ae6a380e62881ff2f2d82c68528aa6056583a48f3",
		"7830a3318b603b89e2327145ac234cc594cbdd8d3df91610a83441caea9863bc2ded5d5aa8253aa10a2ef1c98b9ac8b57f1117a72bf2c7b9e7c1ac4d77fc94ca",
		"3df91610a83441caea9863bc2ded5d5aa8253aa10a2ef1c98b9ac8b57f1117a72bf2c7b9e7c1ac4d77fc94cadc083e67984050b75ebae5dd2809bd638016f723",
		"81aee4bdd82ed9645a21322e9c4c6a9385ed9f70b5d916c1b43b62eef4d0098eff3b1f78e2d0d48d50d1687b93b97d5f7c6d5047406a5e688b352209bcb9f8227dde385d566332ecc0eabfa9cf7822fdf209f70024a57b1aa000c55b881f8111b2dcde494a5f485e5bca4bd88a2763aed1ca2b2fa8f0540678cd1e0f3ad80892",
		"aadd9db8dbe9c48b3fd4e6ae33c9fc07cb308db3b3c9d20ed6639cca70330870553e5c414ca92619418661197fac10471db1d381085ddaddb58796829ca90069", 512),
}

func curveByOID(oid asn1.ObjectIdentifier) *Curve {
	for _, c := range brainpoolCurves {
		if c.OID.Equal(oid) {
			return c
		}
	}
	return nil
}

// onCurve reports whether (x, y) satisfies the curve equation.
func (c *Curve) onCurve(x, y *big.Int) bool {
	if x.Sign() < 0 || x.Cmp(c.P) >= 0 || y.Sign() < 0 || y.Cmp(c.P) >= 0 {
		return false
	}
	l := new(big.Int).Mul(y, y)
	l.Mod(l, c.P)
	r := new(big.Int).Mul(x, x)
	r.Mul(r, x)
	r.Add(r, new(big.Int).Mul(c.A, x))
	r.Add(r, c.B)
	r.Mod(r, c.P)
	return l.Cmp(r) == 0
}

// add returns P+Q in affine coordinates; nil is the point at infinity.
func (c *Curve) add(p, q *[2]*big.Int) *[2]*big.Int {
	if p == nil {
		return q
	}
	if q == nil {
		return p
	}
	m := new(big.Int)
	if p[0].Cmp(q[0]) == 0 {
		if new(big.Int).Add(p[1], q[1]).Mod(new(big.Int).Add(p[1], q[1]), c.P).Sign() == 0 {
			return nil
		}
		// tangent: (3x² + a) / 2y
		num := new(big.Int).Mul(p[0], p[0])
		num.Mul(num, big.NewInt(3)).Add(num, c.A)
		den := new(big.Int).Lsh(p[1], 1)
		m.Mul(num, new(big.Int).ModInverse(den.Mod(den, c.P), c.P))
	} else {
		num := new(big.Int).Sub(q[1], p[1])
		den := new(big.Int).Sub(q[0], p[0])
		m.Mul(num, new(big.Int).ModInverse(den.Mod(den, c.P), c.P))
	}
	m.Mod(m, c.P)
	x := new(big.Int).Mul(m, m)
	x.Sub(x, p[0]).Sub(x, q[0]).Mod(x, c.P)
	y := new(big.Int).Sub(p[0], x)
	y.Mul(y, m).Sub(y, p[1]).Mod(y, c.P)
	return &[2]*big.Int{x, y}
}

func (c *Curve) mul(p *[2]*big.Int, k *big.Int) *[2]*big.Int {
	var r *[2]*big.Int
	for i := k.BitLen() - 1; i >= 0; i-- {
		r = c.add(r, r)
		if k.Bit(i) == 1 {
			r = c.add(r, p)
		}
	}
	return r
}

// verifyECDSA checks an ECDSA signature (r, s) over digest (FIPS 186-4 §6.4).
func (k *ECKey) verifyECDSA(digest []byte, r, s *big.Int) bool {
	c := k.Curve
	if r.Sign() <= 0 || s.Sign() <= 0 || r.Cmp(c.N) >= 0 || s.Cmp(c.N) >= 0 || !c.onCurve(k.X, k.Y) {
		return false
	}
	e := new(big.Int).SetBytes(digest)
	if excess := len(digest)*8 - c.N.BitLen(); excess > 0 {
		e.Rsh(e, uint(excess))
	}
	w := new(big.Int).ModInverse(s, c.N)
	u1 := new(big.Int).Mul(e, w)
	u1.Mod(u1, c.N)
	u2 := new(big.Int).Mul(r, w)
	u2.Mod(u2, c.N)
	pt := c.add(c.mul(&[2]*big.Int{c.Gx, c.Gy}, u1), c.mul(&[2]*big.Int{k.X, k.Y}, u2))
	if pt == nil {
		return false
	}
	return new(big.Int).Mod(pt[0], c.N).Cmp(r) == 0
}

// parseECPoint reads an uncompressed point (04 || X || Y) on c.
func parseECPoint(c *Curve, b []byte) (*ECKey, error) {
	if len(b) != 1+2*c.byteLen || b[0] != 4 {
		return nil, errors.New("not an uncompressed point of the curve's size")
	}
	k := &ECKey{Curve: c, X: new(big.Int).SetBytes(b[1 : 1+c.byteLen]), Y: new(big.Int).SetBytes(b[1+c.byteLen:])}
	if !c.onCurve(k.X, k.Y) {
		return nil, errors.New("the point is not on the curve")
	}
	return k, nil
}
