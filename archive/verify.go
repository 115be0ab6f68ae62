package archive

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"github.com/dangan-archive/dangan/archive/eventlog"
	"github.com/dangan-archive/dangan/formats"
	"github.com/dangan-archive/dangan/formats/eep"
	"github.com/dangan-archive/dangan/formats/pdfa"
	"github.com/dangan-archive/dangan/signing"
)

// VerifyOptions says what to verify a package against.
type VerifyOptions struct {
	Roots    *smx509.CertPool // trusted roots; nil: no signer can be trusted
	Evidence *Evidence        // optional: timestamp and recorded digests
	// Now is the verifier's clock: the time the evidence's checkpoint tokens must still be
	// valid at, and a signer's certificate is checked at when nothing says when it signed.
	// Default time.Now; the archive passes its own clock.
	Now func() time.Time
	// MaxCanonical is the largest package re-parsed in memory to canonicalise a signed
	// element whose file bytes are not canonical (foreign packages). Default 64 MiB.
	MaxCanonical int64
}

// Report is the structured result of verifying a package.
type Report struct {
	Valid        bool            `json:"valid"`
	ArchivalCode string          `json:"archival_code,omitempty"`
	Title        string          `json:"title,omitempty"`
	Creator      string          `json:"creator,omitempty"`
	Documents    int             `json:"documents"`
	Signers      []string        `json:"signers,omitempty"`
	SignedAt     *time.Time      `json:"signed_at,omitempty"`
	TimestampAt  *time.Time      `json:"timestamp_at,omitempty"`
	PackageSM3   string          `json:"package_sm3"`
	SignedSM3    string          `json:"signed_sm3"`
	Findings     []eep.Finding   `json:"findings"`
	Proof        []eventlog.Step `json:"proof,omitempty"` // each check of the evidence's proof
	// Layers are an amended package's forms, the current one first, then each package it
	// wraps down to the original; nil for an original package.
	Layers []LayerReport `json:"layers,omitempty"`
}

// LayerReport is one form of an amended package as verified.
type LayerReport struct {
	Layer     string   `json:"layer"` // 修改2, 修改1, …, 修改0 for the original
	Type      string   `json:"type"`  // its 封装包类型
	Current   bool     `json:"current"`
	Created   string   `json:"created,omitempty"`
	SignedSM3 string   `json:"signed_sm3"`
	Signers   []string `json:"signers,omitempty"`
	Valid     bool     `json:"valid"` // its signatures verify over its own signed bytes
}

const itemFixity = "固化信息有效性"

// Verify checks a package: structure and metadata (eep.Read), every signature over the
// bytes it covers, certificate chains at the time of signing, the archive's lock signature,
// and, with evidence, the timestamp and the recorded digests.
func Verify(r io.ReaderAt, size int64, opts VerifyOptions) (*Report, error) {
	rep, _, err := verify(r, size, opts)
	return rep, err
}

