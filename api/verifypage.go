package api

import (
	_ "embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/formats/eep"
)

//go:embed web/verify.html
var verifyHTML string

var verifyTmpl = template.Must(template.New("verify").Parse(verifyHTML))

type pageRow struct {
	Name, EN, Status, StatusZH, Where, Detail, Expected, Found string
}

type pageFact struct{ Name, EN, Value string }

// pageSig is one signature of a file, as the page lists them.
type pageSig struct {
	Index                     int
	Kind, KindZH, Where       string
	Signer, Anchor, Algorithm string
	Revision, SignedAt        string
	Intact, Trusted, Valid    bool
	Covers                    string
	Changes                   []string
}

type pageResult struct {
	Valid              bool
	Summary, SummaryEN string
	Facts              []pageFact
	Signatures         []pageSig
	Rows               []pageRow
}

type pageData struct {
	Archive, Purpose, Identifier, Error string
	Result                              *pageResult
}

var checkNames = map[string][2]string{
	archive.CheckIdentifier: {"证照标识", "identifier"},
	archive.CheckDocument:   {"文件未被篡改", "document unchanged"},
	archive.CheckSignature:  {"电子签名", "signature"},
	archive.CheckSigner:     {"签名人可信", "signer trusted"},
	archive.CheckSeal:       {"电子印章", "seal"},
	archive.CheckTimestamp:  {"时间戳", "timestamp"},
	archive.CheckStatus:     {"证照状态", "certificate status"},
	archive.CheckRegistered: {"与证照库一致", "registered copy"},
	archive.CheckChanges:    {"签名后的修改", "changes after signing"},
	archive.CheckRevocation: {"证书未被吊销", "not revoked"},
}

var kindZH = map[string]string{"signature": "签名", "document timestamp": "文档时间戳", "seal": "电子印章"}

var statusZH = map[string]string{"pass": "通过", "fail": "未通过", "warn": "提示", "skip": "未检查"}

// verifyPage is the web page at /verify: a form (GET; ?id= from a certificate's QR code
// verifies that identifier at once) and the result (POST), rendered on the server, without
// scripts.
func (s *server) verifyPage(w http.ResponseWriter, r *http.Request) {
	data := pageData{Archive: s.a.Name()}
	var v *verification
	var err error
	switch {
	case r.Method == http.MethodPost:
		v, err = s.runVerify(w, r)
	case r.URL.Query().Get("id") != "":
		data.Identifier = r.URL.Query().Get("id")
		v = &verification{Kind: "identifier", Cert: s.a.VerifyIdentifier(data.Identifier), Purpose: r.URL.Query().Get("purpose")}
		v.Valid = v.Cert.Valid
	}
	status := http.StatusOK
	if err != nil {
		p := problemFor(r.Context(), s.log, err)
		status, data.Error = p.Status, p.Detail
		if p.Status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "5")
		}
		var fe *archive.FieldErr
		if errors.As(err, &fe) && fe.Field == "file" && strings.Contains(p.Detail, "send a file") {
			data.Error = "请上传文件或输入证照标识。Upload a file or type an identifier."
		}
	}
	if v != nil {
		s.logVerification(v, "page")
		data.Purpose = v.Purpose
		data.Result = pageFor(v)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if err := verifyTmpl.Execute(w, data); err != nil {
		s.log.Warn("verify page", "err", err)
	}
}

func pageFor(v *verification) *pageResult {
	res := &pageResult{Valid: v.Valid}
	if c := v.Cert; c != nil {
		if c.Identifier != "" {
			res.Facts = append(res.Facts, pageFact{"证照标识", "identifier", c.Identifier})
		}
		if st := c.Certificate; st != nil {
			res.Facts = append(res.Facts, pageFact{"证照名称", "title", st.Title}, pageFact{"持证主体", "holder", st.Holder},
				pageFact{"颁发机构", "issuer", st.Issuer}, pageFact{"证照状态", "status", st.Status + " (" + st.StatusCode + ")"})
		}
		if len(c.Signers) > 0 {
			res.Facts = append(res.Facts, pageFact{"签名人", "signed by", strings.Join(c.Signers, "; ")})
		}
		if c.TimestampAt != nil {
			res.Facts = append(res.Facts, pageFact{"签名时间（时间戳）", "timestamped", c.TimestampAt.In(eep.CST()).Format("2006-01-02 15:04:05 CST")})
		}
		for _, sg := range c.Signatures {
			ps := pageSig{Index: sg.Index, Kind: sg.Kind, KindZH: kindZH[sg.Kind], Where: sg.Where, Signer: sg.Signer, Anchor: sg.Anchor,
				Algorithm: sg.Algorithm, Intact: sg.Intact, Trusted: sg.Trusted, Valid: sg.Valid, Covers: sg.Covers, Changes: sg.Changes}
			if sg.Revision > 0 {
				ps.Revision = fmt.Sprintf("%d / %d", sg.Revision, sg.Revisions)
			}
			if sg.SignedAt != nil && !sg.SignedAt.IsZero() {
				ps.SignedAt = sg.SignedAt.In(eep.CST()).Format("2006-01-02 15:04:05 CST")
			}
			res.Signatures = append(res.Signatures, ps)
		}
		for _, ch := range c.Checks {
			n := checkNames[ch.Check]
			res.Rows = append(res.Rows, pageRow{Name: n[0], EN: n[1], Status: ch.Status, StatusZH: statusZH[ch.Status], Where: ch.Where,
				Detail: ch.Detail, Expected: ch.Expected, Found: ch.Found})
		}
		failed := c.Failed()
		if v.Valid {
			res.Summary, res.SummaryEN = "文件完整，签名有效，签名人可信。", "The file is intact, its signature is valid and its signer trusted."
			if c.Kind == "identifier" {
				res.Summary, res.SummaryEN = "证照库中该证照有效。", "The certificate library holds this certificate as valid."
			}
		} else {
			var zh, en []string
			for _, f := range failed {
				zh, en = append(zh, checkNames[f][0]), append(en, checkNames[f][1])
			}
			res.Summary = "未通过：" + strings.Join(zh, "、")
			res.SummaryEN = "Failed: " + strings.Join(en, ", ")
			if st := c.Certificate; st != nil && st.Status != archive.CertValid {
				res.Summary += "（证照" + map[string]string{"revoked": "已撤销", "superseded": "已被新版本取代", "expired": "已过期"}[st.Status] + "）"
				res.SummaryEN += " (the certificate is " + st.Status + ")"
			}
		}
		return res
	}
	p := v.Package
	res.Facts = append(res.Facts, pageFact{"档号", "archival code", p.ArchivalCode}, pageFact{"题名", "title", p.Title}, pageFact{"封装包 SM3", "package SM3", p.PackageSM3})
	var failed []string
	for _, f := range p.Findings {
		res.Rows = append(res.Rows, pageRow{Name: f.Item, EN: f.Code, Status: string(f.Status), StatusZH: statusZH[string(f.Status)], Where: f.Where,
			Detail: f.Detail, Expected: f.Expected, Found: f.Found})
		if f.Status == "fail" {
			failed = append(failed, f.Code+" "+f.Item)
		}
	}
	if v.Valid {
		res.Summary, res.SummaryEN = "封装包完整，签名有效。", "The package is intact and its signatures valid."
	} else {
		res.Summary, res.SummaryEN = "未通过："+strings.Join(failed, "、"), "Failed: "+strings.Join(failed, ", ")
	}
	return res
}
