package signing

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/emmansun/gmsm/smx509"
)

// RFC 3161 time-stamp protocol with SM3 imprints and SM2-signed tokens.

// DefaultTSAPolicy is the policy of dangan's built-in TSA when none is configured: an OID
// under the UUID arc 2.25 (ITU-T X.667), so it collides with nobody's.
const DefaultTSAPolicy = "2.25.3774215667124529236586240361522817243"

type messageImprint struct {
	HashAlgorithm pkix.AlgorithmIdentifier
	HashedMessage []byte
}

type timeStampReq struct {
	Version        int
	MessageImprint messageImprint
	ReqPolicy      asn1.ObjectIdentifier `asn1:"optional"`
	Nonce          *big.Int              `asn1:"optional"`
	CertReq        bool                  `asn1:"optional,default:false"`
	Extensions     []pkix.Extension      `asn1:"optional,tag:0"`
}

type pkiStatusInfo struct {
	Status       int
	StatusString []asn1.RawValue `asn1:"optional"`
	FailInfo     asn1.BitString  `asn1:"optional"`
}

type timeStampResp struct {
	Status         pkiStatusInfo
	TimeStampToken asn1.RawValue `asn1:"optional"`
}

type accuracy struct {
	Seconds int `asn1:"optional"`
	Millis  int `asn1:"optional,tag:0"`
	Micros  int `asn1:"optional,tag:1"`
}

type tstInfo struct {
	Version        int
	Policy         asn1.RawValue // an OID; raw because encoding/asn1 limits arcs to 31 bits
	MessageImprint messageImprint
	SerialNumber   *big.Int
	GenTime        time.Time        `asn1:"generalized"`
	Accuracy       accuracy         `asn1:"optional"`
	Ordering       bool             `asn1:"optional,default:false"`
	Nonce          *big.Int         `asn1:"optional"`
	TSA            asn1.RawValue    `asn1:"optional,tag:0"`
	Extensions     []pkix.Extension `asn1:"optional,tag:1"`
}

// PKIStatus values (RFC 3161 §2.4.2) and failure bits.
const (
	statusGranted   = 0
	statusRejection = 2
	failBadAlg      = 0
	failBadRequest  = 2
	failBadDataFmt  = 5
	failUnaccPolicy = 15
	failSystem      = 25
)

// ErrTimestamp is returned (wrapped) when a timestamp request fails or a token is invalid.
var ErrTimestamp = errors.New("timestamp")

// Timestamper obtains an RFC 3161 token over an SM3 digest. The built-in TSA and an HTTP
// client of any RFC 3161 server both implement it.
type Timestamper interface {
	Timestamp(ctx context.Context, sm3Digest []byte) (token []byte, err error)
}

// TSA is dangan's built-in time-stamping authority.
type TSA struct {
	ID       *Identity
	Policy   string        // dotted OID
	Accuracy time.Duration // stated accuracy; one second when zero
	Now      func() time.Time

	mu         sync.Mutex
	lastSerial *big.Int
}

// NewTSA makes a TSA that signs with id, whose certificate must carry the critical
// timeStamping EKU.
func NewTSA(id *Identity) *TSA {
	return &TSA{ID: id, Policy: DefaultTSAPolicy, Now: time.Now}
}

// serial returns a fresh, strictly increasing serial number: time in nanoseconds with 32
// random low bits, so restarts and clock steps do not repeat one.
func (t *TSA) serial() (*big.Int, error) {
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("serial randomness: %w", err)
	}
	s := new(big.Int).Lsh(big.NewInt(time.Now().UnixNano()), 32)
	s.Or(s, new(big.Int).SetBytes(rnd[:]))
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lastSerial != nil && s.Cmp(t.lastSerial) <= 0 {
		s = new(big.Int).Add(t.lastSerial, big.NewInt(1))
	}
	t.lastSerial = s
	return s, nil
}

func (t *TSA) token(imprint messageImprint, nonce *big.Int) ([]byte, error) {
	policy, err := MarshalOID(t.Policy)
	if err != nil {
		return nil, fmt.Errorf("TSA policy: %w", err)
	}
	serial, err := t.serial()
	if err != nil {
		return nil, err
	}
	acc := t.Accuracy
	if acc <= 0 {
		acc = time.Second
	}
	info := tstInfo{
		Version:        1,
		Policy:         asn1.RawValue{FullBytes: policy},
		MessageImprint: imprint,
		SerialNumber:   serial,
		GenTime:        t.Now().UTC().Truncate(time.Second),
		Accuracy:       accuracy{Seconds: int(acc / time.Second), Millis: int(acc % time.Second / time.Millisecond)},
		Nonce:          nonce,
	}
	content, err := asn1.Marshal(info)
	if err != nil {
		return nil, fmt.Errorf("marshal TSTInfo: %w", err)
	}
	return signCMS(t.ID, oidTSTInfo, content)
}

