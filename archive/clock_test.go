package archive

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/formats/eep"
	"github.com/dangan-archive/dangan/search"
)

// TestPinnedClockFarFromTheRealOne runs an archive on clocks 25 years before and after the
// real one. Everything it later checks (its development PKI, a department's certificate,
// the checkpoint tokens, an issued e-certificate) must be made at that same clock: a
// component that reads the real clock instead makes a certificate that is not yet valid,
// or already expired, at the archive's time, and a check here fails.
func TestPinnedClockFarFromTheRealOne(t *testing.T) {
	for _, years := range []int{-25, 25} {
		t.Run(fmt.Sprintf("%+d years", years), func(t *testing.T) {
			clk := &clock{t: time.Now().AddDate(years, 0, 0)}
			a, err := Open(Config{DataDir: t.TempDir(), Logger: quiet(), Now: clk.Now, NoBackgroundAudit: true})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			ctx := t.Context()
			if nb := a.pki.Root.Cert.NotBefore; nb.After(clk.Now()) || clk.Now().Sub(nb) > 24*time.Hour {
				t.Fatalf("the development root is valid from %v, the archive's clock is %v", nb, clk.Now())
			}

			res, err := a.Ingest(ctx, dept, caseFinished("CLOCK-1", "D30", clk.Now().AddDate(0, -2, 0)), oneDoc(t))
			if err != nil {
				t.Fatal(err)
			}
			clk.Add(time.Minute)
			ev, err := a.Evidence(ctx, dept, res.Package.ID)
			if err != nil {
				t.Fatal(err)
			}
			rc, _, err := a.OpenEEP(ctx, Principal{Role: RoleArchive, Purpose: "clock test"}, res.Package.ID)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			rep, err := a.VerifyUpload(ctx, bytes.NewReader(body), ev, 1<<30)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Valid {
				t.Fatalf("the package does not verify at the archive's own clock: %+v", failing(rep.Findings))
			}

			req := licence()
			year := clk.Now().In(eep.CST()).Year()
			req.ValidFrom, req.ValidUntil = fmt.Sprintf("%d-01-01", year), fmt.Sprintf("%d-12-31", year+4)
			c, err := a.IssueCertificate(ctx, issuer, req)
			if err != nil {
				t.Fatal(err)
			}
			for _, format := range []string{"pdf", "ofd"} {
				if r := verifyFile(t, a, format, fetch(t, a, c.Identifier, format)); !r.Valid {
					t.Errorf("the issued %s does not verify at the archive's own clock: %v", format, r.Failed())
				}
			}
		})
	}
}

func failing(fs []eep.Finding) []eep.Finding {
	var out []eep.Finding
	for _, f := range fs {
		if f.Status == eep.Fail {
			out = append(out, f)
		}
	}
	return out
}

// Cases archived within one second (ingest times are kept in whole seconds) are still
// ordered as they were archived: by their ids, whose milliseconds come from the clock. The
// search shows the newest first, and the lists keep the same order.
func TestCasesOfOneSecondKeepTheirOrder(t *testing.T) {
	clk := &clock{t: time.Date(2026, 3, 2, 10, 0, 0, 100e6, time.UTC)}
	a, err := Open(Config{DataDir: t.TempDir(), Logger: quiet(), Now: clk.Now, NoBackgroundAudit: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var ids []string
	for i := range 3 {
		res, err := a.Ingest(t.Context(), dept, caseFinished(fmt.Sprintf("SEC-%d", i), "D30", clk.Now().AddDate(0, -1, 0)), oneDoc(t))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.Package.ID)
		clk.Add(400 * time.Millisecond)
	}
	if !(ids[0] < ids[1] && ids[1] < ids[2]) {
		t.Fatalf("ids of one second out of their order: %v", ids)
	}
	waitSearchReady(t, a, 3)
	res, err := a.Search(t.Context(), dept, SearchQuery{Query: search.Query{Words: "食品经营许可证核发"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range res.Hits {
		got = append(got, h.Package.ID)
	}
	if want := []string{ids[2], ids[1], ids[0]}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("search order %v, want newest first %v", got, want)
	}
	page, err := a.List(t.Context(), dept, ListQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for _, p := range page.Packages {
		got = append(got, p.ID)
	}
	if fmt.Sprint(got) != fmt.Sprint(ids) && fmt.Sprint(got) != fmt.Sprint([]string{ids[2], ids[1], ids[0]}) {
		t.Errorf("list order %v, archived as %v", got, ids)
	}
}
