package archive

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/dangan-archive/dangan/formats"
)

// A migration plan after the converters or the policy change: without Ghostscript the PDFs
// made into PDF/A-2b would now be kept as they are; under a policy that refuses PDFs they
// could not be made at all, and the plan says so; under the policy they were made with,
// nothing differs. Only the archive and the administrator plan.
func TestMigrationPlanAfterAChange(t *testing.T) {
	dir := t.TempDir()
	open := func(cfg Config) *Archive {
		cfg.DataDir, cfg.Logger, cfg.NoBackgroundAudit = dir, quiet(), true
		a, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a := open(Config{})
	ctx := context.Background()
	for _, no := range []string{"MIG-1", "MIG-2"} {
		if _, err := a.Ingest(ctx, dept, benchCaseFor(no), oneDoc(t)); err != nil {
			t.Fatal(err)
		}
	}
	admin := Principal{Role: RoleAdmin}
	if _, err := a.PlanMigration(ctx, dept, nil); err == nil {
		t.Fatal("a department planned a migration")
	}
	if p, err := a.PlanMigration(ctx, admin, nil); err != nil || p.Packages != 2 || p.Documents != 2 || len(p.Groups) != 0 {
		t.Fatalf("under the policy they were made with: %v %+v", err, p)
	}
	a.Close()

	a = open(Config{NoConverters: true})
	p, err := a.PlanMigration(ctx, admin, nil)
	a.Close()
	if err != nil || len(p.Groups) != 1 {
		t.Fatalf("without Ghostscript: %v %+v", err, p)
	}
	g := p.Groups[0]
	if g.MadeTarget != "PDF/A-2b" || g.MadeTool == "" || g.Now.Action != formats.ActionKeep || g.Now.Target != "" || g.Documents != 2 || g.Packages != 2 || !g.Migratable {
		t.Fatalf("the PDFs' group without Ghostscript: %+v", g)
	}
	st, _ := os.Stat("../examples/case-001/decision.pdf")
	if g.Bytes != 2*st.Size() {
		t.Fatalf("bytes %d, want twice the original's %d", g.Bytes, st.Size())
	}

	policy := filepath.Join(t.TempDir(), "policy.json")
	os.WriteFile(policy, []byte(`{"format":"dangan-format-policy/1","rules":[{"name":"no PDF","match":["family:pdf"],"action":"refuse"}]}`), 0o644)
	a = open(Config{FormatPolicy: policy})
	defer a.Close()
	if p, err := a.PlanMigration(ctx, admin, nil); err != nil || len(p.Groups) != 1 || p.Groups[0].Migratable || p.Groups[0].Now.Rule != "no PDF" {
		t.Fatalf("a policy that refuses PDFs: %v %+v", err, p)
	}
}

// The tool and target written into an archival rendition's 编码描述 read back as written,
// and descriptions of other encodings give nothing.
func TestConversionReadsBack(t *testing.T) {
	for _, c := range []formats.Conversion{
		{SourcePUID: "fmt/276", SourceName: "Acrobat PDF 1.7", Target: "PDF/A-2b", Tool: "Ghostscript 10.00.0", At: "2026-12-01T00:00:00Z"},
		{SourcePUID: "fmt/41", SourceName: "Raw JPEG Stream", Target: "PDF/A-2b", Tool: formats.ToolPDFImport + " + Ghostscript 10.00.0", At: "2026-12-01T00:00:00Z"},
		{SourcePUID: "fmt/817", SourceName: "JSON", Target: "XML", Tool: formats.ToolJSONToXML, At: "2026-12-01T00:00:00Z"},
	} {
		desc := renditionPrefix + "form.json 转换；" + conversionText(&c) + "；SM3:00"
		if target, tool := conversionOf(desc); target != c.Target || tool != c.Tool {
			t.Errorf("%q read back as %q, %q", desc, target, tool)
		}
	}
	for _, desc := range []string{"原始文件；SM3:00", "归档保存版本；SM3:00", ""} {
		if target, tool := conversionOf(desc); target != "" || tool != "" {
			t.Errorf("%q read back as %q, %q", desc, target, tool)
		}
	}
}