// Timestamp returns a token over an SM3 digest, without a nonce.
func (t *TSA) Timestamp(_ context.Context, sm3Digest []byte) ([]byte, error) {
	if len(sm3Digest) != 32 {
		return nil, fmt.Errorf("%w: SM3 digest must be 32 bytes, got %d", ErrTimestamp, len(sm3Digest))
	}
	return t.token(messageImprint{HashAlgorithm: pkix.AlgorithmIdentifier{Algorithm: OIDSM3}, HashedMessage: sm3Digest}, nil)
}

// Respond answers a DER TimeStampReq with a DER TimeStampResp. Bad requests get a rejection
// response, as RFC 3161 asks, never an error.
func (t *TSA) Respond(reqDER []byte) []byte {
	reject := func(bit int, msg string) []byte {
		fi := asn1.BitString{Bytes: make([]byte, 4), BitLength: bit + 1}
		fi.Bytes[bit/8] |= 0x80 >> (bit % 8)
		fi.Bytes = fi.Bytes[:bit/8+1]
		text := tlv(0x30, tlv(0x0C, []byte(msg))) // PKIFreeText: SEQUENCE OF UTF8String
		return tlv(0x30, tlv(0x30, bytes.Join([][]byte{mustMarshal(statusRejection), text, mustMarshal(fi)}, nil)))
	}
	var req timeStampReq
	if rest, err := asn1.Unmarshal(reqDER, &req); err != nil || len(rest) > 0 {
		return reject(failBadDataFmt, "malformed TimeStampReq")
	}
	if req.Version != 1 {
		return reject(failBadRequest, "unsupported TimeStampReq version")
	}
	if !req.MessageImprint.HashAlgorithm.Algorithm.Equal(OIDSM3) {
		return reject(failBadAlg, "only SM3 message imprints are accepted")
	}
	if len(req.MessageImprint.HashedMessage) != 32 {
		return reject(failBadDataFmt, "SM3 imprint must be 32 bytes")
	}
	if len(req.ReqPolicy) > 0 && req.ReqPolicy.String() != t.Policy {
		return reject(failUnaccPolicy, "unaccepted policy")
	}
	for _, e := range req.Extensions {
		if e.Critical {
			return reject(failBadRequest, "unsupported critical extension")
		}
	}
	tok, err := t.token(req.MessageImprint, req.Nonce)
	if err != nil {
		return reject(failSystem, "the TSA could not sign")
	}
	return mustMarshal(timeStampResp{Status: pkiStatusInfo{Status: statusGranted}, TimeStampToken: asn1.RawValue{FullBytes: tok}})
}

// TokenInfo is what a verified token says.
type TokenInfo struct {
	GenTime time.Time
	Serial  *big.Int
	Policy  string
	Nonce   *big.Int
	Signer  *smx509.Certificate
	Chain   []*smx509.Certificate
}

// VerifyToken checks an RFC 3161 token (a DER ContentInfo) over sm3Digest: the imprint, the
// CMS signature, the signing-certificate binding, the TSA certificate's critical
// timeStamping EKU, and its chain to roots at the token's time.
func VerifyToken(token, sm3Digest []byte, roots *smx509.CertPool) (*TokenInfo, error) {
	p, err := parseCMS(token)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTimestamp, err)
	}
	// The archive's own evidence is held to the letter: no laxity a foreign reader allows.
	if len(p.Warnings) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrTimestamp, strings.Join(p.Warnings, "; "))
	}
	if !p.ContentType.Equal(oidTSTInfo) {
		return nil, fmt.Errorf("%w: content is %v, not TSTInfo", ErrTimestamp, p.ContentType)
	}
	var info tstInfo
	if _, err := asn1.Unmarshal(p.Content, &info); err != nil {
		return nil, fmt.Errorf("%w: parse TSTInfo: %v", ErrTimestamp, err)
	}
	if !info.MessageImprint.HashAlgorithm.Algorithm.Equal(OIDSM3) {
		return nil, fmt.Errorf("%w: imprint algorithm %v is not SM3", ErrTimestamp, info.MessageImprint.HashAlgorithm.Algorithm)
	}
	if !bytes.Equal(info.MessageImprint.HashedMessage, sm3Digest) {
		return nil, fmt.Errorf("%w: the token covers other data (imprint %x, expected %x)", ErrTimestamp, info.MessageImprint.HashedMessage, sm3Digest)
	}
	if err := p.verifySignature(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTimestamp, err)
	}
	if err := checkTSAUsage(p.Signer); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTimestamp, err)
	}
	chain, err := VerifyChain(p.Signer, p.Certs, roots, info.GenTime, smx509.ExtKeyUsageTimeStamping)
	if err != nil {
		return nil, fmt.Errorf("%w: TSA certificate: %w", ErrTimestamp, err)
	}
	policy, err := ParseOID(info.Policy.FullBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: policy: %v", ErrTimestamp, err)
	}
	return &TokenInfo{GenTime: info.GenTime, Serial: info.SerialNumber, Policy: policy, Nonce: info.Nonce, Signer: p.Signer, Chain: chain}, nil
}

