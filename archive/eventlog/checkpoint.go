package eventlog

import (
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"github.com/dangan-archive/dangan/signing"
)

// CheckpointFormat is the first line of a checkpoint body.
const CheckpointFormat = "dangan-checkpoint/1"

// CosignatureFormat is the first line of what a witness signs.
const CosignatureFormat = "dangan-cosignature/1"

// Errors of checkpoint verification; each failure wraps one, so the reason is specific.
var (
	ErrCheckpointBody      = errors.New("malformed checkpoint")
	ErrCheckpointSignature = errors.New("checkpoint signature invalid")
	ErrCheckpointSigner    = errors.New("checkpoint signer not trusted")
	ErrCheckpointToken     = errors.New("checkpoint timestamp invalid")
	ErrCosignature         = errors.New("cosignature invalid")
)

// Checkpoint is a statement of the log's state: its origin (which log), size and root.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   []byte
	Time   time.Time // when the log signed it (the token's time is the trusted one)
}

// Body is the text that is signed:
//
//	dangan-checkpoint/1
//	<origin>
//	<size>
//	<root, hex>
//	<time, RFC 3339 UTC>
func (c Checkpoint) Body() string {
	return fmt.Sprintf("%s\n%s\n%d\n%x\n%s\n", CheckpointFormat, c.Origin, c.Size, c.Root, c.Time.UTC().Format(time.RFC3339Nano))
}

// ParseCheckpoint reads a checkpoint body.
func ParseCheckpoint(body string) (Checkpoint, error) {
	var c Checkpoint
	lines := strings.Split(body, "\n")
	if len(lines) != 6 || lines[0] != CheckpointFormat || lines[5] != "" {
		return c, fmt.Errorf("%w: expected %s with origin, size, root and time lines", ErrCheckpointBody, CheckpointFormat)
	}
	var err error
	c.Origin = lines[1]
	if c.Size, err = strconv.ParseUint(lines[2], 10, 64); err != nil {
		return c, fmt.Errorf("%w: size %q", ErrCheckpointBody, lines[2])
	}
	if c.Root, err = hex.DecodeString(lines[3]); err != nil || len(c.Root) != sm3.Size {
		return c, fmt.Errorf("%w: root %q", ErrCheckpointBody, lines[3])
	}
	if c.Time, err = time.Parse(time.RFC3339Nano, lines[4]); err != nil {
		return c, fmt.Errorf("%w: time %q", ErrCheckpointBody, lines[4])
	}
	if c.Body() != body {
		return c, fmt.Errorf("%w: not in canonical form", ErrCheckpointBody)
	}
	return c, nil
}

// SignedCheckpoint is a checkpoint signed with the log's SM2 key and timestamped: the token
// is over SM3(body ‖ signature), so it dates the signature too.
type SignedCheckpoint struct {
	Body         string        `json:"body"`
	Signature    []byte        `json:"signature"`    // SM2/SM3 over Body, DER
	Certificates [][]byte      `json:"certificates"` // the signer's certificate, then its issuers
	Token        []byte        `json:"token"`        // RFC 3161 over SM3(Body ‖ Signature)
	Cosignatures []Cosignature `json:"cosignatures,omitempty"`
}

// tokenDigest is what a checkpoint's token covers.
func tokenDigest(body string, sig []byte) []byte {
	h := sm3.New()
	h.Write([]byte(body))
	h.Write(sig)
	return h.Sum(nil)
}

// CheckpointInfo is what verifying a signed checkpoint establishes.
type CheckpointInfo struct {
	Checkpoint
	Signer     string    // the signing certificate's subject
	TokenTime  time.Time // the TSA's time: the checkpoint existed then
	TokenBy    string
	TokenDER   []byte
	SignerCert *smx509.Certificate
	TokenCert  *smx509.Certificate // the TSA's certificate
}

