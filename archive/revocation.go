package archive

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/emmansun/gmsm/smx509"
	"golang.org/x/crypto/ocsp"

	"github.com/dangan-archive/dangan/formats/eep"
	"github.com/dangan-archive/dangan/formats/pdfsig"
	"github.com/dangan-archive/dangan/signing"
)

// Revocation from the file itself: the validation data a PDF carries in its document
// security store (DSS: CRLs and OCSP responses, the LTV material PAdES B-LT adds), checked
// offline against the signer's issuer. The archive's configured CRLs are checked with the
// chain (signerChecks).

// CheckRevocation is the check of a signer's revocation status from the file's own
// validation data.
const CheckRevocation = "revocation"

// revocationChecks reports whether the DSS says the signer's certificate was revoked before
// at, and what validation material the file carries.
func (a *Archive) revocationChecks(rep *CertReport, where string, signer *smx509.Certificate, others []*smx509.Certificate, at time.Time, dss *pdfsig.DSS) {
	if signer == nil {
		return
	}
	if dss == nil || len(dss.CRLs)+len(dss.OCSPs) == 0 {
		rep.add(CertCheck{Check: CheckRevocation, Status: eep.Warn, Where: where,
			Detail: "the file carries no revocation data (no DSS CRL or OCSP response): only the archive's configured CRLs were consulted"})
		return
	}
	pool := append(append([]*smx509.Certificate{}, others...), a.anchors...)
	pool = append(pool, a.pki.Roots()...)
	for _, der := range dss.Certs {
		if c, _, err := signing.ParseCertificateLenient(der); err == nil {
			pool = append(pool, c)
		}
	}
	var issuer *smx509.Certificate
	for _, c := range pool {
		if bytes.Equal(c.RawSubject, signer.RawIssuer) && signer.CheckSignatureFrom(c) == nil {
			issuer = c
			break
		}
	}
	material := fmt.Sprintf("the DSS holds %d certificates, %d CRLs and %d OCSP responses", len(dss.Certs), len(dss.CRLs), len(dss.OCSPs))
	if issuer == nil {
		rep.add(CertCheck{Check: CheckRevocation, Status: eep.Warn, Where: where, Detail: material + ", but the signer's issuer is not among the certificates, so none can be checked"})
		return
	}
	checked := 0
	for _, der := range dss.CRLs {
		crl, err := smx509.ParseRevocationList(der)
		if err != nil || !bytes.Equal(crl.RawIssuer, signer.RawIssuer) || crl.CheckSignatureFrom(issuer) != nil {
			continue
		}
		checked++
		for _, e := range crl.RevokedCertificateEntries {
			if e.SerialNumber.Cmp(signer.SerialNumber) == 0 && !e.RevocationTime.After(at) {
				rep.add(CertCheck{Check: CheckRevocation, Status: eep.Fail, Where: where, Found: e.RevocationTime.UTC().Format(time.RFC3339),
					Detail: fmt.Sprintf("the CRL in the file (issued %s by %q) revokes the signer's certificate from %s, before %s",
						crl.ThisUpdate.UTC().Format(time.RFC3339), name(issuer), e.RevocationTime.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))})
				return
			}
		}
	}
	leaf, err1 := x509.ParseCertificate(signer.Raw)
	iss, err2 := x509.ParseCertificate(issuer.Raw)
	for _, der := range dss.OCSPs {
		if err1 != nil || err2 != nil {
			break // an SM2 certificate: x/crypto/ocsp reads only RSA and ECDSA
		}
		resp, err := ocsp.ParseResponseForCert(der, leaf, iss)
		if err != nil {
			continue
		}
		checked++
		if resp.Status == ocsp.Revoked && !resp.RevokedAt.After(at) {
			rep.add(CertCheck{Check: CheckRevocation, Status: eep.Fail, Where: where, Found: resp.RevokedAt.UTC().Format(time.RFC3339),
				Detail: fmt.Sprintf("the OCSP response in the file (produced %s) says the signer's certificate was revoked at %s", resp.ProducedAt.UTC().Format(time.RFC3339), resp.RevokedAt.UTC().Format(time.RFC3339))})
			return
		}
	}
	if checked == 0 {
		rep.add(CertCheck{Check: CheckRevocation, Status: eep.Warn, Where: where, Detail: material + ", none of them from the signer's issuer with a signature that verifies"})
		return
	}
	rep.add(CertCheck{Check: CheckRevocation, Status: eep.Pass, Where: where, Detail: fmt.Sprintf("%s; %d of them from the signer's issuer say the certificate was not revoked before %s", material, checked, at.UTC().Format(time.RFC3339))})
}