func checkTSAUsage(c *smx509.Certificate) error {
	for _, e := range c.Extensions {
		if e.Id.Equal(oidExtKeyUsage) {
			if !e.Critical {
				return errors.New("TSA certificate's extended key usage is not critical (RFC 3161 §2.3)")
			}
			if len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != smx509.ExtKeyUsageTimeStamping || len(c.UnknownExtKeyUsage) > 0 {
				return errors.New("TSA certificate's extended key usage is not timeStamping alone")
			}
			return nil
		}
	}
	return errors.New("TSA certificate has no extended key usage")
}

// HTTPTimestamper asks an RFC 3161 server over HTTP.
type HTTPTimestamper struct {
	URL    string
	Client *http.Client
}

// Timestamp sends a request with an SM3 imprint, a nonce and certReq, and returns the token
// after checking the status, the imprint and the nonce. The caller verifies the token.
func (h *HTTPTimestamper) Timestamp(ctx context.Context, sm3Digest []byte) ([]byte, error) {
	nonce, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, fmt.Errorf("%w: nonce: %v", ErrTimestamp, err)
	}
	reqDER, err := NewTimestampRequest(sm3Digest, nonce)
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(reqDER))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTimestamp, err)
	}
	hr.Header.Set("Content-Type", "application/timestamp-query")
	c := h.Client
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := c.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("%w: ask %s: %v", ErrTimestamp, h.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: read reply from %s: %v", ErrTimestamp, h.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %s answered HTTP %d", ErrTimestamp, h.URL, resp.StatusCode)
	}
	return ParseTimestampReply(body, sm3Digest, nonce)
}

// NewTimestampRequest encodes a TimeStampReq for an SM3 digest, asking for certificates.
func NewTimestampRequest(sm3Digest []byte, nonce *big.Int) ([]byte, error) {
	if len(sm3Digest) != 32 {
		return nil, fmt.Errorf("%w: SM3 digest must be 32 bytes, got %d", ErrTimestamp, len(sm3Digest))
	}
	return asn1.Marshal(timeStampReq{Version: 1, MessageImprint: messageImprint{
		HashAlgorithm: pkix.AlgorithmIdentifier{Algorithm: OIDSM3}, HashedMessage: sm3Digest}, Nonce: nonce, CertReq: true})
}

// ParseTimestampReply checks a TimeStampResp: granted, imprint and nonce as asked. It
// returns the token.
func ParseTimestampReply(respDER, sm3Digest []byte, nonce *big.Int) ([]byte, error) {
	var resp timeStampResp
	if _, err := asn1.Unmarshal(respDER, &resp); err != nil {
		return nil, fmt.Errorf("%w: malformed TimeStampResp: %v", ErrTimestamp, err)
	}
	if resp.Status.Status > 1 {
		var text []string
		for _, v := range resp.Status.StatusString {
			text = append(text, string(v.Bytes))
		}
		return nil, fmt.Errorf("%w: TSA refused (status %d): %s", ErrTimestamp, resp.Status.Status, strings.Join(text, "; "))
	}
	tok := resp.TimeStampToken.FullBytes
	p, err := parseCMS(tok)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTimestamp, err)
	}
	var info tstInfo
	if _, err := asn1.Unmarshal(p.Content, &info); err != nil {
		return nil, fmt.Errorf("%w: parse TSTInfo: %v", ErrTimestamp, err)
	}
	if !bytes.Equal(info.MessageImprint.HashedMessage, sm3Digest) {
		return nil, fmt.Errorf("%w: reply covers other data", ErrTimestamp)
	}
	if nonce != nil && (info.Nonce == nil || info.Nonce.Cmp(nonce) != 0) {
		return nil, fmt.Errorf("%w: reply nonce differs from the request's", ErrTimestamp)
	}
	return tok, nil
}