// VerifyCheckpoint checks a signed checkpoint offline: the body, the SM2 signature, the
// timestamp token over body and signature, and that the signer chains to roots at the
// token's time.
func VerifyCheckpoint(sc *SignedCheckpoint, roots *smx509.CertPool) (*CheckpointInfo, error) {
	c, err := ParseCheckpoint(sc.Body)
	if err != nil {
		return nil, err
	}
	info := &CheckpointInfo{Checkpoint: c, TokenDER: sc.Token}
	cert, inter, err := parseChain(sc.Certificates)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCheckpointSigner, err)
	}
	info.Signer, info.SignerCert = cert.Subject.CommonName, cert
	if err := signing.Verify(cert.PublicKey.(*ecdsa.PublicKey), []byte(sc.Body), sc.Signature); err != nil {
		return nil, fmt.Errorf("%w: %q did not sign this checkpoint (size %d): %v", ErrCheckpointSignature, info.Signer, c.Size, err)
	}
	tok, err := signing.VerifyToken(sc.Token, tokenDigest(sc.Body, sc.Signature), roots)
	if err != nil {
		return nil, fmt.Errorf("%w: checkpoint of size %d: %v", ErrCheckpointToken, c.Size, err)
	}
	info.TokenTime, info.TokenBy, info.TokenCert = tok.GenTime, tok.Signer.Subject.CommonName, tok.Signer
	if _, err := signing.VerifyChain(cert, inter, roots, tok.GenTime); err != nil {
		return nil, fmt.Errorf("%w: %q at %s: %v", ErrCheckpointSigner, info.Signer, tok.GenTime.Format(time.RFC3339), err)
	}
	return info, nil
}

func parseChain(ders [][]byte) (*smx509.Certificate, []*smx509.Certificate, error) {
	if len(ders) == 0 {
		return nil, nil, errors.New("no certificate")
	}
	var certs []*smx509.Certificate
	for i, der := range ders {
		c, err := smx509.ParseCertificate(der)
		if err != nil {
			return nil, nil, fmt.Errorf("certificate %d: %v", i, err)
		}
		certs = append(certs, c)
	}
	pub, ok := certs[0].PublicKey.(*ecdsa.PublicKey)
	if !ok || !signing.IsSM2(pub) {
		return nil, nil, errors.New("the signer's key is not SM2")
	}
	return certs[0], certs[1:], nil
}

// Cosignature is a witness's statement that it saw a checkpoint and that it is consistent
// with every checkpoint of the same origin it cosigned before.
type Cosignature struct {
	Witness      string    `json:"witness"` // the witness's own log origin
	Time         time.Time `json:"time"`
	Signature    []byte    `json:"signature"` // SM2/SM3 over CosignedText
	Certificates [][]byte  `json:"certificates"`
}

// CosignedText is what a witness signs: the format line, its name, the time, then the body.
func CosignedText(witness string, at time.Time, body string) string {
	return fmt.Sprintf("%s\n%s\n%s\n%s", CosignatureFormat, witness, at.UTC().Format(time.RFC3339Nano), body)
}

// VerifyCosignature checks a cosignature over a checkpoint body: the signature, and that
// the witness chains to roots at the time it states. It returns the witness's subject.
func VerifyCosignature(cs *Cosignature, body string, roots *smx509.CertPool) (string, error) {
	cert, inter, err := parseChain(cs.Certificates)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrCosignature, err)
	}
	if err := signing.Verify(cert.PublicKey.(*ecdsa.PublicKey), []byte(CosignedText(cs.Witness, cs.Time, body)), cs.Signature); err != nil {
		return "", fmt.Errorf("%w: witness %q: %v", ErrCosignature, cs.Witness, err)
	}
	if _, err := signing.VerifyChain(cert, inter, roots, cs.Time); err != nil {
		return "", fmt.Errorf("%w: witness %q is not trusted: %v", ErrCosignature, cs.Witness, err)
	}
	return cert.Subject.CommonName, nil
}

// witnessID is a short, key-safe name for an origin or witness.
func witnessID(name string) string {
	s := sm3.Sum([]byte(name))
	return hex.EncodeToString(s[:8])
}
