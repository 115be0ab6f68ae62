package signing

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emmansun/gmsm/smx509"
)

// VerifyChainLegacy builds a chain from leaf to one of anchors itself, checking each
// certificate's signature with the algorithm registry (algorithms.go), its validity at at,
// and that each issuer is a CA. It is for documents signed elsewhere whose CAs still sign
// certificates with SHA-1, which VerifyChain (Go's x509) refuses outright; every such
// certificate is returned as a warning. Name constraints and policies are not checked.
func VerifyChainLegacy(leaf *smx509.Certificate, intermediates, anchors []*smx509.Certificate, at time.Time) ([]*smx509.Certificate, []string, error) {
	chain := []*smx509.Certificate{leaf}
	var warn []string
	cur := leaf
	for depth := 0; depth < 8; depth++ {
		if at.Before(cur.NotBefore) || at.After(cur.NotAfter) {
			return nil, nil, fmt.Errorf("%w: %q is not valid at %s", ErrUntrusted, cur.Subject.CommonName, at.UTC().Format(time.RFC3339))
		}
		for _, a := range anchors {
			if a.Equal(cur) {
				return chain, warn, nil
			}
		}
		var issuer *smx509.Certificate
		for _, cands := range [][]*smx509.Certificate{anchors, intermediates} {
			for _, c := range cands {
				if bytes.Equal(c.RawSubject, cur.RawIssuer) && !c.Equal(cur) && (c.BasicConstraintsValid && c.IsCA || c.Version < 3) {
					if w, err := checkCertSignature(cur, c); err == nil {
						issuer, warn = c, append(warn, w...)
						break
					}
				}
			}
			if issuer != nil {
				break
			}
		}
		if issuer == nil {
			return nil, nil, fmt.Errorf("%w: no trusted issuer of %q", ErrUntrusted, cur.Subject.CommonName)
		}
		chain = append(chain, issuer)
		cur = issuer
	}
	return nil, nil, fmt.Errorf("%w: the chain is longer than 8", ErrUntrusted)
}

// checkCertSignature checks that issuer signed c, with any algorithm of the registry.
func checkCertSignature(c, issuer *smx509.Certificate) ([]string, error) {
	var outer struct {
		TBS asn1.RawValue
		Alg pkix.AlgorithmIdentifier
		Sig asn1.BitString
	}
	if _, err := asn1.Unmarshal(c.Raw, &outer); err != nil {
		return nil, err
	}
	v, err := VerifyMessage(issuer.PublicKey, outer.Alg, nil, func(w io.Writer) { w.Write(c.RawTBSCertificate) }, outer.Sig.Bytes)
	if err != nil {
		return nil, err
	}
	var warn []string
	for _, w := range v.Warnings {
		warn = append(warn, fmt.Sprintf("the certificate %q is signed with %s: %s", c.Subject.CommonName, v.Algorithm, w))
	}
	return warn, nil
}

// isInsecureAlgorithm reports whether a chain error is Go's refusal of a SHA-1 (or MD5)
// certificate signature.
func isInsecureAlgorithm(err error) bool {
	return err != nil && strings.Contains(err.Error(), "insecure algorithm")
}

// VerifyChainForDocument is VerifyChain for a document signed elsewhere: when Go refuses a
// chain only for a certificate signed with SHA-1, the chain is built again with
// VerifyChainLegacy and each such certificate is a warning.
func VerifyChainForDocument(leaf *smx509.Certificate, intermediates []*smx509.Certificate, roots *smx509.CertPool, anchors []*smx509.Certificate, at time.Time, usage ...smx509.ExtKeyUsage) ([]*smx509.Certificate, []string, error) {
	chain, err := VerifyChain(leaf, intermediates, roots, at, usage...)
	if err == nil || !isInsecureAlgorithm(err) {
		return chain, nil, err
	}
	return VerifyChainLegacy(leaf, intermediates, anchors, at)
}
