package archive

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"github.com/dangan-archive/dangan/signing"
	"github.com/dangan-archive/dangan/storage/index"
)

// ErrBadSignature is returned (wrapped) for a signed document whose signature or signer
// does not verify.
var ErrBadSignature = errors.New("signed document does not verify")

// Signed is a JSON document with a detached SM2/SM3 signature over its exact text: transfer
// manifests (移交清单), receipts and destruction registers travel and are kept this way.
type Signed struct {
	Body         string   `json:"body"`         // the document, JSON text
	Signature    []byte   `json:"signature"`    // SM2/SM3 over Body, DER
	Certificates [][]byte `json:"certificates"` // the signer's certificate, then its issuers
}

// sign encodes v and signs it with id.
func sign(id *signing.Identity, v any) (*Signed, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	sig, err := signing.Sign(id.Key, buf.Bytes())
	if err != nil {
		return nil, err
	}
	return &Signed{Body: buf.String(), Signature: sig, Certificates: certsDER(id)}, nil
}

// SM3 is the hex digest of the body: how receipts and events name a signed document.
func (s *Signed) SM3() string {
	sum := sm3.Sum([]byte(s.Body))
	return hex.EncodeToString(sum[:])
}

// Verify checks the signature and that the signer chains to roots at time at, decodes the
// body into v (unknown fields refused) and returns the signer's certificate.
func (s *Signed) Verify(roots *smx509.CertPool, at time.Time, v any) (*smx509.Certificate, error) {
	if len(s.Certificates) == 0 {
		return nil, fmt.Errorf("%w: no signer certificate", ErrBadSignature)
	}
	var certs []*smx509.Certificate
	for i, der := range s.Certificates {
		c, err := smx509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate %d: %v", ErrBadSignature, i, err)
		}
		certs = append(certs, c)
	}
	pub, ok := certs[0].PublicKey.(*ecdsa.PublicKey)
	if !ok || !signing.IsSM2(pub) {
		return nil, fmt.Errorf("%w: the signer's key is not SM2", ErrBadSignature)
	}
	if err := signing.Verify(pub, []byte(s.Body), s.Signature); err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrBadSignature, certs[0].Subject.CommonName, err)
	}
	if _, err := signing.VerifyChain(certs[0], certs[1:], roots, at); err != nil {
		return nil, fmt.Errorf("%w: %q is not trusted: %v", ErrBadSignature, certs[0].Subject.CommonName, err)
	}
	if v != nil {
		if err := jsonUnmarshalStrict([]byte(s.Body), v); err != nil {
			return nil, fmt.Errorf("%w: the signed body: %v", ErrBadSignature, err)
		}
	}
	return certs[0], nil
}

// keepOnce stores rec under id in a record bucket unless one is there: the same signed
// document sent again gets the record kept, another under the same id is ErrState. It
// reports whether rec was stored.
func keepOnce[T any](db *index.DB, bucket, id string, rec *T, signedOf func(*T) *Signed) (*T, bool, error) {
	created := false
	err := db.UpdateRecord(bucket, id, func(data []byte) (any, error) {
		if data == nil {
			created = true
			return rec, nil
		}
		cur := new(T)
		if err := json.Unmarshal(data, cur); err != nil {
			return nil, err
		}
		if signedOf(cur).SM3() != signedOf(rec).SM3() {
			return nil, fmt.Errorf("%w: %s was received with other content", ErrState, id)
		}
		rec = cur
		return nil, nil
	})
	return rec, created, err
}