// verify is Verify that also returns what reading the package found.
func verify(r io.ReaderAt, size int64, opts VerifyOptions) (*Report, *eep.Scan, error) {
	if opts.MaxCanonical == 0 {
		opts.MaxCanonical = 64 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	scan, err := eep.Read(r, size, eep.ScanOptions{NewHash: sm3.New, NewSignedHash: signedHash})
	if err != nil {
		return nil, nil, err
	}
	rep := &Report{PackageSM3: hex.EncodeToString(scan.PackageSM3), SignedSM3: hex.EncodeToString(scan.SignedSM3), Documents: len(scan.Documents)}
	ent := scan.EntityPath()
	rep.Title = scan.Fields[ent+"内容描述/题名"]
	rep.Creator = scan.Fields[ent+"来源/立档单位名称"]
	if y := scan.Fields[ent+"档号/年度"]; y != "" {
		rep.ArchivalCode = strings.Join(nonEmptyAll(scan.Fields[ent+"档号/全宗号"], y, scan.Fields[ent+"档号/保管期限"], scan.Fields[ent+"档号/室编件号"]), "-")
	}
	findings := scan.Findings
	add := func(f eep.Finding) { findings = append(findings, f) }

	// The evidence first: a valid proof gives the trusted time to check certificates at,
	// and the package digest recorded at ingest.
	var tsTime *time.Time
	var logged *eventlog.Event
	if ev := opts.Evidence; ev != nil {
		res, err := eventlog.VerifyProofAt(&ev.Proof, opts.Roots, opts.Now())
		if res != nil {
			rep.Proof = res.Steps
		}
		if err == nil {
			err = checkIngestEvent(res.Event, ev.PackageID, scan)
		}
		if err != nil {
			add(eep.Finding{Code: eep.CodeFixity, Item: itemFixity, Status: eep.Fail, Where: "时间戳",
				Expected: "the package's ingest event in a signed checkpoint of the event log, timestamped by a trusted TSA", Found: err.Error()})
		} else {
			t := res.Time
			tsTime, rep.TimestampAt, logged = &t, &t, &res.Event
			detail := fmt.Sprintf("ingest event %d of log %s is in a checkpoint timestamped %s", res.Index, res.Origin, t.Format(time.RFC3339))
			if res.Renewals > 0 {
				detail += fmt.Sprintf(", renewed %d times", res.Renewals)
			}
			if len(res.Witnesses) > 0 {
				detail += ", witnessed by " + strings.Join(res.Witnesses, ", ")
			}
			add(eep.Finding{Code: eep.CodeFixity, Item: itemFixity, Status: eep.Pass, Where: "时间戳", Detail: detail})
		}
	} else {
		add(eep.Finding{Code: eep.CodeFixity, Item: itemFixity, Status: eep.Skip, Where: "时间戳", Detail: "no evidence file given: the timestamp was not checked"})
	}

	if len(scan.Signatures) == 0 {
		add(eep.Finding{Code: eep.CodeFixity, Item: itemFixity, Status: eep.Fail, Where: "电子签名块", Expected: "at least one 电子签名", Found: "none"})
	}
	for _, s := range scan.Signatures {
		where := "电子签名 " + s.ID
		rep.Signers = append(rep.Signers, s.Signer)
		if !s.Time.IsZero() && rep.SignedAt == nil {
			t := s.Time
			rep.SignedAt = &t
		}
		findings = append(findings, checkSignature(r, size, s, "被签名对象", where, tsTime, opts)...)
	}
	if scan.Lock == nil {
		add(eep.Finding{Code: eep.CodeFixity, Item: itemFixity, Status: eep.Warn, Where: "锁定签名", Detail: "the package has no lock signature"})
	} else {
		findings = append(findings, checkSignature(r, size, scan.Lock, "电子签名块", "锁定签名", tsTime, opts)...)
	}

	switch {
	case logged != nil:
		f := eep.Finding{Code: eep.CodePackage, Item: "归档前后封装包一致", Status: eep.Pass, Where: "封装包", Expected: "SM3 " + logged.Digest, Found: "SM3 " + rep.PackageSM3}
		if !strings.EqualFold(logged.Digest, rep.PackageSM3) {
			f.Status = eep.Fail
			f.Detail = "the package differs from the one archived: its SM3 is not the one its ingest event records"
		}
		add(f)
	case opts.Evidence != nil:
		add(eep.Finding{Code: eep.CodePackage, Item: "归档前后封装包一致", Status: eep.Fail, Where: "封装包", Expected: "a verified ingest event",
			Found: "SM3 " + rep.PackageSM3, Detail: "the evidence does not verify, so the package cannot be matched to the one archived"})
	default:
		add(eep.Finding{Code: eep.CodePackage, Item: "归档前后封装包一致", Status: eep.Skip, Where: "封装包", Found: "SM3 " + rep.PackageSM3, Detail: "no evidence file given"})
	}
	if scan.Type == eep.TypeAmended {
		var layerFindings []eep.Finding
		rep.Layers, layerFindings = checkLayers(r, size, scan, findings, tsTime, opts)
		findings = append(findings, layerFindings...)
	}
	findings = append(findings, checkRenditions(r, scan)...)
	rep.Findings = findings
	rep.Valid = true
	for _, f := range findings {
		if f.Status == eep.Fail {
			rep.Valid = false
		}
	}
	return rep, scan, nil
}

func nonEmptyAll(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// signedHash is the hash an SM2 signature by the certificate is made over.
func signedHash(certDER []byte) (hash.Hash, error) {
	c, err := smx509.ParseCertificate(certDER)
	if err != nil {
		return nil, fmt.Errorf("parse signer certificate: %w", err)
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || !signing.IsSM2(pub) {
		return nil, fmt.Errorf("signer key is not SM2 (%T)", c.PublicKey)
	}
	return signing.NewSignatureHash(pub), nil
}

// checkSignature verifies one signature and its certificate chain.
func checkSignature(r io.ReaderAt, size int64, s *eep.ScannedSignature, element, where string, tsTime *time.Time, opts VerifyOptions) []eep.Finding {
	var out []eep.Finding
	fail := func(expected, found string) {
		out = append(out, eep.Finding{Code: eep.CodeFixity, Item: itemFixity, Status: eep.Fail, Where: where, Expected: expected, Found: found})
	}
	if alg := s.Algorithm; alg != signing.OIDSM2WithSM3.String() && alg != signing.OIDSM2Sign.String() {
		fail("签名算法标识 1.2.156.10197.1.501 (SM2/SM3)", "签名算法标识 "+alg)
		return out
	}
	if s.HashErr != nil {
		fail("a verifiable signature", s.HashErr.Error())
		return out
	}
	cert, err := smx509.ParseCertificate(s.Certs[0])
	if err != nil {
		fail("a signer certificate", err.Error())
		return out
	}
	pub := cert.PublicKey.(*ecdsa.PublicKey)
	sigErr := signing.VerifyDigest(pub, s.SpanDigest, s.Value)
	how := "over the file's bytes of " + element
	if strings.Contains(element, "/") {
		how = "over the bytes of " + element + " (its C14N form)"
	}
	if sigErr != nil && size <= opts.MaxCanonical {
		// A foreign package may not be written canonically: canonicalise and try again.
		if canon, err := eep.CanonicalElement(io.NewSectionReader(r, 0, size), element); err == nil {
			if signing.Verify(pub, canon, s.Value) == nil {
				sigErr = nil
				how = "over the C14N form of " + element + " (the file's bytes are not canonical)"
			}
		}
	}
	if sigErr != nil {
		fail("an SM2 signature valid "+how, "the signature does not match: the signed content or the signature was changed")
	} else {
		out = append(out, eep.Finding{Code: eep.CodeFixity, Item: itemFixity, Status: eep.Pass, Where: where,
			Detail: fmt.Sprintf("SM2/SM3 signature by %q valid %s", cert.Subject.CommonName, how)})
	}
	// The chain, at the trusted time when there is one, else at the claimed signing time.
	at, basis := s.Time, "签名时间"
	if tsTime != nil {
		at, basis = *tsTime, "timestamp"
	}
	if at.IsZero() {
		at, basis = opts.Now(), "now"
	}
	var inter []*smx509.Certificate
	for _, der := range s.Certs[1:] {
		if c, err := smx509.ParseCertificate(der); err == nil {
			inter = append(inter, c)
		}
	}
	if opts.Roots == nil {
		fail("a signer chaining to a trusted root", "no trust roots were given (--roots, or GET /api/v1/trust): the signer is not trusted")
		return out
	}
	if _, err := signing.VerifyChain(cert, inter, opts.Roots, at); err != nil {
		fail(fmt.Sprintf("a certificate chaining to a trusted root, valid at %s (%s)", at.Format(time.RFC3339), basis), fmt.Sprintf("%q: %v", cert.Subject.CommonName, err))
	} else {
		out = append(out, eep.Finding{Code: eep.CodeFixity, Item: itemFixity, Status: eep.Pass, Where: where,
			Detail: fmt.Sprintf("certificate %q chains to a trusted root and was valid at %s (%s)", cert.Subject.CommonName, at.Format(time.RFC3339), basis)})
	}
	return out
}

// LoadEvidence parses an evidence file.
func LoadEvidence(data []byte) (*Evidence, error) {
	var ev Evidence
	if err := jsonUnmarshalStrict(data, &ev); err != nil {
		return nil, fmt.Errorf("evidence file: %w", err)
	}
	if ev.Format != EvidenceFormat {
		return nil, fmt.Errorf("evidence file: format %q, expected %q", ev.Format, EvidenceFormat)
	}
	return &ev, nil
}

func jsonUnmarshalStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// VerifyUpload spools an uploaded package (at most max bytes) and verifies it against the
// archive's trust roots.
func (a *Archive) VerifyUpload(ctx context.Context, body io.Reader, ev *Evidence, max int64) (*Report, error) {
	f := a.spool.New()
	defer f.Release()
	n, err := io.Copy(f, io.LimitReader(body, max+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the package: %w", ErrBadUpload, err)
	}
	if n > max {
		return nil, fieldErr("file", fmt.Errorf("%w: packages over %d bytes are verified offline with 'dangan verify'", ErrTooLarge, max))
	}
	if n == 0 {
		return nil, fieldErr("file", fmt.Errorf("%w: the package is empty", ErrBadUpload))
	}
	return Verify(f, n, VerifyOptions{Roots: a.Trust(), Evidence: ev, Now: a.now})
}

// checkIngestEvent checks that a proven event is this package's ingest (or, at the county
// archive, its receipt by transfer): its id, and the department signature an ingest
// records is the one in the package. The package digest is
// compared separately, as the consistency finding.
func checkIngestEvent(e eventlog.Event, id string, scan *eep.Scan) error {
	migrated := e.Type == eventlog.TypeMigrated && strings.HasPrefix(e.Subject, id+"/")
	if !migrated && (e.Type != eventlog.TypeIngest && e.Type != eventlog.TypeTransferReceived || e.Subject != id) {
		return fmt.Errorf("the proven event is %s of %q, not the ingest, migration (or receipt by transfer) of package %q", e.Type, e.Subject, id)
	}
	if len(scan.Signatures) > 0 && (e.Type == eventlog.TypeIngest || migrated) {
		sum := sm3.Sum(scan.Signatures[0].Value)
		if e.Attrs["signature_sm3"] != hex.EncodeToString(sum[:]) {
			return fmt.Errorf("the ingest event records another department signature (SM3 %s) than the package holds (SM3 %x)", e.Attrs["signature_sm3"], sum)
		}
	}
	return nil
}

// checkLayers verifies each previous form inside an amended package over its own signed
// bytes, and reports every layer: the current one (whose findings are already made) first.
func checkLayers(r io.ReaderAt, size int64, scan *eep.Scan, current []eep.Finding, tsTime *time.Time, opts VerifyOptions) ([]LayerReport, []eep.Finding) {
	n := len(scan.Layers)
	top := LayerReport{Layer: "修改" + strings.TrimPrefix(scan.Fields["修改封装内容/修改标识符"], "修改"), Type: scan.Type, Current: true,
		Created: scan.Fields["封装包创建时间"], SignedSM3: hex.EncodeToString(scan.SignedSM3), Valid: true}
	for _, s := range scan.Signatures {
		top.Signers = append(top.Signers, s.Signer)
	}
	for _, f := range current {
		if f.Status == eep.Fail && (strings.HasPrefix(f.Where, "电子签名") || f.Where == "锁定签名") {
			top.Valid = false
		}
	}
	reports := []LayerReport{top}
	var out []eep.Finding
	nested := opts
	nested.MaxCanonical = -1 // a previous layer's bytes are verified as they are, never re-parsed
	for i, l := range scan.Layers {
		lr := LayerReport{Layer: fmt.Sprintf("修改%d", n-1-i), Type: l.Type, Created: l.Created, SignedSM3: hex.EncodeToString(l.SignedSM3), Valid: true}
		if lr.Type == eep.TypeOriginal {
			lr.Layer = "修改0"
		}
		prefix := "原封装包 " + lr.Layer + " "
		if l.Err() != nil {
			out = append(out, eep.Finding{Code: eep.CodeFixity, Item: itemFixity, Status: eep.Fail, Where: prefix + "被签名对象", Expected: "readable signed bytes", Found: l.Err().Error()})
			lr.Valid = false
		}
		if len(l.Signatures) == 0 {
			out = append(out, eep.Finding{Code: eep.CodeFixity, Item: itemFixity, Status: eep.Fail, Where: prefix + "电子签名块", Expected: "at least one 电子签名", Found: "none"})
			lr.Valid = false
		}
		for _, s := range l.Signatures {
			lr.Signers = append(lr.Signers, s.Signer)
			at := tsTime
			if at != nil && s.Time.Before(*at) {
				at = nil // checked at the time it claims: it signed before the evidence's time
			}
			for _, f := range checkSignature(r, size, s, "原封装包/被签名对象", prefix+"电子签名 "+s.ID, at, nested) {
				if f.Status == eep.Fail {
					lr.Valid = false
				}
				out = append(out, f)
			}
		}
		reports = append(reports, lr)
	}
	return reports, out
}

// renditionMark is how a package describes a rendition dangan made to PDF/A-2b.
const renditionMark = "→ PDF/A-2b"

// checkRenditions checks that each PDF/A-2b rendition in the package claims PDF/A-2b in its
// XMP metadata and opens. Each is decoded to a scratch file, one at a time.
func checkRenditions(r io.ReaderAt, scan *eep.Scan) []eep.Finding {
	var out []eep.Finding
	for _, d := range scan.Documents {
		for _, e := range d.Encodings {
			if !strings.Contains(e.Description, renditionMark) {
				continue
			}
			where := "文档 " + d.Seq + " 编码 " + e.FileName
			f := eep.Finding{Code: eep.CodeFormat, Item: itemFormat, Where: where}
			if err := checkRendition(r, e); err != nil {
				f.Status, f.Found, f.Expected = eep.Fail, err.Error(), "PDF/A-2b (pdfaid part 2, conformance B) that opens"
			} else {
				f.Status, f.Detail = eep.Pass, "claims PDF/A-2b and opens"
			}
			out = append(out, f)
		}
	}
	return out
}

const itemFormat = "归档格式符合要求"

func checkRendition(r io.ReaderAt, e eep.ScannedEncoding) error {
	tmp, err := os.CreateTemp("", "dangan-rendition-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	n, err := io.Copy(tmp, base64.NewDecoder(base64.StdEncoding, newlineStripper{io.NewSectionReader(r, e.DataOffset, e.DataLength)}))
	if err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	part, conf, err := pdfa.Claim(tmp, n)
	if err != nil {
		return err
	}
	if part != "2" || conf != "B" {
		return fmt.Errorf("the rendition claims PDF/A part %q conformance %q", part, conf)
	}
	if _, err := formats.ValidatePDF(tmp, n); err != nil {
		return fmt.Errorf("the rendition does not open: %w", err)
	}
	return nil
}