// MarshalOID encodes a dotted OID as DER, allowing arcs of any size.
func MarshalOID(dotted string) ([]byte, error) {
	parts := strings.Split(dotted, ".")
	if len(parts) < 2 {
		return nil, fmt.Errorf("OID %q has fewer than two arcs", dotted)
	}
	arcs := make([]*big.Int, len(parts))
	for i, p := range parts {
		v, ok := new(big.Int).SetString(p, 10)
		if !ok || v.Sign() < 0 {
			return nil, fmt.Errorf("OID %q: bad arc %q", dotted, p)
		}
		arcs[i] = v
	}
	if arcs[0].Cmp(big.NewInt(2)) > 0 || (arcs[0].Cmp(big.NewInt(2)) < 0 && arcs[1].Cmp(big.NewInt(40)) >= 0) {
		return nil, fmt.Errorf("OID %q: bad first arcs", dotted)
	}
	first := new(big.Int).Add(new(big.Int).Mul(arcs[0], big.NewInt(40)), arcs[1])
	var body []byte
	for _, a := range append([]*big.Int{first}, arcs[2:]...) {
		var groups []byte
		v := new(big.Int).Set(a)
		for {
			groups = append([]byte{byte(new(big.Int).And(v, big.NewInt(0x7f)).Int64())}, groups...)
			v.Rsh(v, 7)
			if v.Sign() == 0 {
				break
			}
		}
		for i := 0; i < len(groups)-1; i++ {
			groups[i] |= 0x80
		}
		body = append(body, groups...)
	}
	return tlv(0x06, body), nil
}

// ParseOID decodes a DER OID with arcs of any size to dotted form.
func ParseOID(der []byte) (string, error) {
	var raw asn1.RawValue
	if _, err := asn1.Unmarshal(der, &raw); err != nil || raw.Tag != asn1.TagOID || raw.Class != asn1.ClassUniversal || len(raw.Bytes) == 0 {
		return "", errors.New("not a DER OBJECT IDENTIFIER")
	}
	var arcs []string
	v := new(big.Int)
	for i, b := range raw.Bytes {
		v.Lsh(v, 7)
		v.Or(v, big.NewInt(int64(b&0x7f)))
		if b&0x80 != 0 {
			if i == len(raw.Bytes)-1 {
				return "", errors.New("truncated OID arc")
			}
			continue
		}
		if len(arcs) == 0 {
			switch {
			case v.Cmp(big.NewInt(40)) < 0:
				arcs = append(arcs, "0", v.String())
			case v.Cmp(big.NewInt(80)) < 0:
				arcs = append(arcs, "1", new(big.Int).Sub(v, big.NewInt(40)).String())
			default:
				arcs = append(arcs, "2", new(big.Int).Sub(v, big.NewInt(80)).String())
			}
		} else {
			arcs = append(arcs, v.String())
		}
		v = new(big.Int)
	}
	return strings.Join(arcs, "."), nil
}

// Token is a parsed RFC 3161 time-stamp token from any TSA: RSA, ECDSA or SM2, with any
// imprint digest.
type Token struct {
	GenTime time.Time
	Policy  string
	Serial  *big.Int
	Digest  *Digest // the imprint's algorithm
	Imprint []byte
	Signer  *smx509.Certificate // nil when the token does not carry it
	Certs   []*smx509.Certificate
	p       *parsedCMS
}

// ParseToken reads a time-stamp token without checking it.
func ParseToken(der []byte) (*Token, error) {
	var raw asn1.RawValue
	if _, err := asn1.Unmarshal(der, &raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTimestamp, err)
	}
	p, err := parseCMS(raw.FullBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTimestamp, err)
	}
	if !p.ContentType.Equal(oidTSTInfo) {
		return nil, fmt.Errorf("%w: content is %v, not TSTInfo", ErrTimestamp, p.ContentType)
	}
	var info tstInfo
	if _, err := asn1.Unmarshal(p.Content, &info); err != nil {
		return nil, fmt.Errorf("%w: parse TSTInfo: %v", ErrTimestamp, err)
	}
	d, err := DigestByOID(info.MessageImprint.HashAlgorithm.Algorithm)
	if err != nil {
		return nil, fmt.Errorf("%w: imprint: %w", ErrTimestamp, err)
	}
	policy, _ := ParseOID(info.Policy.FullBytes)
	return &Token{GenTime: info.GenTime, Policy: policy, Serial: info.SerialNumber, Digest: d, Imprint: info.MessageImprint.HashedMessage,
		Signer: p.Signer, Certs: p.Certs, p: p}, nil
}

// Verify checks that the token's imprint is the digest of what write produces and that
// the TSA's signature over the token verifies. It does not check the TSA's chain: see
// VerifyChain with ExtKeyUsageTimeStamping, at GenTime.
func (t *Token) Verify(write func(io.Writer)) (*Verified, error) {
	h := t.Digest.New()
	write(h)
	if !bytes.Equal(h.Sum(nil), t.Imprint) {
		return nil, fmt.Errorf("%w: the token covers other data (its %s imprint does not match)", ErrTimestamp, t.Digest.Name)
	}
	v, err := t.p.verify(writeBytes(t.p.Content), false)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTimestamp, err)
	}
	if t.Digest.Weak {
		v.Warnings = append(v.Warnings, "weak imprint algorithm: "+t.Digest.Name)
	}
	return v, nil
}
